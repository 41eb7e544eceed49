#!/bin/bash
# Rerun the records of the agents that use the judge (exhaustive, greedy, ppo's scene guard)
# after it abstains beyond its reach (agents.judge.RANGE_Z, rule 81a0e57). Two lanes at once.
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout
for d in $L $H; do for a in exhaustive greedy ppo; do rm -f $d/mio-?__$a.jsonl $d/mio-?@full__$a.jsonl; done; done
for a in exhaustive greedy ppo; do rm -f $H/ood-d?__$a.jsonl; done
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --images corpus:test --limit 5 --agents greedy,exhaustive,ppo --out $H > /dev/null
  done
  for s in ood-d2 ood-d3; do
    tir bench $s --images corpus:test --limit 5 --agents ppo,greedy,exhaustive --out $H > /dev/null
  done
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --images corpus:test --limit 2 --agents greedy,exhaustive,ppo --out $H > /dev/null
  done
  echo HELDOUT DONE
) &
(
  for s in mio-a mio-b mio-c; do
    tir bench $s --agents greedy,exhaustive,ppo --out $L > /dev/null
  done
  for s in mio-a mio-b mio-c; do
    tir bench $s --whole --agents greedy,exhaustive,ppo --out $L > /dev/null
  done
  echo LEADERBOARD DONE
) &
wait
echo ALL DONE
