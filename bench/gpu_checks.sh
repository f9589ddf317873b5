#!/usr/bin/env bash
# Build pygad with CUDA on a GPU machine, run the CUDA tests, then the GPU benchmarks.
#
#   OUT=/tmp/gpu-out bash bench/gpu_checks.sh [build] [tests] [bench] [sample] [install] [dist]
#   (default: build tests bench sample)
#
# Builds in ./build-gpu for the local GPU's architecture (ARCH=90 by default) with the Python in
# $PYTHON (default python3), copies the extension next to the sources and runs everything from
# the source tree (PYTHONPATH), so no install step touches the machine's site-packages. Each
# phase has its own time limit (seconds: BUILD_S, TESTS_S, BENCH_S, SAMPLE_S) and writes its
# log to $OUT; the last lines printed are a summary. `install` checks the user's path instead:
# `pip install .` (scikit-build-core, PYGAD_WITH_CUDA=AUTO, default architectures) into a scratch
# folder, timed, then a CUDA op from outside the source tree. `dist` runs the distributed
# example under torchrun with one GPU rank (NCCL backend, CUDA collectives).
set -uo pipefail
OUT=${OUT:-/tmp/pygad-gpu}
PY=${PYTHON:-python3}
PHASES=${*:-build tests bench sample}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
summary=()

has() { [[ " $PHASES " == *" $1 "* ]]; }
phase() {  # name, limit, command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS rc
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; rc=$?
  summary+=("$name: rc=$rc $((SECONDS - t0)) s")
  return $rc
}

echo "host compiler: $(command -v g++) ($(g++ -dumpversion)), nvcc: $(command -v nvcc)" | tee "$OUT/gpu.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee -a "$OUT/gpu.txt"
$PY -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda)" | tee -a "$OUT/gpu.txt"

if has build; then
  phase build "${BUILD_S:-300}" bash -c "
    cmake -S . -B build-gpu -G Ninja -DPYGAD_WITH_CUDA=ON -DPYGAD_CUDA_ARCHITECTURES=${ARCH:-90} \
      -DPython_EXECUTABLE=\$(command -v $PY) -Dpybind11_DIR=\$($PY -m pybind11 --cmakedir) &&
    cmake --build build-gpu -j \$(nproc) && cp build-gpu/_C*.so pygad/" \
    || { tail -40 "$OUT/build.log"; printf '%s\n' "${summary[@]}"; exit 1; }
  $PY -c "import pygad; print(pygad.build_config())" | tee -a "$OUT/gpu.txt"
  ldd pygad/_C*.so | grep -E "stdc|gcc_s|gomp|cuda|torch" | tee -a "$OUT/gpu.txt"
fi

if has tests; then
  # every test that needs a GPU, plus the CPU suites of the ops and layers as a sanity check;
  # with pytest-xdist a crashing test is reported as such and the others still run
  xdist=(); $PY -c "import xdist" 2>/dev/null && xdist=(-p xdist -n 8)
  phase tests "${TESTS_S:-300}" $PY -m pytest -q -p no:cacheprovider -rfE --tb=short "${xdist[@]}" \
    tests/test_cuda_ops.py tests/ops/test_diffusion_step.py tests/nn tests/models/test_cuda_models.py \
    tests/ops/test_native_ops.py
  tail -25 "$OUT/tests.log"
fi

if has bench; then
  phase bench "${BENCH_S:-300}" env PYGAD_BENCH_DEVICE=cuda $PY -m pytest -p no:cacheprovider -s \
    bench/bench_hgt.py bench/bench_diffusion.py -k "gpu or step or train" --benchmark-only \
    --benchmark-json="$OUT/bench.json" --benchmark-columns=min,median,max,rounds
  grep -E "ratio|x |pygad|native|reference|pyg|peak" "$OUT/bench.log" | tail -30
fi

if has sample; then
  phase sample "${SAMPLE_S:-240}" env PYGAD_BENCH_DEVICE=cuda PYGAD_BENCH_SAMPLE="${SAMPLE:-100000:512}" \
    PYGAD_BENCH_SAMPLE_ROUNDS="${SAMPLE_ROUNDS:-3}" $PY -m pytest -p no:cacheprovider -s bench/bench_diffusion.py -k sample \
    --benchmark-only --benchmark-json="$OUT/sample.json" --benchmark-columns=min,median,max,rounds
  tail -15 "$OUT/sample.log"
fi

if has install; then
  phase install "${INSTALL_S:-300}" bash -c "
    rm -rf /tmp/pygad-inst /tmp/pygad-src && mkdir -p /tmp/pygad-src &&
    tar --exclude='./build*' --exclude='*.so' --exclude=./.git -cf - . | tar -xf - -C /tmp/pygad-src &&
    $PY -m pip install -q --no-build-isolation --no-deps --target /tmp/pygad-inst /tmp/pygad-src &&
    cd /tmp && PYTHONPATH=/tmp/pygad-inst $PY -c '
import torch, pygad
from pygad import ops
print(pygad.__file__, pygad.build_config())
x = torch.randn(10, 3, device=\"cuda\"); ptr = torch.tensor([0, 4, 10], device=\"cuda\")
print(\"segment_sum ok:\", torch.allclose(ops.segment_sum(x, ptr).cpu(), ops.segment_sum(x.cpu(), ptr.cpu())))'"
  tail -3 "$OUT/install.log"
fi

if has dist; then
  phase dist "${DIST_S:-200}" torchrun --standalone --nproc_per_node=1 examples/distributed_detector.py --epochs 10 \
    --vae-epochs 5 --diffusion-epochs 5
  tail -8 "$OUT/dist.log"
fi

printf '%s\n' "${summary[@]}"
