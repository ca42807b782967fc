#!/usr/bin/env bash
# Runs the libFuzzer targets of a PNEUMO_FUZZ=ON build for SECONDS each (CI smoke: 30) and prints each
# target's execution count. Corpora start from the committed synthetic seeds (tests/fuzz/seeds/<name>/), the
# inputs that once crashed (tests/fuzz/regressions/<name>/, also replayed by regressions_test.cpp), plus
# real files from ../shared/data when it is there, and grow in BUILD/fuzz-corpus/<name>/ across runs. A crash,
# leak, sanitizer report or timeout fails the run; the input is kept in BUILD/fuzz-artifacts/<name>/.
# Usage: tests/fuzz/run.sh BUILD SECONDS [NAME ...]    (NAME: rle_string rle_csv folds safetensors ...)
# Environment: PNEUMO_FUZZ_CORPUS=DIR keeps the corpora in DIR/<name> instead (a long campaign's, outside the
# repository); PNEUMO_FUZZ_RUNS=N stops a target after N executions (SECONDS still caps it);
# PNEUMO_FUZZ_NICE (default 10) is the niceness; PNEUMO_FUZZ_SEED (default 1) is libFuzzer's random seed: a
# fixed seed makes a run repeat the same mutations on the same corpus, so CI's smoke run gives the same answer
# for the same tree (a slower machine runs a prefix of the same sequence); long campaigns pass other seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="$1"
seconds="$2"
shift 2
names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
  for exe in "$build"/fuzz_*; do [ -x "$exe" ] && names+=("$(basename "$exe" | sed 's/^fuzz_//')"); done
fi
data=../shared/data

# Real-file seeds, small slices of the shared data (never copied into the repository).
real_seeds() {
  local name="$1" dir="$2" i=0
  case "$name" in
    rle_string)
      [ -f "$data/siim/sample/train-rle-sample.csv" ] || return 0
      cut -d, -f2 "$data/siim/sample/train-rle-sample.csv" | grep -v -- '-1' | head -n 30 | while read -r rle; do
        i=$((i + 1)); printf '%s' "$rle" > "$dir/real_$i"; done ;;
    rle_csv)
      for f in "$data"/siim/sample/train-rle-sample.csv "$data"/siim/predictions/*.csv "$data"/siim/submissions/*.csv; do
        [ -f "$f" ] && head -n 12 "$f" > "$dir/real_$(basename "$f")"; done ;;
    folds)
      for f in "$data"/siim/seed-folds/*/fold0; do
        [ -d "$f" ] && { head -n 20 "$f/train.txt"; printf '\0'; head -n 20 "$f/val.txt"; } > "$dir/real_$(basename "$(dirname "$f")")"
      done ;;
    image)  # the committed seeds are generated 32x32 chest-like images; full-size files only slow the search
      [ -f "$data/dicom/siim-stage1-test-jpeg-baseline.dcm" ] && cp "$data/dicom/siim-stage1-test-jpeg-baseline.dcm" "$dir/real.dcm" ;;
    dicom)
      for f in "$data"/dicom/*.dcm; do [ -f "$f" ] && cp "$f" "$dir/real_$(basename "$f")"; done ;;
  esac
  return 0
}

status=0
for name in "${names[@]}"; do
  exe="$build/fuzz_$name"
  [ -x "$exe" ] || { echo "fuzz: $exe not built" >&2; status=1; continue; }
  corpus="${PNEUMO_FUZZ_CORPUS:-$build/fuzz-corpus}/$name"
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  for seeds in tests/fuzz/seeds/"$name" tests/fuzz/regressions/"$name"; do  # past crashes replay first
    [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  done
  real_seeds "$name" "$corpus"
  log="$build/fuzz-$name.log"
  # rss 2 GiB: a hostile size that gets past the checks runs out here instead of taking the machine.
  # DICOM (fuzz_dicom, and fuzz_image through decode_image's DICOM hook): DCMTK reserves an element's
  # declared 32-bit length (up to 4 GiB) before it finds the stream too short, then fails cleanly; the
  # reservation is never touched (pneumo dicom-to-png on such a file peaks at 14 MB RSS, and under
  # `ulimit -v 2000000` it fails with "Virtual Memory exhausted"). So those targets' single-malloc limit sits
  # just above 4 GiB, while the 2 GiB RSS limit still catches memory really used.
  malloc_limit=2048
  case "$name" in dicom | image) malloc_limit=4200 ;; esac
  # Inputs up to 64 KiB: the harnesses refuse images over 2^18 pixels anyway, and longer inputs only slow
  # each execution (the real-file seeds are larger: libFuzzer reads their first 64 KiB).
  extra=(-max_len=65536 -seed="${PNEUMO_FUZZ_SEED:-1}")
  [ -n "${PNEUMO_FUZZ_RUNS:-}" ] && extra+=(-runs="$PNEUMO_FUZZ_RUNS")
  if nice -n "${PNEUMO_FUZZ_NICE:-10}" "$exe" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 \
       -malloc_limit_mb="$malloc_limit" -timeout=30 "${extra[@]}" \
       -artifact_prefix="$artifacts/" "$corpus" > "$log" 2>&1; then
    echo "fuzz_$name: ok, $(grep -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') executions in ${seconds} s"
  else
    echo "fuzz_$name: FAILED (log $log, input in $artifacts/)" >&2
    grep -m 5 -E 'ERROR|SUMMARY|terminate|Assertion|abort' "$log" >&2 || tail -n 20 "$log" >&2
    status=1
  fi
done
exit $status
