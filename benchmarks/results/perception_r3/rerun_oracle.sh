#!/bin/bash
source .venv/bin/activate
export OMP_NUM_THREADS=1
H=benchmarks/results/heldout
rm -f $H/mio-?__oracle.jsonl $H/mio-?@full__oracle.jsonl
for s in mio-a mio-b mio-c; do
  tir bench $s --images corpus:test --limit 5 --agents oracle --out $H > /dev/null 2>&1
done
echo crops done
for s in mio-a mio-b mio-c; do
  tir bench $s --whole --images corpus:test --limit 2 --agents oracle --out $H > /dev/null 2>&1
done
echo all done
