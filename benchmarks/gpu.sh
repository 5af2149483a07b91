#!/usr/bin/env bash
# The GPU run in one command (what benchmarks/RESULTS.md's GPU rows come from), from the repo root:
#   bash benchmarks/gpu.sh [--cpu-smoke] [OUTDIR]
# On one H200 in <= 8 min: the 124M GPT's train step at batch 8 / 16 / 32 / 64 (layers scanned, each with the
# remat the memory rule picks) and unrolled at batch 8, ~350M and ~774M models, compile seconds of each,
# packing end to end and a short real sweep end to end (benchmarks/gpu_suite.py says what each part measures).
# Each part is its own process under its own time limit (its JSON keeps what it measured before a limit or a
# failure), then OUTDIR/gpu.json merges them and the RESULTS.md rows are printed (MFU against the chip's
# published dense bf16 peak: H100 / H200 SXM 989 TFLOP/s).
# --cpu-smoke: the same script at tiny sizes on CPU (a minute or two; tests/test_gpu_smoke.py, make test-all).
set -u
mode=gpu
if [ "${1:-}" = "--cpu-smoke" ]; then mode=cpu-smoke; shift; fi
out=${1:-${OUT:-/tmp/gpu-bench}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SCALING_DATA_DIR=${SCALING_DATA_DIR:-/tmp/scaling-data}
py=${PYTHON:-python3}
t0=$(date +%s)
if [ "$mode" = gpu ]; then
  export JAX_PLATFORMS=cuda
  limits=(300 60 80)  # seconds: steps, packing, sweep (+ the corpus if not built, ~5 s, and ~15 s of reports
                      # and process starts: < 8 min)
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/nvidia-smi.txt"
else
  export JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=1
  limits=(150 90 150)
fi
$py -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, jax.devices())"
# The embedded corpus (packing and the sweep train on it), built once into SCALING_DATA_DIR: ~4 s.
$py -c "from scaling import config; from scaling.data import pipeline; pipeline.dataset_info(config.base('gpt', 'nano').data)" \
  > "$out/data.log" 2>&1 || echo "gpu.sh: corpus build failed (log: $out/data.log)"
suite() {  # part, limit, extra args
  local part=$1 limit=$2; shift 2
  timeout -k 10 "$limit" $py benchmarks/gpu_suite.py "$part" --mode "$mode" --out "$out/$part.json" "$@" \
    > "$out/$part.log" 2>&1
  echo "gpu.sh: $part exit $? after $(( $(date +%s) - t0 )) s (log: $out/$part.log)"
}
suite steps "${limits[0]}"
suite packing "${limits[1]}"
rm -rf "$out/sweep"
suite sweep "${limits[2]}" --dir "$out/sweep"
$py benchmarks/gpu_suite.py report --mode "$mode" --dir "$out"
echo "gpu.sh: wrote $out/gpu.json in $(( $(date +%s) - t0 )) s"
