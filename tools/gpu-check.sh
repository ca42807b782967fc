#!/usr/bin/env bash
# The check run on a lent GPU machine (H100/H200, 16 cores, nvcc, no internet; 15 minutes of device time in
# all, so this run is time-boxed to ~8 minutes and a rerun fits): configure with the CUDA backend for sm_90,
# build pneumo, pneumo-kernel-bench and tests_gpu with every core, then in this order (the priority: the caps add
# up to more than the budget, and a step with no time left is reported as skipped):
#   1. every GPU test (tests_gpu) with PNEUMO_REQUIRE_GPU=1: a GPU test that cannot run FAILS instead of
#      skipping, and a run in which no GPU test passed is a failed step;
#   2. `pneumo bench-models` (unet_se50 1024 batch 4, bf16 and float32: step and enqueue time, peak memory,
#      the per-op profile of one step);
#   3. bench/gpu/networks_vs_torch.py: the goal table (the five networks against PyTorch: step time, peak
#      memory, inference images/s; unet_se50 first, as many as the time allows);
#   4. the network GPU tests again with the opt-in paths on (PNEUMO_FUSED_BN=1 PNEUMO_FUSED_CONCAT=1
#      PNEUMO_DGRAD_ACCUMULATE=1);
#   5. their speed in bench-models: fused BN/concat, --cast-once, --optimizer adam --cuda-graph (the whole
#      step captured; bf16), --dgrad-accumulate (bf16), --tf32 (f32);
#   6. bench/gpu/unet_se50_torch_profile.py (PyTorch's step: per-op profile, peak memory, torch.compile);
#   7. pneumo-kernel-bench;  8. compute-sanitizer memcheck over the engine's own kernels (60 s cap);
#   9. bench/gpu/models_bf16_diagnosis.sh (where the bf16 network error comes from, layer by layer);
#  10. the conv tests with PNEUMO_CONV_ENGINE=graph and its plan cache, and the graph-vs-legacy conv rows;
#  11. train throughput (bench/gpu/train_unet_se50_vs_torch.sh, or GPU_CHECK_TRAIN_CMD);
#  12. every other executable bench/gpu/* script, `pneumo bench`, then (opt-in) the CPU tests.
# On the lent machine: first `tools/gpu-carry.sh` HERE (the Debian headers and GoogleTest's sources, which
# that machine lacks, into .deps/ and .gtest-src/), then
#   run(command="bash tools/gpu-run.sh", carry=[".deps", ".gtest-src"], timeout_s=600)
# which runs this script and returns report.md, console.log and an archive of every log.
# It never stops at a failure: each step's status and log are recorded, and OUTDIR/report.md is always
# written. Without a GPU it still runs and reports (the GPU steps fail, naming why): GPU_CHECK_NO_BUILD=1
# with BUILD_DIR=<an existing build> skips configure + build for such a dry run.
#   usage: tools/gpu-check.sh OUTDIR
#   env:   BUILD_DIR (default build-gpu), GPU_CHECK_BUDGET_S (default 480), CUDNN_ROOT (optional),
#          GPU_CHECK_CPU_TESTS=1 (also run ctest -L cpu; CI runs them), GPU_CHECK_NO_BUILD=1,
#          GPU_CHECK_ONLY=key,... (only those step groups, e.g. a second run: keys at "the steps" below),
#          GPU_CHECK_TRAIN_CMD (step 11's command)
#   exit:  0 when every step succeeded, 1 when any failed (the report is written either way)
# Every bench/gpu script runs as `FILE BUILD_DIR` with PNEUMO_BUILD_DIR, PNEUMO_REPORT_DIR (= OUTDIR) and
# PNEUMO_TIME_LEFT_S in the environment; each one's output goes into the report.
set -uo pipefail
# A bench/gpu script that itself ends by calling this one (train_unet_se50_vs_torch.sh does, for standalone
# use) must not start a nested check: that rebuilt and recursed until the budget ran out.
if [ -n "${PNEUMO_GPU_CHECK_RUNNING:-}" ]; then
  echo "tools/gpu-check.sh: already running (pid $PNEUMO_GPU_CHECK_RUNNING); nested call skipped"
  exit 0
fi
export PNEUMO_GPU_CHECK_RUNNING=$$
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
budget="${GPU_CHECK_BUDGET_S:-480}"
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
# The Debian headers, carried to the device machine (which has none) by tools/gpu-carry.sh.
if [ -d "$repo/.deps/include" ]; then
  [ -f /usr/include/stb/stb_image.h ] || cmake_args+=(-DSTB_INCLUDE_DIR="$repo/.deps/include/stb")
  [ -f /usr/include/nlohmann/json.hpp ] || cmake_args+=(-DNLOHMANN_JSON_INCLUDE_DIR="$repo/.deps/include")
  [ -f /usr/include/CLI/CLI.hpp ] || cmake_args+=(-DCLI11_INCLUDE_DIR="$repo/.deps/include")
fi
# Only what this run uses (tests_cpu only when GPU_CHECK_CPU_TESTS asks for the CPU tests).
build_targets=(pneumo pneumo-kernel-bench tests_gpu)
[ -n "${GPU_CHECK_CPU_TESTS:-}" ] && build_targets+=(tests_cpu)

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
passed = failed = skipped = disabled = 0
bad = []
for suite in d.get("testsuites", []):
    for t in suite.get("testsuite", []):
        name = suite["name"] + "." + t["name"]
        if t.get("failures"):
            failed += 1; bad.append(name)
        elif t.get("status") == "NOTRUN":  # DISABLED_ child-process probes
            disabled += 1
        elif t.get("result") == "SKIPPED":
            skipped += 1
        else:
            passed += 1
print(f"passed {passed}, failed {failed}, skipped {skipped} (and {disabled} disabled: child-process probes)")
for b in bad: print(b)
PY
}
gtest_log_summary() {  # fallback from a console log when the JSON is missing (crash, timeout)
  local log="$1"
  local p f s
  p=$(grep -c '^\[       OK \]' "$log" 2>/dev/null)
  f=$(grep -c '^\[  FAILED  \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]* (' "$log" 2>/dev/null)
  s=$(grep -c '^\[  SKIPPED \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]* (' "$log" 2>/dev/null)
  echo "passed $p, failed $f, skipped $s (counted from the console log)"
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
    echo "Run with PNEUMO_REQUIRE_GPU=1: a GPU test that could not run is a failure, not a skip."
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
    if [ -f "$out/tests_gpu.log" ] && grep -q ' eval \| train ' "$out/tests_gpu.log"; then
      echo
      echo "Network GPU-vs-CPU figures (ModelsGpu):"
      echo '```'
      grep -E '(float32|bfloat16) (eval|train)|worst tensor / ' "$out/tests_gpu.log" | head -n 80
      echo '```'
    fi
    # The other runs of tests_gpu (opt-in paths, memcheck, the graph conv engine): summary and failures.
    for t in "$out"/tests_gpu_*.log; do
      [ -f "$t" ] || continue
      echo
      echo "### $(basename "$t")"
      echo
      echo '```'
      gtest_log_summary "$t"
      grep -E 'ERROR SUMMARY|^========= (Invalid|Program hit|Error)' "$t" | head -n 20
      grep -B1 -A8 'Failure$' "$t" | head -n 40
      grep -E '(float32|bfloat16) (eval|train)|worst tensor / ' "$t" | head -n 40
      echo '```'
    done
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
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "no GPU visible: the GPU steps will fail and say why" | tee -a "$out/console.log"

if [ -n "${GPU_CHECK_NO_BUILD:-}" ]; then
  steps+=("configure + build|skipped (GPU_CHECK_NO_BUILD: using $build as it is)|0|-")
else
  run_step configure configure.log 120 cmake "${cmake_args[@]}"
  if [ -f "$build/build.ninja" ]; then
    run_step build build.log 330 cmake --build "$build" -j "$jobs" --target "${build_targets[@]}" -- -k 0
  else
    run_step build build.log 330 cmake --build "$build" -j "$jobs" --target "${build_targets[@]}" -- -k
  fi
fi

# A step that only records a result computed here (no command to time).
record_step() {  # NAME STATUS LOG
  steps+=("$1|$2|0|$3")
  case "$2" in ok*) ;; *) failed_steps=$((failed_steps + 1)) ;; esac
  echo "== $1: $2" | tee -a "$out/console.log"
}
run_bench_script() {  # SCRIPT CAP_SECONDS
  local script="$1" cap="$2" name
  name="$(basename "$1")"
  run_step "bench/gpu/$name" "bench-${name%.*}.log" "$cap" env PNEUMO_BUILD_DIR="$build" PNEUMO_REPORT_DIR="$out" PNEUMO_STEP_CAP_S="$cap" \
    PNEUMO_TIME_LEFT_S="$(( $(time_left) - 40 ))" "$script" "$build"
}

# ---- the steps, most important first ---------------------------------------------------------------
# The caps add up to more than the budget: later steps are skipped when time runs out (the report says so),
# so the order is the priority: the GPU tests, unet_se50's step and profile, the goal table against
# PyTorch, the opt-in paths' network tests and speed, PyTorch's profile, then the rest.
# GPU_CHECK_ONLY=key,key runs only those groups (a second run picks up what the first skipped):
#   tests bench-models goal-table fused-tests switches torch-profile kernel-bench memcheck diagnosis
#   conv-graph train scripts pneumo-bench cpu-tests
want() { [ -z "${GPU_CHECK_ONLY:-}" ] || [[ ",${GPU_CHECK_ONLY}," == *",$1,"* ]]; }

# ---- 1. GPU tests, every skip a failure ------------------------------------------------------------
if want tests && [ -x "$build/tests/tests_gpu" ]; then
  rm -f "$out/tests_gpu.json"
  run_step tests_gpu tests_gpu.log 200 env PNEUMO_REQUIRE_GPU=1 "$build/tests/tests_gpu" \
    --gtest_output="json:$out/tests_gpu.json"
  # Belt and braces: a run in which no GPU test passed proves nothing, whatever its exit status.
  passed=$( (gtest_summary "$out/tests_gpu.json" 2>/dev/null || gtest_log_summary "$out/tests_gpu.log") |
    head -n 1 | sed -n 's/^passed \([0-9]*\).*/\1/p')
  if [ "${passed:-0}" -gt 0 ]; then
    record_step "tests_gpu: some GPU test passed" "ok ($passed passed)" tests_gpu.log
  else
    record_step "tests_gpu: some GPU test passed" "FAILED (no GPU test passed: $(grep -o 'PNEUMO_REQUIRE_GPU=1 but [^"]*' "$out/tests_gpu.log" 2>/dev/null | head -n 1))" tests_gpu.log
  fi
elif want tests; then
  record_step tests_gpu "FAILED (not built)" build.log
fi

# ---- 2. pneumo's unet_se50 step: time, host enqueue time, peak memory (caching allocator) and, with --profile,
# the per-op table of one more step (self time by op, shape and direction; op sum against wall).
if want bench-models && [ -x "$build/pneumo" ]; then
  run_step "pneumo info" bench-pneumo-info.log 20 "$build/pneumo" info
  run_step "pneumo bench-models" bench-pneumo-bench-models.log 80 bash -c \
    "for dt in bf16 f32; do '$build/pneumo' bench-models --device cuda --dtype \$dt --models unet_se50 --size 1024 --batch 4 --iters 5 --profile --profile-top 40 || exit 1; done"
fi

# ---- 3. the goal table of issue 12: per network, training step time and peak memory, inference images/s,
# each against the PyTorch twin; unet_se50 first, then as many of the others as the time allows.
if want goal-table && [ -x "$repo/bench/gpu/networks_vs_torch.py" ]; then
  run_step "bench/gpu/networks_vs_torch.py" bench-networks_vs_torch.log 150 \
    env PNEUMO_BUILD_DIR="$build" PNEUMO_REPORT_DIR="$out" PNEUMO_STEP_CAP_S=150 PNEUMO_TIME_LEFT_S="$(( $(time_left) - 40 ))" \
    "$repo/bench/gpu/networks_vs_torch.py" "$build" --iters 3
fi

# ---- 4. the opt-in paths (off by default until this run verifies them): the network tests again with BN+ReLU,
# the bottleneck tails and upsample+concat fused, and the data gradients summed in the convolutions' pass
# (cuDNN beta = 1; the CPU bf16 reference rounds as it does). Each path's op-level tests ran in step 1.
if want fused-tests && [ -x "$build/tests/tests_gpu" ]; then
  run_step "tests_gpu ModelsGpu with PNEUMO_FUSED_BN=1 PNEUMO_FUSED_CONCAT=1 PNEUMO_DGRAD_ACCUMULATE=1" tests_gpu_fused.log 100 env \
    PNEUMO_REQUIRE_GPU=1 PNEUMO_FUSED_BN=1 PNEUMO_FUSED_CONCAT=1 PNEUMO_DGRAD_ACCUMULATE=1 "$build/tests/tests_gpu" --gtest_filter='ModelsGpu.*:CpuBf16Gpu.*'
fi

# ---- 5. their speed: fused BN and concat; weights cast once per step (bf16); the whole training step
# (forward, backward, capturable Adam) eager and captured as a CUDA Graph (bf16), without and with the weights
# cast once; data gradients summed in the convolutions' pass (bf16); TF32 (f32). Each against step 2's rows.
# All run; any failure (a capture that fails included: bench-models then exits 1) fails the step.
bm="'$build/pneumo' bench-models --device cuda --models unet_se50 --size 1024 --batch 4 --iters 3"
if want switches && [ -x "$build/pneumo" ]; then
  run_step "pneumo bench-models, fused BN and concat" bench-pneumo-bench-models-fused.log 45 env PNEUMO_FUSED_BN=1 PNEUMO_FUSED_CONCAT=1 \
    "$build/pneumo" bench-models --device cuda --dtype bf16 --models unet_se50 --size 1024 --batch 4 --iters 5
  run_step "pneumo bench-models --cast-once / --cuda-graph / --dgrad-accumulate / --tf32" \
    bench-pneumo-bench-models-switches.log 150 bash -c \
    "rc=0; $bm --dtype bf16 --cast-once || rc=1; $bm --dtype bf16 --optimizer adam --cuda-graph || rc=1; $bm --dtype bf16 --optimizer adam --cast-once --cuda-graph || rc=1; $bm --dtype bf16 --dgrad-accumulate || rc=1; $bm --dtype f32 --tf32 || rc=1; exit \$rc"
fi

# ---- 6. PyTorch's step: eager time and enqueue time (AMP bf16, and float32 with --fp32), peak memory, the
# profiler's per-op table (also by input shape), torch.compile time and peak memory.
if want torch-profile && [ -x "$repo/bench/gpu/unet_se50_torch_profile.py" ]; then
  run_step "bench/gpu/unet_se50_torch_profile.py" bench-unet_se50_torch_profile.log 150 \
    env PNEUMO_BUILD_DIR="$build" PNEUMO_REPORT_DIR="$out" PNEUMO_STEP_CAP_S=150 \
    PNEUMO_TIME_LEFT_S="$(( $(time_left) - 40 ))" "$repo/bench/gpu/unet_se50_torch_profile.py" "$build" --fp32
fi

# ---- 7. the kernel benchmark ------------------------------------------------------------------------
if want kernel-bench && [ -x "$build/pneumo-kernel-bench" ]; then
  run_step "pneumo-kernel-bench" bench-kernel-bench.log 60 "$build/pneumo-kernel-bench" --device cuda \
    --json "$out/kernel-bench.json"
fi

# ---- 8. compute-sanitizer memcheck over the engine's own kernels: out-of-bounds and misaligned device
# accesses. A positive list: the network tests run minutes under memcheck, the cuDNN autotune shapes too,
# and the tests that fail CUDA calls on purpose (an out-of-memory request, a bad device, a host sync in a
# capture, a planted fault in a child process) would be reported as errors.
sanitizer="$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")"
memcheck_filter='OpsGpu.*:TensorKernelsGpu.*:FusedBnGpu.*:SqueezeExciteGpu.*:LossesGpu.*:OptimGpu.*:RleGpu.*'
memcheck_filter+=':MetricGpu.*:MultiTensorCastGpu.*:DropoutGpu.*:PoolGpu.*:ResizeGpu.*:ConcatGpu.*:BatchNormGpu.*'
memcheck_filter+=':AugmentGpu.*:CudaAllocatorGpu.*:CudaGraphGpu.*'
memcheck_filter+='-CudaAllocatorGpu.OutOfMemory*:CudaAllocatorGpu.BadDevice*:CudaGraphGpu.HostSync*:*BandwidthReport*'
memcheck_filter+=':CudaGraphGpu.Network*'  # a network with cuDNN searches: minutes under memcheck
if want memcheck && [ -x "$build/tests/tests_gpu" ] && [ -x "$sanitizer" ]; then
  run_step "compute-sanitizer memcheck: the engine's kernels" tests_gpu_memcheck.log 60 \
    env PNEUMO_REQUIRE_GPU=1 "$sanitizer" --tool memcheck --error-exitcode 1 --leak-check no \
    "$build/tests/tests_gpu" --gtest_filter="$memcheck_filter"
elif want memcheck && [ -x "$build/tests/tests_gpu" ]; then
  record_step "compute-sanitizer memcheck" "FAILED (compute-sanitizer not found)" build.log
fi

# ---- 9. where the bf16 network error comes from, layer by layer ------------------------------------
want diagnosis && [ -x "$repo/bench/gpu/models_bf16_diagnosis.sh" ] && run_bench_script "$repo/bench/gpu/models_bf16_diagnosis.sh" 100

# ---- 10. the conv layer tests again with the cuDNN graph-API engine as the default (PNEUMO_CONV_ENGINE=graph;
# its own tests, ConvGraphGpu*, ran in step 1), then its kernel-bench rows against legacy (unet_se50 1024 b4 bf16).
# ConvGpuCache counts the legacy algorithm cache only: under the graph engine it would test nothing or fail.
if want conv-graph && [ -x "$build/tests/tests_gpu" ]; then
  rm -f "$out/conv-plans.txt"  # the plan cache: written by the first run, read by the second
  run_step "tests_gpu (conv engine graph)" tests_gpu_conv_graph.log 60 env PNEUMO_REQUIRE_GPU=1 PNEUMO_CONV_ENGINE=graph \
    PNEUMO_CONV_PLAN_CACHE="$out/conv-plans.txt" "$build/tests/tests_gpu" \
    --gtest_filter='*ConvGpu*:*ConvGraphGpu*:-ConvGraphGpuKnownShapes.*:ConvGpuCache.*'
  if [ -s "$out/conv-plans.txt" ]; then
    run_step "tests_gpu (conv plan cache, 2nd process)" tests_gpu_conv_graph_cache.log 20 env PNEUMO_REQUIRE_GPU=1 \
      PNEUMO_CONV_PLAN_CACHE="$out/conv-plans.txt" "$build/tests/tests_gpu" --gtest_filter='ConvGraphGpuDiskCache.*'
  else  # the second process would take an empty file for a first run and pass without testing the cache
    record_step "tests_gpu (conv plan cache, 2nd process)" "FAILED (the first process wrote no plan cache)" tests_gpu_conv_graph.log
  fi
fi
if want conv-graph && [ -x "$build/pneumo-kernel-bench" ]; then
  run_step "kernel-bench conv engines" bench-conv-engines.log 60 env PNEUMO_KBENCH_CONV=1 "$build/pneumo-kernel-bench" \
    --device cuda --filter conv_engines --json "$out/kernel-bench-conv.json"
fi

# ---- 11. train throughput: pneumo train unet_se50 1024 b4 bf16 (loader included; generated images when the
# SIIM sample is not on the machine) beside PyTorch AMP channels_last. GPU_CHECK_TRAIN_CMD replaces it.
train_cmd="${GPU_CHECK_TRAIN_CMD:-}"
if [ -z "$train_cmd" ] && [ -x "$build/pneumo" ] && [ -x "$repo/bench/gpu/train_unet_se50_vs_torch.sh" ]; then
  train_cmd="'$repo/bench/gpu/train_unet_se50_vs_torch.sh' '$build' 100"
fi
if want train && [ -n "$train_cmd" ]; then
  run_step "train throughput" bench-train-throughput.log 180 env PNEUMO_TIME_LEFT_S="$(( $(time_left) - 40 ))" \
    bash -c "$train_cmd"
fi

# ---- 12. the other bench/gpu scripts, pneumo bench, the CPU tests (opt-in) --------------------------
if want scripts && [ -d "$repo/bench/gpu" ]; then
  for script in "$repo"/bench/gpu/*; do
    [ -f "$script" ] && [ -x "$script" ] || continue
    # Run above with their own caps, or (unet_se50_step_vs_torch.sh) the same shapes as steps 2 and 6;
    # train_unet_se50_vs_torch.sh also ends by running this script when asked (it recursed once).
    case "$(basename "$script")" in models_bf16_diagnosis.sh | unet_se50_torch_profile.py | unet_se50_step_vs_torch.sh | train_unet_se50_vs_torch.sh | networks_vs_torch.py) continue ;; esac
    run_bench_script "$script" 120
  done
fi
if want pneumo-bench && [ -x "$build/pneumo" ] && "$build/pneumo" --help 2>&1 | grep -qw bench; then
  run_step "pneumo bench" bench-pneumo-bench.log 60 "$build/pneumo" bench --device cuda --suite all \
    --json "$out/pneumo-bench.json"
fi
if [ -z "${GPU_CHECK_CPU_TESTS:-}" ]; then
  steps+=("tests_cpu|not run (CI runs them; GPU_CHECK_CPU_TESTS=1 to include)|0|-")
elif ! want cpu-tests; then
  steps+=("tests_cpu|not run (not in GPU_CHECK_ONLY)|0|-")
elif [ -x "$build/tests/tests_cpu" ]; then
  run_step tests_cpu tests_cpu.log 120 ctest --test-dir "$build" -L cpu -j "$jobs" --timeout 100 --output-on-failure \
    --output-junit "$out/tests_cpu.junit.xml"
else
  steps+=("tests_cpu|not built|0|build.log")
fi

write_report
# Exit status: 0 when every step succeeded, 1 otherwise (the report says which).
[ "$failed_steps" -eq 0 ]
