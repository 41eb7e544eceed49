#!/usr/bin/env bash
# GPU check for the lent machine: the tiny VLM's SFT and GRPO steps and the tool pool on cuda.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (about a minute once the venv exists)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${1:-${OUT:-.}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PY" -m benchmarks.vlm_gpu_check --device cuda --out "$OUT/vlm_gpu_check.json"
# The same GPU-tier tests, if any are marked.
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_vlm_*.py || [ $? -eq 5 ]
