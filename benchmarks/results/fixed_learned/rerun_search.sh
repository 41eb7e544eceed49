#!/bin/bash
# Rerun exhaustive's and greedy's records after they took the learned dehazing tool as their
# prior's by default (rule fed4005): the bundled leaderboard and the held-out corpus test
# photos, crops and whole photos, and restore_check --agent exhaustive.
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout
rm -f $L/mio-?*__exhaustive.jsonl $L/mio-?*__greedy.jsonl
rm -f $H/mio-?*__exhaustive.jsonl $H/mio-?*__greedy.jsonl $H/ood-d?__exhaustive.jsonl $H/ood-d?__greedy.jsonl
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --images corpus:test --limit 2 --agents greedy,exhaustive --out $H > /dev/null
  done
  echo HELDOUT WHOLE DONE
) &
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --images corpus:test --limit 5 --agents greedy,exhaustive --out $H > /dev/null
  done
  for s in ood-d2 ood-d3; do
    tir bench $s --images corpus:test --limit 5 --agents greedy,exhaustive --out $H > /dev/null
  done
  for s in mio-a mio-b mio-c; do
    tir bench $s --agents greedy,exhaustive --out $L > /dev/null
    tir bench $s --whole --agents greedy,exhaustive --out $L > /dev/null
  done
  rm -f benchmarks/results/restore_check_exhaustive.json
  python -m benchmarks.restore_check --agent exhaustive --json benchmarks/results/restore_check_exhaustive.json > /dev/null
  echo LEADERBOARD DONE
) &
wait
echo ALL DONE
