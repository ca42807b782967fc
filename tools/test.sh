#!/usr/bin/env bash
# Builds pneumo (with the CUDA backend whenever nvcc and cuDNN 9 are present) and runs every test.
# GPU tests report SKIPPED on a machine without a GPU. Usage: tools/test.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh  # the Debian packages of the build: installed as root, else named
build="${1:-build}"
jobs="$(nproc 2>/dev/null || echo 2)"
# Tests share a small machine with the build and each other: OpenMP threads sleep instead of spinning.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPNEUMO_CUDA="${PNEUMO_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 1500
