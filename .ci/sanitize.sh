#!/usr/bin/env bash
# Sanitizer run: build the extension with AddressSanitizer + UndefinedBehaviorSanitizer (CUDA
# off) in build-asan/, overlay that _C*.so on a copy of the package, and run the native-op, HGT,
# data and fuzz tests with the ASan runtime preloaded. Any sanitizer report fails (UBSan halts on
# the first error, ASan aborts by default; the exit code is checked and the log is grepped).
#
# Usage: .ci/sanitize.sh [python]   (default: the active `python`). Needs cmake, ninja, pybind11,
# torch, pytest and hypothesis in that Python.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-$(command -v python)}
build=build-asan
start=$(date +%s)

libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
[ -e "$libasan" ] || { echo "FAIL: libasan not found (gcc -print-file-name=libasan.so)"; exit 1; }

flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"
cmake -S . -B "$build" -G Ninja -DPYGAD_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSKBUILD_PROJECT_VERSION="$("$py" -c 'import re;print(re.search(r"__version__ = \"(.+?)\"", open("pygad/__init__.py").read())[1])')" \
      -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
      -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j"${SANITIZE_JOBS:-2}" >/dev/null
echo "sanitizer build took $(( $(date +%s) - start )) s"

# A copy of the Python package with the sanitizer build of _C (never touches the source tree
# or the installed package).
overlay="$build/overlay"
rm -rf "$overlay" && mkdir -p "$overlay"
cp -r pygad "$overlay/pygad"
find "$overlay/pygad" \( -name '__pycache__' -o -name '_C*.so' \) -prune -exec rm -rf {} +
cp "$build"/_C*.so "$overlay/pygad/"

log="$build/sanitizer.log"
rm -f "$log"*
# detect_leaks=0: CPython and torch keep memory until exit by design. protect_shadow_gap=0 lets
# libraries that map memory at fixed low addresses (torch's, numba's LLVM) coexist with ASan.
# allocator_may_return_null=1: an allocation too big for the machine fails as it does without
# ASan (torch raises, pygad names the argument) instead of aborting the process.
# Reports go to $log.<pid> as well as stderr, so a report inside a subprocess is caught too.
export ASAN_OPTIONS="detect_leaks=0:protect_shadow_gap=0:allocator_may_return_null=1:abort_on_error=1:halt_on_error=1:log_path=$PWD/$log"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$PWD/$log"
export PYTHONPATH="$PWD/$overlay${PYTHONPATH:+:$PYTHONPATH}"
tests=${SANITIZE_TESTS:-tests/ops tests/nn tests/data}
start=$(date +%s)
rc=0
LD_PRELOAD="$libasan:$libubsan" "$py" -P -c "import pygad, sys; f = pygad._C.__file__; print('sanitizer build:', f); sys.exit(0 if '$build' in f else 1)" \
  || { echo "FAIL: the overlay's _C is not the one imported"; exit 1; }
# shellcheck disable=SC2086
LD_PRELOAD="$libasan:$libubsan" "$py" -P -m pytest $tests -q -p no:cacheprovider -x || rc=$?
echo "sanitizer tests took $(( $(date +%s) - start )) s (exit $rc)"
# Reports (not the allocator's "failed to allocate" warnings, see allocator_may_return_null)
if compgen -G "$log*" >/dev/null && grep -lE "ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|Undefined)" "$log"* >/dev/null; then
  echo "FAIL: sanitizer reports:"; cat "$log"*; exit 1
fi
[ "$rc" -eq 0 ] || { echo "FAIL: tests under the sanitizer build failed"; exit "$rc"; }
echo "sanitizer OK"
