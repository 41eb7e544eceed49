#!/bin/bash
# Rerun the whole-photo records of every agent that reads perception after the whole-photo
# darkness reader shipped (rule 8108fa68; crops are not read by it): the bundled leaderboard's
# and the held-out corpus test photos' @full suites, docs/whole_photo.md, and restore_check
# (fixed and exhaustive).
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout
A=fixed,greedy,exhaustive,ppo,vlm,agenticir
for a in ${A//,/ }; do rm -f $L/mio-?@full__$a.jsonl $H/mio-?@full__$a.jsonl; done
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --agents $A --out $L > /dev/null
  done
  rm -f benchmarks/results/restore_check.json
  python -m benchmarks.restore_check --json benchmarks/results/restore_check.json > /dev/null
  echo ONE DONE
) &
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --images corpus:test --limit 2 --agents $A --out $H > /dev/null
  done
  rm -f benchmarks/results/restore_check_exhaustive.json
  python -m benchmarks.restore_check --agent exhaustive --json benchmarks/results/restore_check_exhaustive.json > /dev/null
  echo TWO DONE
) &
wait
echo ALL DONE
