// libFuzzer target: the competition RLE text parser (train/rle.h). Beyond "no crash": whatever parses must
// survive normalise -> format -> parse unchanged, and decoding into a small image must agree with check_runs_fit.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "train/rle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pneumo::train;
  const std::string text(reinterpret_cast<const char*>(data), size);
  pneumo::fuzz::expect_clean([&] {
    const std::vector<RleRun> runs = parse_rle(text, "fuzz");
    const std::vector<RleRun> merged = normalize_runs(runs);
    const std::string again = format_rle(merged);
    if (normalize_runs(parse_rle(again, "fuzz-again")) != merged) std::abort();
    // Decode into a 37 x 29 mask: fits exactly when check_runs_fit says so.
    bool fits = true;
    try {
      check_runs_fit(runs, 37, 29, "fuzz");
    } catch (const pneumo::Error&) {
      fits = false;
    }
    if (!fits) return;
    const pneumo::aug::Image mask = rle_decode(text, 37, 29, "fuzz");
    if (normalize_runs(mask_runs(mask)) != merged) std::abort();
  });
  return 0;
}
