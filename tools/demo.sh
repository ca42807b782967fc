#!/usr/bin/env bash
# The main job: builds pneumo and runs the demo (for now `pneumo info`: the engine, its build and the
# devices it found; it runs on the CPU when there is no GPU). Usage: tools/demo.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh  # the Debian packages of the build: installed as root, else named
build="${1:-build}"
jobs="$(nproc 2>/dev/null || echo 2)"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPNEUMO_CUDA="${PNEUMO_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$jobs" --target pneumo
"$build/pneumo" info
