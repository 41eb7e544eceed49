"""Agents that act in TIR-v0."""
