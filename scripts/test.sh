#!/usr/bin/env bash
# The whole test suite: a release build (unit, CLI and corpus-slice tests;
# lmc built with MPI, -DLMC_MPI=ON, so that tests/cli/mpi.sh runs),
# an ASan+UBSan build of the unit tests, and a clang build for the
# cross-compiler determinism check. Budget: under 20 minutes on 2 cores.
# Where nvcc is found the release build includes the CUDA backend (its
# tests skip without a GPU); the other builds leave it out: they check the
# C code under sanitizers and another compiler.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" test
jobs=$(nproc)
run_suite() { # build-dir, cmake args..., -- ctest args...
  local dir=$1; shift
  local cmake_args=() ctest_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ctest_args=("$@")
  cmake -S "$root" -B "$dir" "${cmake_args[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  (cd "$dir" && ctest --output-on-failure -j"$jobs" "${ctest_args[@]}")
}
echo "== release build (gcc)"
run_suite "$root/build-test" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc -DLMC_MPI=ON
echo "== ASan+UBSan build of the unit tests (gcc)"
# Debug keeps assert() on; -O1 (as the sanitizers' documentation advises) runs
# the unit tests in 147 s instead of 413 s at -O0 on the 2-core machine.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DLMC_SANITIZE=ON \
  -DLMC_CUDA=OFF -DCMAKE_C_COMPILER=gcc -- -L unit
echo "== clang build: unit tests, and archives exchanged with the gcc build"
LMC_OTHER_BUILD="$root/build-test/lmc" \
  run_suite "$root/build-clang" -DCMAKE_BUILD_TYPE=Release -DLMC_CUDA=OFF -DCMAKE_C_COMPILER=clang -- -L "unit|exchange"
echo "== libFuzzer targets (clang, ASan+UBSan), each for a bounded time"
run_suite "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLMC_FUZZ=ON -DLMC_CUDA=OFF -DCMAKE_C_COMPILER=clang -- -L fuzz
