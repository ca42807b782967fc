#!/usr/bin/env bash
# Run HERE before a device run: the lent GPU machine has nvcc, cuDNN, CMake, ninja and PyTorch but none of the
# Debian headers pneumo builds against, and it cannot fetch them. This copies them into two git-ignored
# folders that the device tool's `carry` takes along (about 8 MiB of the 64 MiB limit):
#   .deps/include/{stb,nlohmann,CLI}   from /usr/include (libstb-dev, nlohmann-json3-dev, libcli11-dev)
#   .gtest-src/                        from /usr/src/googletest (libgtest-dev's sources; built there)
# tools/gpu-check.sh then configures with STB_INCLUDE_DIR, NLOHMANN_JSON_INCLUDE_DIR, CLI11_INCLUDE_DIR and
# PNEUMO_GTEST_SOURCE pointing at them. The device call:
#   run(command="bash tools/gpu-run.sh", carry=[".deps", ".gtest-src"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
for h in /usr/include/stb/stb_image.h /usr/include/nlohmann/json.hpp /usr/include/CLI/CLI.hpp \
         /usr/src/googletest/CMakeLists.txt; do
  [ -f "$h" ] || { echo "tools/gpu-carry.sh: $h missing here: run tools/deps.sh first" >&2; exit 1; }
done
rm -rf .deps .gtest-src
mkdir -p .deps/include
cp -r /usr/include/stb /usr/include/nlohmann /usr/include/CLI .deps/include/
cp -r /usr/src/googletest .gtest-src
echo "tools/gpu-carry.sh: .deps ($(du -sh .deps | cut -f1)) and .gtest-src ($(du -sh .gtest-src | cut -f1)) ready to carry"
