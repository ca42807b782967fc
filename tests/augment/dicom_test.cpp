// DICOM input (augment/dicom.h): the windowing and min-max formulas against hand-computed values; the three
// real files of ../shared/data/dicom (JPEG baseline against the competition's own JPEG stream, MONOCHROME1
// inversion against the raw stored values, JPEG 2000); pixel spacing and UIDs; and hostile bytes (truncated,
// wrong lengths, huge dimensions, no pixel data, random flips), which must end in an error naming the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "augment/dicom.h"
#include "augment/image.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "train/data_test_util.h"

namespace pneumo::aug {
namespace {

using test::expect_error_mentions;

constexpr const char* kSiim = "dicom/siim-stage1-test-jpeg-baseline.dcm";
constexpr const char* kCr = "dicom/CR-MONO1-10-chest-implicit-vr-no-preamble.dcm";
constexpr const char* kJ2k = "dicom/RG1-jpeg2000-lossy.dcm";
constexpr const char* kSiimUid = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819";

#define PNEUMO_REQUIRE_DCMTK() \
  if (!dicom_available()) GTEST_SKIP() << "built without DCMTK: DICOM test skipped"

std::vector<uint8_t> bytes_of(const std::string& path) { return read_file_bytes(path); }

// Offset of the first occurrence of a little-endian tag (group, element) in raw bytes, or npos.
size_t find_tag(const std::vector<uint8_t>& b, uint16_t group, uint16_t element, size_t from = 0) {
  const uint8_t t[4] = {static_cast<uint8_t>(group & 0xFF), static_cast<uint8_t>(group >> 8),
                        static_cast<uint8_t>(element & 0xFF), static_cast<uint8_t>(element >> 8)};
  for (size_t i = from; i + 4 <= b.size(); ++i)
    if (std::memcmp(b.data() + i, t, 4) == 0) return i;
  return std::string::npos;
}
uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// ---- formulas ---------------------------------------------------------------------------------------

TEST(DicomWindow, LinearMatchesHandComputedValues) {
  // c = 40, w = 400: below c - 0.5 - (w-1)/2 = -160 -> 0; above c - 0.5 + (w-1)/2 = 239 -> 255.
  EXPECT_EQ(dicom_window_to_8bit(-160.0, 40, 400, "LINEAR"), 0);
  EXPECT_EQ(dicom_window_to_8bit(-159.0, 40, 400, "LINEAR"), 1);    // ((-159 - 39.5) / 399 + 0.5) * 255 = 0.64
  EXPECT_EQ(dicom_window_to_8bit(0.0, 40, 400, "LINEAR"), 102);     // 102.256
  EXPECT_EQ(dicom_window_to_8bit(40.0, 40, 400, "LINEAR"), 128);    // 127.820
  EXPECT_EQ(dicom_window_to_8bit(239.0, 40, 400, "LINEAR"), 255);   // 254.361
  EXPECT_EQ(dicom_window_to_8bit(240.0, 40, 400, "LINEAR"), 255);
  EXPECT_EQ(dicom_window_to_8bit(1000.0, 40, 400, "LINEAR"), 255);
  // Width 1 is a threshold at c - 0.5.
  EXPECT_EQ(dicom_window_to_8bit(99.5, 100, 1, "LINEAR"), 0);
  EXPECT_EQ(dicom_window_to_8bit(99.6, 100, 1, "LINEAR"), 255);
}

TEST(DicomWindow, LinearExactAndSigmoid) {
  EXPECT_EQ(dicom_window_to_8bit(0.0, 40, 400, "LINEAR_EXACT"), 102);  // ((0 - 40) / 400 + 0.5) * 255 = 102
  EXPECT_EQ(dicom_window_to_8bit(-160.0, 40, 400, "LINEAR_EXACT"), 0);
  EXPECT_EQ(dicom_window_to_8bit(241.0, 40, 400, "LINEAR_EXACT"), 255);
  EXPECT_EQ(dicom_window_to_8bit(40.0, 40, 400, "SIGMOID"), 128);   // 127.5 rounds up
  EXPECT_EQ(dicom_window_to_8bit(140.0, 40, 400, "SIGMOID"), 186);  // 255 / (1 + e^-1) = 186.40
  EXPECT_EQ(dicom_window_to_8bit(-60.0, 40, 400, "SIGMOID"), 69);   // 255 / (1 + e^1) = 68.60
}

TEST(DicomWindow, MinMax) {
  EXPECT_EQ(dicom_minmax_to_8bit(0.0, 0, 1023), 0);
  EXPECT_EQ(dicom_minmax_to_8bit(1023.0, 0, 1023), 255);
  EXPECT_EQ(dicom_minmax_to_8bit(512.0, 0, 1023), 128);  // 127.62
  EXPECT_EQ(dicom_minmax_to_8bit(5.0, 5, 5), 0);         // a constant image is black, not a division by 0
}

TEST(Dicom, ExtensionAndMagic) {
  EXPECT_TRUE(has_dicom_extension("a/b/IMG.DCM"));
  EXPECT_TRUE(has_dicom_extension("x.dicom"));
  EXPECT_FALSE(has_dicom_extension("x.png"));
  std::vector<uint8_t> part10(200, 0);
  std::memcpy(part10.data() + 128, "DICM", 4);
  EXPECT_TRUE(looks_like_dicom(part10.data(), part10.size()));
  const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_FALSE(looks_like_dicom(png, sizeof png));
}

TEST(Dicom, WithoutDcmtkRefusesNamingTheComponent) {
  if (dicom_available()) GTEST_SKIP() << "this build has DCMTK";
  expect_error_mentions([] { read_dicom("scan.dcm"); }, {"scan.dcm", "DCMTK"});
}

// ---- the real files -------------------------------------------------------------------------------------

// FNV-1a 64 of a pixel buffer: a small fact about a real image that a test may hold.
uint64_t fnv1a(const std::vector<uint8_t>& p) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t c : p) h = (h ^ c) * 1099511628211ull;
  return h;
}

double mean_of(const Image& img, double x0, double x1, double y0, double y1) {
  double sum = 0;
  int64_t n = 0;
  for (int y = static_cast<int>(y0 * img.height); y < static_cast<int>(y1 * img.height); ++y)
    for (int x = static_cast<int>(x0 * img.width); x < static_cast<int>(x1 * img.width); ++x, ++n) sum += img.at(y, x);
  return sum / static_cast<double>(n);
}

TEST(DicomRead, SiimJpegBaselineEqualsTheCompetitionImage) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(path, kSiim);
  const DicomImage d = read_dicom(path);
  EXPECT_EQ(d.transfer_syntax_uid, "1.2.840.10008.1.2.4.50");
  EXPECT_EQ(d.photometric, "MONOCHROME2");
  EXPECT_EQ(d.sop_instance_uid, kSiimUid);
  EXPECT_EQ(d.study_instance_uid, "1.2.276.0.7230010.3.1.2.8323329.6904.1517875201.850818");
  EXPECT_EQ(d.series_instance_uid, "1.2.276.0.7230010.3.1.3.8323329.6904.1517875201.850817");
  EXPECT_EQ(d.sop_class_uid, "1.2.840.10008.5.1.4.1.1.7");  // Secondary Capture, as SIIM distributed them
  EXPECT_EQ(d.conversion, DicomConversion::Identity);
  EXPECT_EQ(d.spacing_source, "PixelSpacing");
  EXPECT_DOUBLE_EQ(d.row_spacing_mm, 0.168);
  EXPECT_DOUBLE_EQ(d.column_spacing_mm, 0.168);
  ASSERT_EQ(d.image.height, 1024);
  ASSERT_EQ(d.image.width, 1024);
  // libjpeg-turbo 2.1.5 (the decoder under Pillow, hence pydicom, which made the competition's PNGs) decodes
  // the same JPEG stream (siim/labelled-500/images/<uid>.jpg) to pixels with this hash and sum: bit-identical.
  EXPECT_EQ(fnv1a(d.image.pixels), 0x39756f59d9b5db0full);
  int64_t sum = 0;
  for (uint8_t v : d.image.pixels) sum += v;
  EXPECT_EQ(sum, 168189534);
}

TEST(DicomRead, SiimJpegBaselineAgainstStbDecodeOfTheSameStream) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(path, kSiim);
  PNEUMO_REQUIRE_DATA(jpg, std::string("siim/labelled-500/images/") + kSiimUid + ".jpg");
  // The .jpg is the very JPEG stream inside the DICOM (byte for byte); the engine reads it with stb_image,
  // whose IDCT rounds differently from IJG's: measured 1022 of 1048576 pixels off by 1, none by more.
  const std::vector<uint8_t> dcm = bytes_of(path), stream = bytes_of(jpg);
  EXPECT_NE(std::search(dcm.begin(), dcm.end(), stream.begin(), stream.end()), dcm.end());
  const Image ref = read_image(jpg), got = read_dicom(path).image;
  ASSERT_EQ(ref.pixels.size(), got.pixels.size());
  int64_t differ = 0;
  for (size_t i = 0; i < ref.pixels.size(); ++i) {
    ASSERT_LE(std::abs(int(ref.pixels[i]) - int(got.pixels[i])), 1) << "pixel " << i;
    differ += ref.pixels[i] != got.pixels[i];
  }
  EXPECT_LE(differ, 1022);
}

TEST(DicomRead, Monochrome1TenBitImplicitVrIsInvertedFromTheRawValues) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(path, kCr);
  const DicomImage d = read_dicom(path);
  EXPECT_EQ(d.transfer_syntax_uid, "1.2.840.10008.1.2");  // implicit VR little endian, detected (no meta header)
  EXPECT_EQ(d.photometric, "MONOCHROME1");
  EXPECT_EQ(d.bits_allocated, 16);
  EXPECT_EQ(d.bits_stored, 10);
  ASSERT_EQ(d.conversion, DicomConversion::Window);
  EXPECT_EQ(d.window_center, 550);
  EXPECT_EQ(d.window_width, 1024);
  EXPECT_EQ(d.window_function, "LINEAR");
  EXPECT_FALSE(d.has_spacing());  // this file states no spacing
  ASSERT_EQ(d.image.height, 440);
  ASSERT_EQ(d.image.width, 440);
  // The raw stored values, read here straight from the file: (7FE0,0010), a 4-byte length, 16-bit LE words.
  const std::vector<uint8_t> b = bytes_of(path);
  const size_t at = find_tag(b, 0x7FE0, 0x0010);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(le32(b.data() + at + 4), 440u * 440u * 2u);
  const uint8_t* raw = b.data() + at + 8;
  for (size_t i = 0; i < 440u * 440u; ++i) {
    const int stored = (raw[2 * i] | (raw[2 * i + 1] << 8)) & 0x3FF;
    const int windowed = dicom_window_to_8bit(stored, 550, 1024, "LINEAR");
    ASSERT_EQ(d.image.pixels[i], 255 - windowed) << "pixel " << i << " stored " << stored;
  }
  // Inverted: high stored values (dense attenuation) would be bright in MONOCHROME2 but are dark here.
  EXPECT_LT(mean_of(d.image, 0.2, 0.35, 0.3, 0.6), mean_of(d.image, 0.47, 0.53, 0.3, 0.6));  // lung darker than spine
}

TEST(DicomRead, Jpeg2000DecodesOrIsRefusedByName) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(path, kJ2k);
  if (!dicom_jpeg2000_available()) {
    expect_error_mentions([&] { read_dicom(path); }, {path, "1.2.840.10008.1.2.4.91", "OpenJPEG"});
    return;
  }
  const DicomImage d = read_dicom(path);
  EXPECT_EQ(d.transfer_syntax_uid, "1.2.840.10008.1.2.4.91");
  EXPECT_EQ(d.photometric, "MONOCHROME1");
  EXPECT_EQ(d.bits_stored, 15);
  EXPECT_EQ(d.image.width, 1841);
  EXPECT_EQ(d.image.height, 1955);
  EXPECT_EQ(d.conversion, DicomConversion::Window);
  EXPECT_EQ(d.window_center, 15000);
  EXPECT_EQ(d.window_width, 30000);
  EXPECT_FALSE(d.has_spacing());  // it states PixelSpacing 0.000\0.000, which is no spacing
  // A chest after inversion: the lung fields darker than the mediastinum; and not a constant image.
  EXPECT_LT(mean_of(d.image, 0.2, 0.35, 0.25, 0.5) + 20, mean_of(d.image, 0.47, 0.53, 0.25, 0.5));
  const auto [lo, hi] = std::minmax_element(d.image.pixels.begin(), d.image.pixels.end());
  EXPECT_LT(*lo, 40);
  EXPECT_GT(*hi, 200);
}

TEST(DicomRead, PixelSpacingThenImagerPixelSpacing) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(path, kJ2k);
  if (!dicom_jpeg2000_available()) GTEST_SKIP() << "built without OpenJPEG";
  // The file's PixelSpacing (explicit VR: tag, "DS", 2-byte length 12, "0.000\\0.000 ") rewritten in place.
  std::vector<uint8_t> b = bytes_of(path);
  const size_t at = find_tag(b, 0x0028, 0x0030);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(std::string(b.begin() + static_cast<std::ptrdiff_t>(at + 8), b.begin() + static_cast<std::ptrdiff_t>(at + 20)),
            "0.000\\0.000 ");
  std::memcpy(b.data() + at + 8, "0.143\\0.150 ", 12);
  DicomImage d = read_dicom_memory(b.data(), b.size(), "spacing.dcm");
  EXPECT_EQ(d.spacing_source, "PixelSpacing");
  EXPECT_DOUBLE_EQ(d.row_spacing_mm, 0.143);
  EXPECT_DOUBLE_EQ(d.column_spacing_mm, 0.150);
  EXPECT_DOUBLE_EQ(d.pixel_area_mm2(), 0.143 * 0.150);
  // The same value under the ImagerPixelSpacing tag (0018,1164), used when PixelSpacing is absent.
  b[at] = 0x18, b[at + 1] = 0x00, b[at + 2] = 0x64, b[at + 3] = 0x11;
  d = read_dicom_memory(b.data(), b.size(), "imager.dcm");
  EXPECT_EQ(d.spacing_source, "ImagerPixelSpacing");
  EXPECT_DOUBLE_EQ(d.row_spacing_mm, 0.143);
  EXPECT_DOUBLE_EQ(d.column_spacing_mm, 0.150);
}

TEST(DicomRead, ImageLoadersAcceptDicomTransparently) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(path, kCr);
  const Image direct = read_dicom(path).image;
  EXPECT_EQ(read_image(path).pixels, direct.pixels);  // by extension
  const std::vector<uint8_t> b = bytes_of(path);
  EXPECT_EQ(decode_image(b.data(), b.size(), "no-extension").pixels, direct.pixels);  // by content
}

TEST(DicomRead, ConcurrentReadsAgree) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(siim, kSiim);
  PNEUMO_REQUIRE_DATA(cr, kCr);
  // The loader decodes on several threads at once: DCMTK's dictionary and codec registry are shared.
  const std::vector<uint8_t> a = read_dicom(siim).image.pixels, b = read_dicom(cr).image.pixels;
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 5; ++k) {
        mismatches[t] += read_dicom((k + t) % 2 ? cr : siim).image.pixels != ((k + t) % 2 ? b : a);
      }
    });
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// ---- hostile input ----------------------------------------------------------------------------------------

TEST(DicomHostile, TruncatedFilesNameTheFile) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(siim, kSiim);
  PNEUMO_REQUIRE_DATA(cr, kCr);
  for (const std::string& path : {siim, cr}) {
    const std::vector<uint8_t> b = bytes_of(path);
    for (size_t keep : {size_t{0}, size_t{5}, size_t{100}, size_t{140}, size_t{600}, b.size() / 2, b.size() - 7}) {
      SCOPED_TRACE(path + " cut at " + std::to_string(keep));
      expect_error_mentions([&] { read_dicom_memory(b.data(), keep, "cut.dcm"); }, {"cut.dcm"});
    }
  }
}

TEST(DicomHostile, MissingPixelDataAndNotDicom) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(cr, kCr);
  const std::vector<uint8_t> b = bytes_of(cr);
  const size_t at = find_tag(b, 0x7FE0, 0x0010);
  ASSERT_NE(at, std::string::npos);
  expect_error_mentions([&] { read_dicom_memory(b.data(), at, "nopixels.dcm"); }, {"nopixels.dcm", "no pixel data"});
  const std::string text = "this is a text file, not an X-ray, padded to more than 132 bytes ......................."
                           "..........................................................................";
  expect_error_mentions([&] { read_dicom_memory(reinterpret_cast<const uint8_t*>(text.data()), text.size(), "t.dcm"); },
                        {"t.dcm", "not DICOM"});
  test::TempDir dir;
  test::write_text(dir.file("fake.dcm"), text);
  expect_error_mentions([&] { read_image(dir.file("fake.dcm")); }, {"fake.dcm", "not DICOM"});
  expect_error_mentions([&] { read_dicom(dir.file("missing.dcm")); }, {"missing.dcm"});
}

// Rewrites the 2-byte value of a US element (implicit VR: tag, 4-byte length 2, value).
void put_us(std::vector<uint8_t>& b, uint16_t group, uint16_t element, uint16_t value) {
  const size_t at = find_tag(b, group, element);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(le32(b.data() + at + 4), 2u);
  b[at + 8] = static_cast<uint8_t>(value & 0xFF);
  b[at + 9] = static_cast<uint8_t>(value >> 8);
}

TEST(DicomHostile, HugeOrInconsistentDimensionsAreRefused) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(cr, kCr);
  const std::vector<uint8_t> orig = bytes_of(cr);
  {
    std::vector<uint8_t> b = orig;
    put_us(b, 0x0028, 0x0010, 65535);  // Rows
    put_us(b, 0x0028, 0x0011, 65535);  // Columns
    expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), "huge.dcm"); }, {"huge.dcm", "over the limit"});
  }
  {
    std::vector<uint8_t> b = orig;
    put_us(b, 0x0028, 0x0010, 441);  // one row more than the pixel data holds
    expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), "short.dcm"); }, {"short.dcm", "pixel data holds"});
  }
  {
    std::vector<uint8_t> b = orig;
    put_us(b, 0x0028, 0x0100, 12);  // BitsAllocated 12 (packed, retired)
    expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), "b12.dcm"); }, {"b12.dcm", "BitsAllocated"});
  }
  {
    std::vector<uint8_t> b = orig;
    put_us(b, 0x0028, 0x0101, 17);  // BitsStored over BitsAllocated
    expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), "b17.dcm"); }, {"b17.dcm", "BitsStored"});
  }
}

TEST(DicomHostile, WrongElementLengthsAreRefused) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(cr, kCr);
  PNEUMO_REQUIRE_DATA(siim, kSiim);
  {
    std::vector<uint8_t> b = bytes_of(cr);
    const size_t at = find_tag(b, 0x7FE0, 0x0010);
    b[at + 4] = 0xF0, b[at + 5] = 0xFF, b[at + 6] = 0xFF, b[at + 7] = 0x7F;  // pixel data "2 GiB" long
    expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), "len.dcm"); }, {"len.dcm"});
  }
  {
    std::vector<uint8_t> b = bytes_of(cr);
    const size_t at = find_tag(b, 0x0028, 0x0010);  // Rows: length 2 -> 0x10000
    b[at + 4] = 0x00, b[at + 5] = 0x00, b[at + 6] = 0x01;
    expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), "rows.dcm"); }, {"rows.dcm"});
  }
  {
    // Compressed: the JPEG fragment cut short inside a complete-looking file.
    std::vector<uint8_t> b = bytes_of(siim);
    const size_t frag = find_tag(b, 0xFFFE, 0xE000, find_tag(b, 0x7FE0, 0x0010) + 12);  // after the offset table
    ASSERT_NE(frag, std::string::npos);
    std::fill(b.begin() + static_cast<std::ptrdiff_t>(frag + 8 + 600), b.end() - 20, uint8_t{0});
    try {
      read_dicom_memory(b.data(), b.size(), "zeroed.dcm");  // a JPEG decoder may conceal damage: no crash is the bar
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("zeroed.dcm"), std::string::npos) << e.what();
    }
  }
}

TEST(DicomHostile, RandomByteFlipsNeverCrash) {
  PNEUMO_REQUIRE_DCMTK();
  PNEUMO_REQUIRE_DATA(cr, kCr);
  PNEUMO_REQUIRE_DATA(siim, kSiim);
  // A deterministic mini-fuzz over the header region (the libFuzzer harness goes further): each mutant either
  // reads or throws pneumo::Error naming the file.
  int ok = 0, refused = 0;
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (const std::string& path : {cr, siim}) {
    const std::vector<uint8_t> orig = bytes_of(path);
    for (int trial = 0; trial < 150; ++trial) {
      std::vector<uint8_t> b = orig;
      const int flips = 1 + static_cast<int>(next() % 4);
      for (int k = 0; k < flips; ++k) b[next() % std::min<size_t>(b.size(), 1400)] = static_cast<uint8_t>(next() >> 24);
      try {
        const DicomImage d = read_dicom_memory(b.data(), b.size(), "mutant.dcm");
        EXPECT_EQ(d.image.pixels.size(), static_cast<size_t>(d.image.height) * d.image.width);
        ++ok;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("mutant.dcm"), std::string::npos) << e.what();
        ++refused;
      }
    }
  }
  EXPECT_EQ(ok + refused, 300);
  std::printf("byte-flip mutants: %d read, %d refused with an error\n", ok, refused);
}

}  // namespace
}  // namespace pneumo::aug

// The committed fuzz seeds (tests/fuzz/seeds/dicom, made by tests/fuzz/make_dicom_seeds*.cpp): each one decodes,
// and the lower pixel limit the fuzz harness passes (read_dicom_memory's max_pixels) refuses them by size.
namespace pneumo::aug {

TEST(DicomHostile, FuzzSeedsDecodeAndALowerPixelLimitRefusesThem) {
  if (!dicom_available()) GTEST_SKIP() << "built without DCMTK";
  const std::string dir = std::string(PNEUMO_TEST_FIXTURES) + "/../fuzz/seeds/dicom";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = e.path().filename().string();
    if (name.find("jpeg2000") != std::string::npos && !dicom_jpeg2000_available()) continue;
    const DicomImage d = read_dicom_memory(b.data(), b.size(), name);
    EXPECT_GT(d.image.height * d.image.width, 0) << name;
    ++n;
    test::expect_error_mentions([&] { read_dicom_memory(b.data(), b.size(), name, 32); }, {name, "over the limit of 32"});
  }
  EXPECT_GE(n, 9);
}

}  // namespace pneumo::aug
