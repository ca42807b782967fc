#!/usr/bin/env bash
# The Debian packages pneumo needs on a fresh machine. As root it installs the missing ones (apt-get update +
# install); otherwise it prints one line naming them and exits 1. Nothing to do: silent, exit 0.
# Usage: tools/deps.sh [--fuzz] [--optional]
#   build and tests:  cmake ninja-build g++ libgtest-dev libstb-dev nlohmann-json3-dev libcli11-dev
#   --fuzz            also clang-14 libclang-rt-14-dev libomp-14-dev (sanitizer and libFuzzer jobs)
#   --optional        also libdcmtk-dev libopenjp2-7-dev (DICOM) and dicom3tools (dciodvfy, which a test runs
#                     over pneumo's DICOM SEG); their absence is never an error
# The CUDA toolkit and cuDNN are not Debian packages here: they come with the machine (the build finds them).
set -euo pipefail
required=(cmake ninja-build g++ libgtest-dev libstb-dev nlohmann-json3-dev libcli11-dev)
optional=()
for arg in "$@"; do
  case "$arg" in
    --fuzz) required+=(clang-14 libclang-rt-14-dev libomp-14-dev) ;;
    --optional) optional+=(libdcmtk-dev libopenjp2-7-dev dicom3tools) ;;
    *) echo "tools/deps.sh: unknown argument '$arg' (--fuzz, --optional)" >&2; exit 2 ;;
  esac
done
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "tools/deps.sh: not a Debian system; install the equivalents of: ${required[*]}" >&2
  exit 0
fi
missing() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
  done
}
need=($(missing "${required[@]}"))
want=($(missing ${optional[@]+"${optional[@]}"}))
[ "${#need[@]}" -eq 0 ] && [ "${#want[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if [ "${#need[@]}" -gt 0 ]; then
    echo "tools/deps.sh: missing Debian packages: ${need[*]} (as root: apt-get install ${need[*]}${want[*]:+; optional: ${want[*]}})" >&2
    exit 1
  fi
  echo "tools/deps.sh: optional Debian packages not installed: ${want[*]} (DICOM support, or the dciodvfy check, is left out)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "tools/deps.sh: installing ${need[*]} ${want[*]}" >&2
apt-get update -qq
if [ "${#need[@]}" -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "${#want[@]}" -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null ||
    echo "tools/deps.sh: optional packages ${want[*]} could not be installed; building without them" >&2
fi
