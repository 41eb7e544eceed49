#!/usr/bin/env bash
# GPU check for the lent machine, one command, under 5 minutes once the venv exists:
#   1. the machine (nvidia-smi, torch, cuda)                              -> OUT/machine.txt
#   2. tool parity, learned-tool and pool tests, default and gpu tiers    -> OUT/tests.txt
#   3. `tir speed` on cuda (envs, tools, reward cost)                     -> OUT/throughput.json,
#                                                                            OUT/performance.md
#      and the env figures on this machine's CPU, for the GPU / CPU ratio  -> OUT/throughput_cpu.json
#   4. the tiny VLM's SFT and GRPO steps on cuda                          -> OUT/vlm_gpu_check.json
#   5. one SFT and one GRPO step (group of 8) of Qwen2-VL-2B's architecture at real size, random
#      weights, bf16, LoRA: step times and peak memory                    -> OUT/vlm_2b_gpu_check.json
# Without a CUDA device it says so and exits 3 before running anything (--allow-cpu runs the
# same steps on the CPU as a smoke test, with tiny benchmark settings).
#
# Usage: bash benchmarks/gpu_check.sh [--allow-cpu] [--dry-run] [--only=STEP,...] [OUT_DIR]
#   OUT_DIR    where results go (default: $OUT, else benchmarks/results/gpu)
#   --dry-run  print the commands, run nothing
#   --only     run these steps alone (a rerun of the failed ones in a short lease): machine,
#              tests, tests_gpu_tier, speed, speed_cpu, vlm, vlm_2b
# Exit status: 0 all steps passed; 2 bad arguments; 3 no CUDA device; else the number of
# failed steps (every step runs even when an earlier one fails).
#
# On the lent machine (all steps in 270 s on an H200, session 39; 280 s on an H100, session 58).
# It has torch, transformers and peft but no venv of this repo and not every dependency, and a
# call sends at most 64 MiB of working tree: `make gpu-wheels` here (benchmarks/gpu_wheels.txt
# -> .whl/), move benchmarks/results aside for the call (54 MB tracked; put it back after), then
# run, carrying .whl:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   export PYTHONPATH=/tmp/site PYTHON=python3 && mkdir -p /tmp/gc &&
#   timeout 420 bash benchmarks/gpu_check.sh /tmp/gc; tar czf $OUT/gpu_check.tgz -C /tmp gc
# (a call returns at most 8 files: hence the tarball). Unpack it into benchmarks/results/gpu
# and run `python -m benchmarks.gen_docs` (docs/performance.md, "On a GPU").
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
STEPS=(machine tests tests_gpu_tier speed speed_cpu vlm vlm_2b)

ALLOW_CPU=0
DRY=0
DIR=""
ONLY=""
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --allow-cpu) ALLOW_CPU=1 ;;
    --dry-run) DRY=1 ;;
    --only=*)
      if [ -n "$ONLY" ]; then
        echo "gpu_check.sh: one --only, naming every step: --only=a,b" >&2; exit 2
      fi
      IFS=, read -ra NAMES <<<"${arg#--only=}"
      if [ "${#NAMES[@]}" -eq 0 ]; then
        echo "gpu_check.sh: --only names no step (steps: ${STEPS[*]})" >&2; exit 2
      fi
      for name in "${NAMES[@]}"; do
        if [[ -z "$name" || " ${STEPS[*]} " != *" $name "* ]]; then
          echo "gpu_check.sh: unknown step '$name' in --only (steps: ${STEPS[*]})" >&2; exit 2
        fi
      done
      ONLY=",${arg#--only=}," ;;
    -*) echo "gpu_check.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    *)
      if [ -n "$DIR" ]; then
        echo "gpu_check.sh: one OUT_DIR only, got '$DIR' and '$arg'" >&2; exit 2
      fi
      DIR="$arg" ;;
  esac
done
OUT_DIR=${DIR:-${OUT:-benchmarks/results/gpu}}

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

DEVICE=cuda
SPEED_ARGS=(--devices cuda --size 64 --sub-steps 192 --repeats 3)  # the 5-minute budget
CPU_ARGS=(--devices cpu --size 64 --sub-steps 192 --repeats 3 --no-tools --rewards)
VLM_2B_ARGS=(--arch qwen2-vl-2b --group-size 8)
if [ "$DRY" -eq 0 ]; then
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    if [ "$ALLOW_CPU" -eq 0 ]; then
      echo "gpu_check.sh: no CUDA device (torch.cuda.is_available() is False); nothing run." >&2
      echo "  Run it on the lent GPU machine, or pass --allow-cpu for a CPU smoke test." >&2
      exit 3
    fi
    echo "gpu_check.sh: no CUDA device: --allow-cpu, running every step on the CPU (smoke)."
    DEVICE=cpu
    SPEED_ARGS=(--devices cpu --size 32 --envs 1 4 --sub-steps 8 --repeats 1 --no-tools)
    CPU_ARGS=("${SPEED_ARGS[@]}")
    VLM_2B_ARGS=(--arch qwen2-vl-2b --layers 1 --group-size 2)  # the real widths, one layer
  fi
  mkdir -p "$OUT_DIR"
fi

FAILED=0
# step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.txt, count failures.
step() {
  local name=$1 limit=$2
  shift 2
  [ -z "$ONLY" ] || [[ "$ONLY" == *",$name,"* ]] || return 0
  echo "== $name (limit ${limit}s): $*"
  [ "$DRY" -eq 1 ] && return 0
  local start=$SECONDS rc
  timeout "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.txt"
  rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc in $((SECONDS - start))s"
  # pytest's 5 is "no test selected" (a tier with no tests yet): not a failure.
  [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || FAILED=$((FAILED + 1))
}

PYTEST=("$PY" -m pytest -q -rs -p no:cacheprovider -o addopts= --import-mode=importlib)
XDIST=()  # pytest-xdist, where installed: the GPU machine has cores to spare
if [ "$DRY" -eq 0 ] && "$PY" -c "import xdist" 2>/dev/null; then
  XDIST=(-n "$(( $(nproc) > 8 ? 8 : $(nproc) ))")
fi

step machine 20 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader || true; \"$PY\" -c \"import torch; print('torch', torch.__version__, \
  'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if \
  torch.cuda.is_available() else ''); import re, importlib.metadata as m; \
  key = lambda n: re.sub('[-_.]+', '-', n).lower(); \
  have = {key(d.metadata['Name']): d.version for d in m.distributions()}; \
  print(*(n + ' ' + have.get(key(n), 'absent') for n in ('transformers', 'peft', \
  'gymnasium', 'stable-baselines3', 'pyiqa', 'numpy')), sep=', ')\""
# Default and gpu tiers (not slow, not weights) of the tool, learned-tool and pool tests; the
# registry-wide tool tests in their gpu tier (their CPU tier is the default CI run).
step tests 110 "${PYTEST[@]}" "${XDIST[@]}" -m "not slow and not weights" \
  tests/test_tool_parity.py tests/test_learned_tools.py tests/test_pool.py
step tests_gpu_tier 40 "${PYTEST[@]}" -m gpu tests/test_tools.py tests/test_degradations.py \
  tests/test_metrics.py
step speed 100 "$PY" -m benchmarks.cli speed "${SPEED_ARGS[@]}" \
  --out-json "$OUT_DIR/throughput.json" --out-md "$OUT_DIR/performance.md"
step speed_cpu 60 "$PY" -m benchmarks.cli speed "${CPU_ARGS[@]}" \
  --out-json "$OUT_DIR/throughput_cpu.json" --out-md ""
step vlm 60 "$PY" -m benchmarks.vlm_gpu_check --device "$DEVICE" --out "$OUT_DIR/vlm_gpu_check.json"
step vlm_2b 240 "$PY" -m benchmarks.vlm_gpu_check --device "$DEVICE" "${VLM_2B_ARGS[@]}" \
  --out "$OUT_DIR/vlm_2b_gpu_check.json"

[ "$DRY" -eq 1 ] || echo "gpu_check.sh: $FAILED failed step(s); results in $OUT_DIR"
exit "$FAILED"
