#!/bin/bash
# Rerun fixed's, exhaustive's and greedy's records after a change to what their plans call: the
# bundled leaderboard, the held-out corpus test photos (crops and whole photos), the rounds of
# docs/heldout.md and docs/acceptance.md, and restore_check (fixed and exhaustive). Run from the
# repository root; each rerun.sh under benchmarks/results/ says which change it followed.
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout; R=benchmarks/results/heldout_rounds
for a in fixed exhaustive greedy; do
  rm -f $L/mio-?*__$a.jsonl $H/mio-?*__$a.jsonl $H/ood-d?__$a.jsonl
done
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --images corpus:test --limit 5 --agents fixed,greedy,exhaustive --out $H > /dev/null
    tir bench $s --whole --images corpus:test --limit 2 --agents fixed,greedy,exhaustive --out $H > /dev/null
  done
  for s in ood-d2 ood-d3; do
    tir bench $s --images corpus:test --limit 5 --agents fixed,greedy,exhaustive --out $H > /dev/null
  done
  for s in mio-a mio-b mio-c; do
    tir bench $s --agents fixed,greedy,exhaustive --out $L > /dev/null
    tir bench $s --whole --agents fixed,greedy,exhaustive --out $L > /dev/null
  done
  rm -f benchmarks/results/restore_check.json benchmarks/results/restore_check_exhaustive.json
  python -m benchmarks.restore_check --json benchmarks/results/restore_check.json > /dev/null
  python -m benchmarks.restore_check --agent exhaustive --json benchmarks/results/restore_check_exhaustive.json > /dev/null
  echo BENCH DONE
) &
(
  for f in test9 bundled test; do
    python -m benchmarks.heldout_rounds --rerun $R/$f.json --agents fixed,exhaustive,greedy --json $R/$f.json > /dev/null
  done
  echo ROUNDS DONE
) &
wait
echo ALL DONE
