#!/bin/bash
# Alternates bench/cpu_train_vs_torch.sh over several builds (e.g. before and after a change), ROUNDS times,
# so a shared machine's changing load hits every build alike; prints the load average with each run.
# usage: [STEPS=6] [ROUNDS=2] bench/cpu_train_before_after.sh BUILD_DIR...   (each holding a `pneumo`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
for round in $(seq "${ROUNDS:-2}"); do
  for b in "$@"; do
    echo "== $b round $round start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$here/cpu_train_vs_torch.sh" "$b" unet_se50 256 4 "${STEPS:-6}" 2 | tail -n 1
  done
done
