// libFuzzer target: image decoding as the loader does it (augment/image.h decode_image: PNG, JPEG through
// stb_image). A decoded image must be as large as it says. DICOM-looking inputs are left to fuzz_dicom.
// Inputs whose PNG/JPEG header claims more than 2^14 pixels (128x128) are skipped: stb decodes missing data as
// zeros for as long as the header says, so they only spend time (decode_image refuses over 2^26 pixels before
// decoding; CliImage.HostileDimensionsAreRefusedBeforeAllocating checks that). The cap was 2^22 until the
// 2026-12-07 campaign (one execution took up to a second under ASan), then 2^18 until the 10 M run, where the
// corpus had grown to inputs near that size and the target ran ~300 executions per second; every decoder path
// (progressive, subsampled chroma, interlaced PNG, 16-bit, palettes) is reached well below 128x128.
#include <cstdint>

#include "augment/dicom.h"
#include "augment/image.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// Width x height from a PNG IHDR or the first JPEG frame header; 0 when neither is found. The JPEG walk steps
// as stb's header reader does: bytes other than 0xFF between segments are skipped, as are fill bytes (a walk
// that stopped at such junk let 32x12576 images through, 0.5-0.7 s each). stbi_info would be exact, but on a
// Huffman table stb cannot hold it overflows (decode_image checks for that before it calls stb).
int64_t claimed_pixels(const uint8_t* b, size_t n) {
  auto be16 = [&](size_t i) -> int64_t { return i + 1 < n ? (b[i] << 8 | b[i + 1]) : 0; };
  auto be32 = [&](size_t i) -> int64_t { return be16(i) << 16 | be16(i + 2); };
  if (n >= 24 && b[0] == 0x89 && b[1] == 'P') {
    const int64_t w = be32(16), h = be32(20);  // up to 2^32 each: cap before multiplying
    return w > (int64_t{1} << 24) || h > (int64_t{1} << 24) ? INT64_MAX : w * h;
  }
  size_t i = 0;
  while (i < n && b[i] == 0xFF) ++i;  // stb takes fill bytes before the SOI
  if (i == 0 || i >= n || b[i] != 0xD8) return 0;
  ++i;
  while (i < n) {
    if (b[i] != 0xFF) {
      ++i;  // junk between segments
      continue;
    }
    while (i < n && b[i] == 0xFF) ++i;
    if (i >= n) break;
    const int m = b[i++];
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return be16(i + 3) * be16(i + 5);
    const int64_t len = be16(i);
    if (len < 2) return 0;
    i += static_cast<size_t>(len);
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (claimed_pixels(data, size) > (int64_t{1} << 14)) return 0;
  if (pneumo::aug::looks_like_dicom(data, size)) return 0;  // fuzz_dicom's job, with its own size cap
  pneumo::fuzz::expect_clean([&] {
    const pneumo::aug::Image img = pneumo::aug::decode_image(data, size, "fuzz.png");
    if (img.height <= 0 || img.width <= 0 ||
        img.pixels.size() != static_cast<size_t>(img.height) * img.width * img.channels)
      std::abort();
  });
  return 0;
}
