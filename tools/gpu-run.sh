#!/usr/bin/env bash
# The command of a device run (see tools/gpu-carry.sh, which must have run here first):
#   run(command="bash tools/gpu-run.sh", carry=[".deps", ".gtest-src"], timeout_s=600)
# Runs tools/gpu-check.sh into /tmp/gpu-check (its ~30 logs), then puts what comes back into $OUT, whose
# file count is limited: report.md, console.log and one archive of every log. GPU_CHECK_* variables
# pass through (e.g. GPU_CHECK_ONLY=memcheck,diagnosis for a second run).
set -uo pipefail
cd "$(dirname "$0")/.."
dest="${OUT:-/tmp/gpu-check-out}"
mkdir -p "$dest"
rm -rf /tmp/gpu-check
# Under the device call's 600 s: a check cut off still writes its report (gpu-check's exit trap) and returns.
timeout --kill-after=10 "${GPU_RUN_LIMIT_S:-560}" bash tools/gpu-check.sh /tmp/gpu-check
rc=$?
cp /tmp/gpu-check/report.md /tmp/gpu-check/console.log "$dest/" 2>/dev/null
tar czf "$dest/gpu-check-logs.tgz" -C /tmp gpu-check 2>/dev/null
echo "tools/gpu-run.sh: gpu-check exit $rc; report.md, console.log, gpu-check-logs.tgz in $dest"
exit $rc
