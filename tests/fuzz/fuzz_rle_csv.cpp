// libFuzzer target: the competition CSV reader (train/rle_csv.h, parse_rle_csv) and the masks of its rows.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "train/rle_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pneumo::train;
  const std::string text(reinterpret_cast<const char*>(data), size);
  pneumo::fuzz::expect_clean([&] {
    const RleCsv csv = parse_rle_csv(text, "fuzz.csv");
    // Masks of the first 16 images only: painting is fuzz_rle_string's target, and a mask per row (each
    // mutant's runs mostly overflow 16x16, an exception each) held this target to ~1 k executions per second.
    size_t n = 0;
    for (const std::string& id : csv.ids()) {
      (void)csv.positive(id);
      if (n++ < 16) pneumo::fuzz::expect_clean([&] { (void)csv.mask(id, 16, 16); });
    }
  });
  return 0;
}
