// libFuzzer target: DICOM reading through DCMTK (augment/dicom.h, read_dicom_memory); built only when the tree
// has augment/dicom.h (tests/fuzz/fuzz.cmake). A decoded image must be as large as it says and within the limit.
// The harness lowers the pixel limit to 2^18 (512x512): mutants claiming bigger images are refused before
// decoding, as the real limit refuses hostile ones; decoding big images only spends time, and the big-size
// paths have their own tests (DicomHostile.*, DicomRead.* on the 1841x1955 and 1024x1024 sample files).
#include "augment/dicom.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
constexpr int64_t kMaxPixels = int64_t{1} << 18;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pneumo::fuzz::expect_clean([&] {
    const pneumo::aug::DicomImage d = pneumo::aug::read_dicom_memory(data, size, "fuzz.dcm", kMaxPixels);
    const pneumo::aug::Image& img = d.image;
    if (img.height <= 0 || img.width <= 0 || int64_t{img.height} * img.width > kMaxPixels ||
        img.pixels.size() != static_cast<size_t>(img.height) * img.width * img.channels)
      std::abort();
  });
  return 0;
}
