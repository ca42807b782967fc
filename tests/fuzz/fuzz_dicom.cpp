// libFuzzer target: DICOM reading through DCMTK (augment/dicom.h, read_dicom_memory); built only when the tree
// has augment/dicom.h (tests/fuzz/fuzz.cmake). A decoded image must be as large as it says and within the limit.
#include "augment/dicom.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pneumo::fuzz::expect_clean([&] {
    const pneumo::aug::DicomImage d = pneumo::aug::read_dicom_memory(data, size, "fuzz.dcm");
    const pneumo::aug::Image& img = d.image;
    if (img.height <= 0 || img.width <= 0 || int64_t{img.height} * img.width > pneumo::aug::kDicomMaxPixels ||
        img.pixels.size() != static_cast<size_t>(img.height) * img.width * img.channels)
      std::abort();
  });
  return 0;
}
