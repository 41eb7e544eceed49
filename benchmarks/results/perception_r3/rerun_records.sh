#!/bin/bash
# Rerun the perceiving agents' records after perception v2 retrained on release 3.
set -x
source .venv/bin/activate
export OMP_NUM_THREADS=1
L=benchmarks/results/leaderboard; H=benchmarks/results/heldout
for d in $L $H; do for a in fixed exhaustive greedy agenticir ppo; do rm -f $d/mio-?__$a.jsonl $d/mio-?@full__$a.jsonl; done; done
for a in fixed exhaustive greedy ppo; do rm -f $H/ood-d?__$a.jsonl; done
for s in mio-a mio-b mio-c; do
  tir bench $s --agents fixed,greedy,exhaustive,agenticir,ppo --out $L > /dev/null
  tir bench $s --images corpus:test --limit 5 --agents fixed,greedy,exhaustive,agenticir,ppo --out $H > /dev/null
done
for s in ood-d2 ood-d3; do
  tir bench $s --images corpus:test --limit 5 --agents fixed,ppo,greedy,exhaustive --out $H > /dev/null
done
echo CROPS DONE
for s in mio-a mio-b mio-c; do
  tir bench $s --whole --images corpus:test --limit 2 --agents fixed,agenticir,greedy,exhaustive,ppo --out $H > /dev/null
done
echo HELDOUT WHOLE DONE
for s in mio-a mio-b mio-c; do
  tir bench $s --whole --agents fixed,agenticir,greedy,exhaustive,ppo --out $L > /dev/null
done
echo ALL DONE
