#!/usr/bin/env bash
# Train the CNN perception on a lent GPU, one call: benchmarks.train_perception_stream with the
# recipe of benchmarks/results/perception_gpu/ (docs/perception.md, "A CNN trained on a GPU").
#
# Usage: bash benchmarks/gpu_perception.sh [--dry-run] MINUTES [INIT] [OUT_DIR]
#   MINUTES  training time (the 2026-12-04 run: 7, then 3.5 more from its weights)
#   INIT     weights to continue from (a width-64 perception.safetensors), or '' for a new network
#   OUT_DIR  where the weights, record, curve and log go (default: $OUT, else runs/perception_gpu)
# Exit status: 0 trained; 2 bad arguments or no photos; 3 no CUDA device; else the trainer's.
#
# Before the call, here: pack the train photos small enough to travel (25 MB; the whole call
# may send 64 MiB, so move benchmarks/results aside for it and put it back after) and the two
# wheels the lent machine lacks:
#   python -m benchmarks.train_perception_stream --export-photos runs/gpu_photos
#   mkdir -p runs/gpu_wheels && cp .whl/gymnasium-* .whl/farama_* runs/gpu_wheels/  # make gpu-wheels
# then run, carrying runs/gpu_photos and runs/gpu_wheels (and the INIT file's folder), with a
# time limit about 60 s above MINUTES (start-up, then 15 workers' first crops):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site runs/gpu_wheels/*.whl &&
#   PYTHONPATH=/tmp/site:$PWD bash benchmarks/gpu_perception.sh 7
# A run cut off by the limit keeps its last checkpoint (one a minute). Afterwards, here: tune
# the thresholds on the val photos and score it, as benchmarks/perception_gpu.py's doc says.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
MINUTES="${1:-}"
INIT="${2:-}"
DIR="${3:-${OUT:-runs/perception_gpu}}"
if ! [[ "$MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
if [ ! -d runs/gpu_photos ]; then
  echo "no runs/gpu_photos: run python -m benchmarks.train_perception_stream --export-photos runs/gpu_photos first" >&2
  exit 2
fi
if [ -n "$INIT" ] && [ ! -f "$INIT" ]; then
  echo "no such weights file: $INIT" >&2
  exit 2
fi
PYTHON="${PYTHON:-python3}"
CMD=("$PYTHON" -m benchmarks.train_perception_stream --out "$DIR/perc" --train runs/gpu_photos
  --minutes "$MINUTES" --widths 64 --batch 512 --capacity 1000000 --probe 2048 --start-after 4096)
if [ -n "$INIT" ]; then CMD+=(--init "$INIT" --lr 0.001 --seed 1); fi
if [ "$DRY" = 1 ]; then echo "${CMD[*]}"; exit 0; fi
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"; then
  echo "no CUDA device: this script is for a lent GPU (the trainer runs on CPU too, slowly:" \
    "python -m benchmarks.train_perception_stream --device cpu)" >&2
  exit 3
fi
mkdir -p "$DIR"
"${CMD[@]}" > "$DIR/log.txt" 2>&1
status=$?
grep -v '^ ' "$DIR/log.txt" | grep -v transparent | tail -20
exit $status
