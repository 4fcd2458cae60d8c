#!/usr/bin/env bash
# GPU check (issue 20): install, run every CUDA-only test, compare GPU greedy codes with the CPU's
# on the public fixture, and time the small architecture (10 s clips, batch 1 and 64; float32,
# bfloat16, float16; eager and torch.compile) in one table. About 8 minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh                  # on a GPU machine, from a clone of the repository
#   bash benchmarks/gpu_check.sh --cpu-dry-run    # quick CPU rehearsal of every step (~1-2 minutes)
#
# Setup: a virtual environment (.venv-gpu, or $GPU_CHECK_VENV) with the CUDA build of torch
# (pip, from $TORCH_INDEX_URL) and `pip install -e .[test]`. Where the running python3 already
# has a CUDA torch (a GPU image), the environment reuses it (--system-site-packages) and pip
# adds only magnetkit's own requirements; --no-install uses the active python as it is.
# --cpu-dry-run installs nothing and shrinks every step: tiny model, 1 s clips, batch 1 and 2.
#
# Exit codes: 0 every step passed on a GPU (or the dry run passed); 1 a step failed; 3 no CUDA
# GPU visible (the CPU-runnable steps still ran; nothing was timed on a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0 INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) DRY=1; INSTALL=0 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
FAILED=0
step() { echo; echo "== $*"; }
fail() { echo "FAILED: $*"; FAILED=1; }

# -- 1. environment ---------------------------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  step "environment"
  VENV=${GPU_CHECK_VENV:-.venv-gpu}
  if python3 -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    python3 -m venv --system-site-packages "$VENV"   # keep the image's CUDA torch
    . "$VENV/bin/activate"
  else
    python3 -m venv "$VENV" && . "$VENV/bin/activate"
    pip install -q torch --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu128}" \
      || { echo "error: could not install a CUDA build of torch (no network? set TORCH_INDEX_URL)"; exit 1; }
  fi
  pip install -q -e ".[test]" \
    || { echo "error: pip install -e .[test] failed (offline machine: carry the missing wheels and use --no-install)"; exit 1; }
fi
PY=${PYTHON:-python}
command -v "$PY" >/dev/null || PY=python3

GPU=$($PY -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>/dev/null)
$PY -c "import torch, magnetkit; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '| magnetkit', magnetkit.__version__)" \
  || { echo "error: magnetkit does not import with $PY"; exit 1; }
if [ -z "$GPU" ]; then
  echo "no CUDA GPU visible: the CUDA tests will skip, codes are not compared and nothing is timed on a GPU"
else
  echo "GPU: $GPU"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
fi

# -- 2. every CUDA-only test (marked `cuda`; they skip, saying why, without a GPU) ----------------
step "CUDA tests: python -m pytest -m cuda"
$PY -m pytest -q -rs -m cuda tests/ || fail "CUDA tests"

# -- 3. fp32 GPU greedy codes against the CPU's (public fixture) ----------------------------------
step "greedy codes, GPU vs CPU (tests/fixtures/magnet_tiny)"
if [ -n "$GPU" ]; then
  $PY -m benchmarks.gpu_parity || fail "GPU float32 greedy codes differ from the CPU's"
else
  echo "skipped: no CUDA GPU"
fi

# -- 4. one timing table ------------------------------------------------------------------------
step "timing: decode.precision x torch.compile x batch"
if [ -n "$GPU" ]; then
  # Steps [2,1,1,1] keep each row short (greedy; '% of peak' against each precision's own GEMM peak).
  # Compiled rows come last; --time-budget skips what would overrun the 8 minutes.
  $PY -m benchmarks.generation --device cuda --no-main --no-sampling --no-compare --compare-size small \
    --compare-steps 2,1,1,1 --precision-batches 1,64 --precisions float32,bfloat16,float16 \
    --precision-compile --time-budget "${GPU_CHECK_TIME_BUDGET:-300}" --matmul-repeats 3 \
    || fail "timing table"
elif [ "$DRY" = 1 ]; then
  $PY -m benchmarks.generation --threads 1 --no-main --no-sampling --no-compare --compare-size tiny \
    --compare-steps 1,1,1,1 --duration 1 --precision-batches 1,2 --precisions float32,bfloat16,int8 \
    --time-budget 60 --matmul-repeats 1 --peak-squares 256 --peak-size tiny || fail "timing table (CPU dry run)"
else
  echo "skipped: no CUDA GPU (--cpu-dry-run times the tiny model on the CPU instead)"
fi

echo
if [ "$FAILED" = 1 ]; then echo "gpu_check: some steps FAILED"; exit 1; fi
if [ -z "$GPU" ]; then
  echo "gpu_check: no CUDA GPU on this machine; the steps that run without one passed"
  [ "$DRY" = 1 ] && exit 0
  exit 3
fi
echo "gpu_check: every step passed on $GPU"
