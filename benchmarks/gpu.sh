#!/usr/bin/env bash
# The GPU checks in one go (what benchmarks/RESULTS.md's GPU rows come from), from the repo root:
#   bash benchmarks/gpu.sh [OUTDIR]
# ~6 min on an H200, most of it XLA compiling the 124M step twice (~2 min each): train-step MFU of the 124M
# GPT in bf16 vs plain JAX, the cuDNN-attention test, vmapped packing of tiny GPTs (steady-state steps).
# Each part runs even if one before it fails.
set -u
out=${1:-${OUT:-/tmp/gpu-bench}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SCALING_DATA_DIR=${SCALING_DATA_DIR:-/tmp/scaling-data}
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
$py -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, jax.devices())"
$py -m pytest -q -p no:cacheprovider tests/test_models.py -k cudnn 2>&1 | tail -3 | tee "$out/test.txt"
$py benchmarks/packing.py --skip_runs 2>&1 | tee "$out/packing.txt"
$py benchmarks/train_step.py --gpu 2>&1 | tee "$out/train_step.txt"
