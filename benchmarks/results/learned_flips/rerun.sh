#!/bin/bash
# Rerun fixed's, exhaustive's and greedy's records after the learned deraining took four mirrored
# copies by default (rule b4d6b017; the only agents whose plans call it): the bundled leaderboard, the
# held-out corpus test photos (crops and whole photos), the rounds of docs/heldout.md and
# docs/acceptance.md, and restore_check (fixed and exhaustive).
exec bash benchmarks/rerun_plan_records.sh  # the shared body (run from the repository root)
