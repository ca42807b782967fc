// libFuzzer target: image decoding as the loader does it (augment/image.h decode_image: PNG, JPEG through
// stb_image, and DICOM when the build has it). A decoded image must be as large as it says.
#include "augment/image.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pneumo::fuzz::expect_clean([&] {
    const pneumo::aug::Image img = pneumo::aug::decode_image(data, size, "fuzz.png");
    if (img.height <= 0 || img.width <= 0 ||
        img.pixels.size() != static_cast<size_t>(img.height) * img.width * img.channels)
      std::abort();
  });
  return 0;
}
