// Image file I/O through stb_image / stb_image_write (this file holds the one copy of their implementation)
// and the reference's ImageNet normalisation. Convention: everything is decoded to 8-bit gray exactly as
// cv2.IMREAD_GRAYSCALE would (OpenCV's fixed-point BGR->gray weights), so pixel values match the reference.
#include "augment/image.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "augment/dicom.h"
#include "kernels/atomic_file.h"
#include "kernels/check.h"

#if defined(PNEUMO_HAVE_STB) && PNEUMO_HAVE_STB
// Declarations only: stb's implementation is compiled alone in augment/stb_impl.cpp (see there why).
// Included by their system path when possible so the library's -Wall -Wextra do not apply to stb itself.
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#else
#include <stb_image.h>
#include <stb_image_write.h>
#endif
#define PNEUMO_STB_OK 1
#else
#define PNEUMO_STB_OK 0
#endif

namespace pneumo::aug {

bool image_io_available() { return PNEUMO_STB_OK != 0; }

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) PNEUMO_FAIL("cannot open image file '", path, "': ", std::strerror(errno));
  // A folder opens as a stream whose size reads as 2^63-1; refuse it before allocating that.
  if (std::filesystem::is_directory(path)) PNEUMO_FAIL("image file '", path, "' is a folder");
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  PNEUMO_CHECK(size >= 0, "cannot read image file '", path, "'");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  PNEUMO_CHECK(in.good() || in.eof(), "cannot read image file '", path, "'");
  return bytes;
}

namespace {

// OpenCV's imgcodecs gray conversion: 14-bit fixed-point weights, rounded (utils.cpp, icvCvt_BGR2Gray).
constexpr int kGrayShift = 14;
constexpr int kGrayR = static_cast<int>(0.299 * (1 << kGrayShift) + 0.5);  // 4899
constexpr int kGrayG = static_cast<int>(0.587 * (1 << kGrayShift) + 0.5);  // 9617
constexpr int kGrayB = (1 << kGrayShift) - kGrayR - kGrayG;                 // 1868

template <typename T>
uint8_t rgb_to_gray(T r, T g, T b) {
  return static_cast<uint8_t>((r * kGrayR + g * kGrayG + b * kGrayB + (1 << (kGrayShift - 1))) >> kGrayShift);
}

// stb_image 2.27 (Debian's libstb-dev 0.0~git20220908) writes past its Huffman arrays when a JPEG DHT table
// declares more than 256 codes (fixed upstream in 2.28). stb reads a DHT wherever the bytes FF C4 start a
// marker, so every FF C4 in the file is checked the way stb would read it; bytes past the end read as 0.
bool jpeg_huffman_tables_fit(const uint8_t* bytes, size_t size) {
  auto at = [&](size_t i) -> int { return i < size ? bytes[i] : 0; };
  for (size_t i = 0; i + 1 < size; ++i) {
    if (bytes[i] != 0xFF || bytes[i + 1] != 0xC4) continue;
    int64_t left = (at(i + 2) << 8 | at(i + 3)) - 2;
    size_t p = i + 4;
    while (left > 0) {
      const int q = at(p++);
      if ((q >> 4) > 1 || (q & 15) > 3) break;  // stb rejects the table itself
      int64_t n = 0;
      for (int k = 0; k < 16; ++k) n += at(p++);
      if (n > 256) return false;
      p += static_cast<size_t>(n);
      left -= 17 + n;
    }
  }
  return true;
}

// stb_image 2.27 decodes a scan with whatever its Huffman arrays hold when the scan names a table no DHT
// defined: uninitialised memory, then reads and writes out of bounds (found by fuzz_image, 2026-12-07: a SEGV
// in stbi__jpeg_decode_block). The markers are walked as stb walks them (fill bytes skipped, entropy-coded
// data skipped to the next marker) and each scan's tables checked: baseline scans use their components' DC
// and AC tables; progressive ones the DC table in a first DC scan, the AC table in an AC scan. Anything stb
// itself rejects is left to stb.
bool jpeg_scans_use_defined_tables(const uint8_t* bytes, size_t size) {
  auto at = [&](size_t i) -> int { return i < size ? bytes[i] : 0; };
  bool defined[2][4] = {};
  bool progressive = false;
  int comp_ids[4] = {-1, -1, -1, -1};
  size_t p = 0;
  while (p < size && bytes[p] == 0xFF) ++p;
  if (at(p) != 0xD8) return true;
  ++p;
  while (p < size) {
    if (bytes[p] != 0xFF) {
      ++p;
      continue;
    }
    while (p < size && bytes[p] == 0xFF) ++p;
    if (p >= size) break;
    const int m = bytes[p++];
    if (m == 0xD9) break;                                 // EOI
    if (m == 0x00 || (m >= 0xD0 && m <= 0xD8)) continue;  // stuffed byte, RSTn, SOI: no length
    const size_t len = static_cast<size_t>(at(p) << 8 | at(p + 1));
    if (len < 2) return true;  // stb fails on it
    const size_t seg = p + 2;
    if (m == 0xC4) {
      for (size_t q = seg; q < p + len;) {
        const int tc = at(q) >> 4, th = at(q) & 15;
        if (tc > 1 || th > 3) return true;
        int n = 0;
        for (int k = 0; k < 16; ++k) n += at(q + 1 + static_cast<size_t>(k));
        defined[tc][th] = true;
        q += 17 + static_cast<size_t>(n);
      }
    } else if (m >= 0xC0 && m <= 0xC2) {
      progressive = m == 0xC2;
      const int n = at(seg + 5);
      for (int k = 0; k < 4; ++k) comp_ids[k] = k < n ? at(seg + 6 + 3 * static_cast<size_t>(k)) : -1;
    } else if (m == 0xDA) {
      const int ns = at(seg);
      const int ss = at(seg + 1 + 2 * static_cast<size_t>(ns)), ah = at(seg + 3 + 2 * static_cast<size_t>(ns)) >> 4;
      for (int k = 0; k < ns && k < 4; ++k) {
        const int id = at(seg + 1 + 2 * static_cast<size_t>(k)), q = at(seg + 2 + 2 * static_cast<size_t>(k));
        const int hd = q >> 4, ha = q & 15;
        if (hd > 3 || ha > 3 || std::find(comp_ids, comp_ids + 4, id) == comp_ids + 4) return true;
        const bool need_dc = progressive ? ss == 0 && ah == 0 : true;
        const bool need_ac = progressive ? ss > 0 : true;
        if ((need_dc && !defined[0][hd]) || (need_ac && !defined[1][ha])) return false;
      }
      p += len;
      // The entropy-coded data runs to the next marker (FF then neither 00 nor RSTn).
      while (p + 1 < size && !(bytes[p] == 0xFF && bytes[p + 1] != 0x00 && !(bytes[p + 1] >= 0xD0 && bytes[p + 1] <= 0xD7)))
        ++p;
      continue;
    } else if (!(m == 0xDB || m == 0xDD || (m >= 0xE0 && m <= 0xEF) || m == 0xFE)) {
      return true;  // a marker stb does not take: it fails there
    }
    p += len;
  }
  return true;
}

// stb_image passes a null buffer to memcpy (undefined behaviour, found by fuzz_image under UBSan) for a PNG
// IDAT chunk of length 0 seen before any image data. Such chunks carry nothing, so a copy without them is
// the same image; walk the chunks as stb does (length, type, data, CRC) and drop each empty IDAT.
bool drop_empty_png_idat(const uint8_t* bytes, size_t size, std::vector<uint8_t>& out) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size < 8 || std::memcmp(bytes, kSignature, 8) != 0) return false;
  // Two passes: the first only looks (the common case copies nothing), the second builds the copy.
  for (const bool copy : {false, true}) {
    bool dropped = false;
    size_t p = 8;
    if (copy) out.assign(bytes, bytes + 8);
    // A chunk is counted from its 8-byte head: stb reads an IDAT's data before its CRC, so an empty IDAT whose
    // CRC the file cuts off hits the same null memcpy (found by the CI fuzz smoke run, 2026-12-07).
    while (p + 8 <= size) {
      const uint64_t len =
          uint64_t{bytes[p]} << 24 | uint64_t{bytes[p + 1]} << 16 | uint64_t{bytes[p + 2]} << 8 | bytes[p + 3];
      if (len > size - p - 8) break;  // its data runs past the end: left to stb, which fails on it
      const bool empty_idat = len == 0 && std::memcmp(bytes + p + 4, "IDAT", 4) == 0;
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(12 + len, size - p));  // the CRC may be cut off
      if (copy && !empty_idat) out.insert(out.end(), bytes + p, bytes + p + chunk);
      dropped = dropped || empty_idat;
      p += chunk;
    }
    if (!dropped) return false;
    if (copy) out.insert(out.end(), bytes + p, bytes + size);
  }
  return true;
}

}  // namespace

Image decode_image(const uint8_t* bytes, size_t size, const std::string& name) {
  // DICOM by extension or content (augment/dicom.h); PNG and JPEG signatures never match looks_like_dicom.
  if (has_dicom_extension(name) || looks_like_dicom(bytes, size)) return read_dicom_memory(bytes, size, name).image;
#if PNEUMO_STB_OK
  PNEUMO_CHECK(size > 0, "image file '", name, "' is empty");
  PNEUMO_CHECK(size < (1u << 31), "image file '", name, "' is too large (", size, " bytes)");
  const int len = static_cast<int>(size);
  // stb takes any run of 0xFF fill bytes before the JPEG SOI marker; a PNG starts with 0x89.
  if (bytes[0] == 0xFF && !jpeg_huffman_tables_fit(bytes, size))
    PNEUMO_FAIL("cannot decode image '", name, "': corrupt JPEG (a Huffman table declares more than 256 codes)");
  if (bytes[0] == 0xFF && !jpeg_scans_use_defined_tables(bytes, size))
    PNEUMO_FAIL("cannot decode image '", name, "': corrupt JPEG (a scan uses a Huffman table the file never defines)");
  std::vector<uint8_t> png_copy;
  if (drop_empty_png_idat(bytes, size, png_copy)) return decode_image(png_copy.data(), png_copy.size(), name);
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes, len, &w, &h, &comp))
    PNEUMO_FAIL("cannot decode image '", name, "': ", stbi_failure_reason());
  // A header may claim up to 2^24 a side, and stb decodes missing data as zeros for as long as the header
  // says: refuse before allocating or decoding (chest X-rays are at most ~4300 a side, ~15 M pixels).
  constexpr int kMaxSide = 16384;
  constexpr int64_t kMaxPixels = int64_t{1} << 26;  // 8192 x 8192
  if (w > kMaxSide || h > kMaxSide || static_cast<int64_t>(w) * h > kMaxPixels)
    PNEUMO_FAIL("image '", name, "' is ", w, "x", h, " pixels: pneumo reads at most ", kMaxSide, " a side and ",
                kMaxPixels, " (8192x8192) in all");
  const bool sixteen = stbi_is_16_bit_from_memory(bytes, len) != 0;
  Image img(h, w, 1);
  const size_t n = static_cast<size_t>(w) * h;
  if (sixteen) {
    std::unique_ptr<stbi_us, void (*)(void*)> data(stbi_load_16_from_memory(bytes, len, &w, &h, &comp, 0), stbi_image_free);
    if (!data) PNEUMO_FAIL("cannot decode image '", name, "': ", stbi_failure_reason());
    const stbi_us* p = data.get();
    auto scale = [](uint32_t v) { return static_cast<uint8_t>((v * 255u + 32767u) / 65535u); };
    for (size_t i = 0; i < n; ++i) {
      const stbi_us* px = p + i * comp;
      if (comp >= 3) {
        // Gray from the 8-bit-scaled colour values, as OpenCV converts depth before colour.
        img.pixels[i] = rgb_to_gray<int>(scale(px[0]), scale(px[1]), scale(px[2]));
      } else {
        img.pixels[i] = scale(px[0]);
      }
    }
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load_from_memory(bytes, len, &w, &h, &comp, 0), stbi_image_free);
    if (!data) PNEUMO_FAIL("cannot decode image '", name, "': ", stbi_failure_reason());
    const stbi_uc* p = data.get();
    if (comp <= 2) {
      for (size_t i = 0; i < n; ++i) img.pixels[i] = p[i * comp];
    } else {
      for (size_t i = 0; i < n; ++i) {
        const stbi_uc* px = p + i * comp;
        img.pixels[i] = rgb_to_gray<int>(px[0], px[1], px[2]);
      }
    }
  }
  return img;
#else
  PNEUMO_FAIL("cannot read image '", name, "': this build has no stb_image (install libstb-dev and reconfigure)");
#endif
}

Image read_image(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

void write_png(const std::string& path, const Image& img) {
#if PNEUMO_STB_OK
  PNEUMO_CHECK(img.height > 0 && img.width > 0, "write_png '", path, "': empty image ", img.height, "x", img.width);
  PNEUMO_CHECK(img.channels >= 1 && img.channels <= 4, "write_png '", path, "': unsupported channel count ", img.channels);
  PNEUMO_CHECK(img.pixels.size() == static_cast<size_t>(img.height) * img.width * img.channels,
               "write_png '", path, "': pixel buffer holds ", img.pixels.size(), " bytes, expected ",
               static_cast<size_t>(img.height) * img.width * img.channels);
  std::string encoded;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(sink, &encoded, img.width, img.height, img.channels, img.pixels.data(),
                              img.width * img.channels))
    PNEUMO_FAIL("write_png '", path, "': PNG encoding failed");
  write_file_atomic(path, encoded);
#else
  PNEUMO_FAIL("cannot write '", path, "': this build has no stb_image_write (install libstb-dev and reconfigure)");
#endif
}

void normalize_imagenet(const Image& gray, float* out) {
  PNEUMO_CHECK(gray.channels == 1, "normalize_imagenet: expected a 1-channel image, got ", gray.channels, " channels (",
               gray.height, "x", gray.width, ")");
  // albumentations Normalize in float32: (p - mean * 255) * (1 / (std * 255)); a 256-entry table per channel.
  float table[256][3];
  for (int c = 0; c < 3; ++c) {
    const float mean = kImagenetMean[c] * 255.0f;
    const float inv = 1.0f / (kImagenetStd[c] * 255.0f);
    for (int v = 0; v < 256; ++v) table[v][c] = (static_cast<float>(v) - mean) * inv;
  }
  const int64_t n = gray.pixel_count();
  const uint8_t* p = gray.pixels.data();
  for (int64_t i = 0; i < n; ++i) {
    const float* t = table[p[i]];
    out[3 * i] = t[0];
    out[3 * i + 1] = t[1];
    out[3 * i + 2] = t[2];
  }
}

Tensor normalize_imagenet(const Image& gray) {
  Tensor t = Tensor::empty({gray.height, gray.width, 3}, DType::F32, Device::cpu());
  normalize_imagenet(gray, t.data<float>());
  return t;
}

}  // namespace pneumo::aug
