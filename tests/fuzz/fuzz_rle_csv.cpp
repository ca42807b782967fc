// libFuzzer target: the competition CSV reader (train/rle_csv.h, parse_rle_csv) and the masks of its rows.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "train/rle_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pneumo::train;
  const std::string text(reinterpret_cast<const char*>(data), size);
  pneumo::fuzz::expect_clean([&] {
    const RleCsv csv = parse_rle_csv(text, "fuzz.csv");
    for (const std::string& id : csv.ids()) {
      (void)csv.positive(id);
      pneumo::fuzz::expect_clean([&] { (void)csv.mask(id, 16, 16); });
    }
  });
  return 0;
}
