#!/bin/bash
# Rerun fixed's, exhaustive's and greedy's records after they took the context-trained
# deraining network by default (rules ced911b and 3040ca2): the bundled leaderboard, the
# held-out corpus test photos (crops and whole photos), the rounds of docs/heldout.md and
# docs/acceptance.md, and restore_check (fixed and exhaustive).
exec bash benchmarks/rerun_plan_records.sh  # the shared body (run from the repository root)
