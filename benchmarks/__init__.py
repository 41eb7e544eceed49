"""Benchmarks, leaderboard and the ``tir`` command line."""
