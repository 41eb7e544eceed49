#!/bin/bash
# Rerun fixed's records after it took the learned dehazing tool by default (rule 4340218):
# the bundled leaderboard and the held-out corpus test photos, crops and whole photos,
# and restore_check (fixed is tir restore's default agent).
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout
rm -f $L/mio-?*__fixed.jsonl $H/mio-?*__fixed.jsonl $H/ood-d?__fixed.jsonl
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --images corpus:test --limit 5 --agents fixed --out $H > /dev/null
    tir bench $s --whole --images corpus:test --limit 2 --agents fixed --out $H > /dev/null
  done
  for s in ood-d2 ood-d3; do
    tir bench $s --images corpus:test --limit 5 --agents fixed --out $H > /dev/null
  done
  echo HELDOUT DONE
) &
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --agents fixed --out $L > /dev/null
    tir bench $s --whole --agents fixed --out $L > /dev/null
  done
  rm -f benchmarks/results/restore_check.json
  python -m benchmarks.restore_check --json benchmarks/results/restore_check.json > /dev/null
  echo LEADERBOARD DONE
) &
wait
echo ALL DONE
