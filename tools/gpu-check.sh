#!/usr/bin/env bash
# The check run on a lent GPU machine (H100/H200, 16 cores, nvcc, no internet): configure with the CUDA
# backend for sm_90, build with every core, run the GPU tests (tests_gpu, directly) and the CPU tests, then
# every benchmark that exists, and write OUTDIR/report.md. It never stops at a failure: each step's status
# and log are recorded, and the report is always written. Whole run time-boxed to ~7.5 minutes.
#   usage: tools/gpu-check.sh OUTDIR
#   env:   BUILD_DIR (default build-gpu), GPU_CHECK_BUDGET_S (default 450), CUDNN_ROOT (optional)
#   exit:  0 when every step succeeded, 1 when any failed (the report is written either way)
# Benchmarks: build/pneumo-kernel-bench (if built), `pneumo bench --device cuda --suite all` (if the command
# exists), and every executable bench/gpu/* run as `FILE BUILD_DIR` with PNEUMO_BUILD_DIR, PNEUMO_REPORT_DIR
# (= OUTDIR) and PNEUMO_TIME_LEFT_S in the environment; each one's output goes into the report.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

if [ $# -lt 1 ]; then
  echo "usage: tools/gpu-check.sh OUTDIR" >&2
  exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"
build="${BUILD_DIR:-build-gpu}"
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
budget="${GPU_CHECK_BUDGET_S:-450}"
start=$(date +%s)
jobs=$(nproc 2>/dev/null || echo 4)

steps=()  # "name|status|seconds|log"
report_written=0
failed_steps=0

time_left() { echo $(( budget - ($(date +%s) - start) )); }

# run_step NAME LOG CAP_SECONDS COMMAND... : runs with a timeout of min(CAP, time left - 30 s for the report).
run_step() {
  local name="$1" log="$2" cap="$3"
  shift 3
  local left=$(( $(time_left) - 30 ))
  local limit=$(( cap < left ? cap : left ))
  if [ "$limit" -le 5 ]; then
    steps+=("$name|skipped (out of time)|0|$log")
    echo "== $name: skipped, out of time" | tee -a "$out/console.log"
    return 124
  fi
  echo "== $name (limit ${limit}s)" | tee -a "$out/console.log"
  local t0=$(date +%s) rc
  timeout --kill-after=10 "$limit" "$@" > "$out/$log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local status="ok"
  [ $rc -ne 0 ] && status="FAILED (exit $rc)"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="TIMED OUT after ${limit}s"
  steps+=("$name|$status|$dt|$log")
  [ $rc -ne 0 ] && failed_steps=$((failed_steps + 1))
  tail -n 5 "$out/$log" | sed 's/^/   /' | tee -a "$out/console.log"
  echo "   -> $status in ${dt}s" | tee -a "$out/console.log"
  return $rc
}

# ---- environment -----------------------------------------------------------------------------------
nvcc_bin="$(command -v nvcc || true)"
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc

cudnn_include="" cudnn_library=""
for inc in "${CUDNN_ROOT:-/nonexistent}/include" /usr/local/cuda/include /usr/include /usr/include/x86_64-linux-gnu; do
  if [ -f "$inc/cudnn_version.h" ]; then cudnn_include="$inc"; break; fi
done
if [ -z "$cudnn_include" ]; then
  # cuDNN only inside the Python wheel nvidia-cudnn-cu13 (or -cu12): use its include/ and lib/.
  wheel_dir="$(python3 -c 'import nvidia.cudnn as m, os; print(os.path.dirname(m.__file__) if getattr(m, "__file__", None) else list(m.__path__)[0])' 2>/dev/null || true)"
  if [ -n "$wheel_dir" ] && [ -f "$wheel_dir/include/cudnn_version.h" ]; then
    export CUDNN_ROOT="$wheel_dir"
    cudnn_include="$wheel_dir/include"
    cudnn_library="$(ls "$wheel_dir"/lib/libcudnn.so* 2>/dev/null | sort | head -n 1)"
    export LD_LIBRARY_PATH="$wheel_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi
cudnn_ver="not found"
if [ -n "$cudnn_include" ]; then
  cudnn_ver="$(awk '/#define CUDNN_MAJOR/{a=$3} /#define CUDNN_MINOR/{b=$3} /#define CUDNN_PATCHLEVEL/{c=$3} END{print a"."b"."c}' "$cudnn_include/cudnn_version.h") ($cudnn_include)"
fi

cmake_args=(-S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPNEUMO_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
command -v ninja >/dev/null 2>&1 && [ ! -f "$build/CMakeCache.txt" -o -f "$build/build.ninja" ] && cmake_args+=(-G Ninja)
[ -n "$nvcc_bin" ] && cmake_args+=(-DCMAKE_CUDA_COMPILER="$nvcc_bin")
[ -n "$cudnn_include" ] && cmake_args+=(-DCUDNN_INCLUDE_DIR="$cudnn_include")
[ -n "$cudnn_library" ] && cmake_args+=(-DCUDNN_LIBRARY="$cudnn_library")
# GoogleTest: the tests' CMake uses this source tree only when no installed GoogleTest is found.
[ -f "$repo/.gtest-src/CMakeLists.txt" ] && cmake_args+=(-DPNEUMO_GTEST_SOURCE="$repo/.gtest-src")

if [ -d "$repo/.git" ] || git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (with local changes)')"
elif [ -f "$repo/COMMIT" ]; then
  commit="$(head -n 1 "$repo/COMMIT")"
else
  commit="unknown"
fi

# ---- the report (always written, also when interrupted) --------------------------------------------
gtest_summary() {  # gtest JSON -> "passed P, failed F, skipped S" and the failed names, one per line
  python3 - "$1" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
passed = failed = skipped = 0
bad = []
for suite in d.get("testsuites", []):
    for t in suite.get("testsuite", []):
        name = suite["name"] + "." + t["name"]
        if t.get("failures"):
            failed += 1; bad.append(name)
        elif t.get("result") == "SKIPPED" or t.get("status") == "NOTRUN":
            skipped += 1
        else:
            passed += 1
print(f"passed {passed}, failed {failed}, skipped {skipped}")
for b in bad: print(b)
PY
}
gtest_log_summary() {  # fallback from a console log when the JSON is missing (crash, timeout)
  local log="$1"
  local p f s
  p=$(grep -c '^\[       OK \]' "$log" 2>/dev/null)
  f=$(grep -c '^\[  FAILED  \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]* (' "$log" 2>/dev/null)
  s=$(grep -c '^\[  SKIPPED \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]* (' "$log" 2>/dev/null)
  echo "passed $p, failed $f, skipped $s (from the console log: the run did not finish)"
  grep '^\[  FAILED  \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]* (' "$log" | sed 's/^\[  FAILED  \] //; s/ (.*//' | sort -u
  local last
  last=$(grep '^\[ RUN      \]' "$log" | tail -n 1 | sed 's/^\[ RUN      \] //')
  [ -n "$last" ] && ! grep -q "^\[       OK \] $last\|^\[  FAILED  \] $last\|^\[  SKIPPED \] $last" "$log" && echo "$last (running when the log ends)"
}

smi() {  # one nvidia-smi field list for GPU 0, or "unknown"
  local v
  v="$(nvidia-smi --query-gpu="$1" --format=csv,noheader 2>/dev/null | head -n 1)"
  echo "${v:-unknown}"
}

write_report() {
  [ "$report_written" = 1 ] && return
  report_written=1
  local r="$out/report.md"
  {
    echo "# pneumo GPU check"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |"
    echo "| commit | $commit |"
    echo "| device | $(smi name,memory.total) |"
    echo "| driver | $(smi driver_version) |"
    echo "| nvcc | $([ -n "$nvcc_bin" ] && "$nvcc_bin" --version | grep -o 'release [0-9.]*, V[0-9.]*' || echo 'not found') |"
    echo "| cuDNN | $cudnn_ver |"
    echo "| host | $(nproc) cores, $(hostname) |"
    echo "| total time | $(( $(date +%s) - start )) s |"
    echo
    echo "## Steps"
    echo
    echo "| step | status | seconds | log |"
    echo "|---|---|---|---|"
    for s in "${steps[@]}"; do
      IFS='|' read -r n st sec log <<< "$s"
      echo "| $n | $st | $sec | $log |"
    done
    echo
    echo "## GPU tests (tests_gpu)"
    echo
    if [ -s "$out/tests_gpu.json" ]; then
      echo '```'; gtest_summary "$out/tests_gpu.json"; echo '```'
    elif [ -f "$out/tests_gpu.log" ]; then
      echo '```'; gtest_log_summary "$out/tests_gpu.log"; echo '```'
    else
      echo "not run"
    fi
    if [ -f "$out/tests_gpu.log" ] && grep -q '^\[  FAILED  \]' "$out/tests_gpu.log"; then
      echo
      echo "First failure messages:"
      echo '```'
      grep -B1 -A8 'Failure$' "$out/tests_gpu.log" | head -n 80
      echo '```'
    fi
    if [ -f "$out/tests_gpu.log" ] && grep -q '^BANDWIDTH' "$out/tests_gpu.log"; then
      echo
      echo "Memory-bound ops, NHWC [4, 256, 256, 64] (TensorKernelsGpu.BandwidthReport):"
      echo '```'
      grep '^BANDWIDTH' "$out/tests_gpu.log" | sed 's/^BANDWIDTH //'
      echo '```'
    fi
    echo
    echo "## CPU tests (ctest -L cpu)"
    echo
    if [ -f "$out/tests_cpu.log" ]; then
      echo '```'
      grep -E 'tests passed|tests failed|Total Test time' "$out/tests_cpu.log" || echo "no ctest summary (see tests_cpu.log)"
      sed -n '/The following tests FAILED/,$p' "$out/tests_cpu.log" | head -n 60
      echo '```'
    else
      echo "not run"
    fi
    for b in "$out"/bench-*.log; do
      [ -f "$b" ] || continue
      echo
      echo "## Benchmark: $(basename "$b" .log | sed 's/^bench-//')"
      echo
      echo '```'
      head -c 20000 "$b"
      echo '```'
    done
    echo
    echo "## Build warnings"
    echo
    echo '```'
    if [ -f "$out/build.log" ]; then grep -E 'warning' "$out/build.log" | sort -u | head -n 40; else echo "no build log"; fi
    echo '```'
  } > "$r"
  echo "report: $r"
}
trap 'write_report' EXIT
trap 'exit 130' INT TERM

# ---- configure, build ------------------------------------------------------------------------------
echo "pneumo gpu-check: commit $commit, $jobs jobs, budget ${budget}s, cuDNN $cudnn_ver" | tee "$out/console.log"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true

run_step configure configure.log 120 cmake "${cmake_args[@]}"
if [ -f "$build/build.ninja" ]; then
  run_step build build.log 330 cmake --build "$build" -j "$jobs" -- -k 0
else
  run_step build build.log 330 cmake --build "$build" -j "$jobs" -- -k
fi

# ---- tests -----------------------------------------------------------------------------------------
if [ -x "$build/tests/tests_gpu" ]; then
  rm -f "$out/tests_gpu.json"
  run_step tests_gpu tests_gpu.log 180 "$build/tests/tests_gpu" --gtest_output="json:$out/tests_gpu.json"
else
  steps+=("tests_gpu|not built|0|build.log")
fi
if [ -n "${GPU_CHECK_SKIP_CPU_TESTS:-}" ]; then
  steps+=("tests_cpu|skipped (GPU_CHECK_SKIP_CPU_TESTS: CI runs them)|0|-")
elif [ -x "$build/tests/tests_cpu" ]; then
  run_step tests_cpu tests_cpu.log 120 ctest --test-dir "$build" -L cpu -j "$jobs" --timeout 100 --output-on-failure \
    --output-junit "$out/tests_cpu.junit.xml"
else
  steps+=("tests_cpu|not built|0|build.log")
fi

# ---- benchmarks ------------------------------------------------------------------------------------
if [ -x "$build/pneumo" ]; then
  run_step "pneumo info" bench-pneumo-info.log 20 "$build/pneumo" info
  if "$build/pneumo" --help 2>&1 | grep -qw bench; then
    run_step "pneumo bench" bench-pneumo-bench.log 120 "$build/pneumo" bench --device cuda --suite all \
      --json "$out/pneumo-bench.json"
  fi
fi
if [ -x "$build/pneumo-kernel-bench" ]; then
  run_step "pneumo-kernel-bench" bench-kernel-bench.log 120 "$build/pneumo-kernel-bench"
fi
if [ -d "$repo/bench/gpu" ]; then
  for script in "$repo"/bench/gpu/*; do
    [ -f "$script" ] && [ -x "$script" ] || continue
    name="$(basename "$script")"
    run_step "bench/gpu/$name" "bench-${name%.*}.log" 150 env PNEUMO_BUILD_DIR="$build" PNEUMO_REPORT_DIR="$out" \
      PNEUMO_TIME_LEFT_S="$(( $(time_left) - 40 ))" "$script" "$build"
  done
fi

write_report
# Exit status: 0 when every step succeeded, 1 otherwise (the report says which).
[ "$failed_steps" -eq 0 ]
