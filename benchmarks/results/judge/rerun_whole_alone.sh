#!/bin/bash
# Rerun the whole-photo records of exhaustive and greedy after judge_whole_alone went off by
# default (rule be17ec7); ppo's scene guard does not read the option.
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout
for d in $L $H; do for a in exhaustive greedy; do rm -f $d/mio-?@full__$a.jsonl; done; done
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --images corpus:test --limit 2 --agents greedy,exhaustive --out $H > /dev/null
  done
  echo HELDOUT DONE
) &
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --agents greedy,exhaustive --out $L > /dev/null
  done
  echo LEADERBOARD DONE
) &
wait
echo ALL DONE
