// Every input a fuzz target once crashed on (tests/fuzz/regressions/<target>/), replayed in the normal test
// suite: each must now give a clean pneumo::Error naming the problem. (Under PNEUMO_SANITIZE the same run
// also proves the out-of-bounds write is gone.)
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "augment/dicom.h"
#include "augment/image.h"
#include "kernels/check.h"
#include "train/data_test_util.h"
#include "train/folds.h"

namespace pneumo {
namespace {

namespace fs = std::filesystem;
const std::string kRegressions = PNEUMO_TEST_FIXTURES "/../fuzz/regressions";

TEST(FuzzRegressions, StbJpegHuffmanTableOverflowIsACleanError) {
  // A DHT segment whose counts add up to more than 256: stb 2.27 wrote past stbi__huffman::size[257].
  const std::string b = test::read_bytes(kRegressions + "/image/stb-dht-overflow.jpg");
  ASSERT_FALSE(b.empty());
  test::expect_error_mentions(
      [&] { aug::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "dht.jpg"); },
      {"dht.jpg", "Huffman table"});
}

TEST(FuzzRegressions, StbJpegHuffmanTableOverflowAfterFillBytesIsACleanError) {
  // The same overflow behind 26 0xFF fill bytes, which stb skips before the SOI marker.
  const std::string b = test::read_bytes(kRegressions + "/image/stb-dht-overflow-after-fill-bytes.jpg");
  ASSERT_FALSE(b.empty());
  test::expect_error_mentions(
      [&] { aug::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "fill.jpg"); },
      {"fill.jpg", "Huffman table"});
}

TEST(FuzzRegressions, JpegClaiming59139RowsIsRefusedBeforeDecoding) {
  // SOF says 59139 x 1024 with 35 KB of data: stb decoded 60 M pixels of zeros (a 35 s timeout under ASan).
  const std::string b = test::read_bytes(kRegressions + "/image/tall-jpeg-decode-timeout.jpg");
  ASSERT_FALSE(b.empty());
  test::expect_error_mentions(
      [&] { aug::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "tall.jpg"); },
      {"tall.jpg", "1024x59139 pixels", "at most 16384 a side"});
}

TEST(FuzzRegressions, PngWithAnEmptyIdatChunkDecodesAsWithoutIt) {
  // stb passed a null buffer to memcpy for an IDAT chunk of length 0 before any data (UBSan, fuzz_image).
  // The fuzzer's input must give a clean answer, and an empty IDAT inserted into a real PNG changes nothing.
  // The second file (CI's fuzz smoke run): the empty IDAT is the last chunk, its CRC cut off.
  for (const std::string f : {"png-empty-idat-null-memcpy.png", "png-empty-idat-without-crc-null-memcpy.png"}) {
    const std::string b = test::read_bytes(kRegressions + "/image/" + f);
    ASSERT_FALSE(b.empty()) << f;
    try {
      aug::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), f);
    } catch (const Error&) {  // refusing it is fine; undefined behaviour is not (the sanitizer job checks)
    }
  }
  test::TempDir d;
  aug::Image img(5, 7, 1);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 37);
  aug::write_png(d.file("a.png"), img);
  std::string png = test::read_bytes(d.file("a.png"));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  // length 0, "IDAT", CRC-32 of "IDAT" (stb does not check it, but the chunk is then well-formed).
  png.insert(idat - 4, std::string("\0\0\0\0IDAT\x35\xAF\x06\x1E", 12));
  const aug::Image back = aug::decode_image(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "e.png");
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(FuzzRegressions, StbJpegScanCutShortByAMarkerEndsCleanly) {
  // fuzz_image (2026-12-07, UBSan): stb_image 2.27 shifted its JPEG bit buffer by 33 (stbi__grow_buffer_unsafe)
  // when a marker cut a scan short: upstream nothings/stb#1293, fixed in stb 2.28. Only that shift check is off
  // for stb's own file (augment/stb_impl.cpp); this input must still end cleanly under ASan and every other
  // check: an image as large as its header says, or an error naming the file.
  const std::string f = "jpeg-scan-cut-short-by-a-marker-shift-33.jpg";
  const std::string b = test::read_bytes(kRegressions + "/image/" + f);
  ASSERT_FALSE(b.empty());
  try {
    const aug::Image img = aug::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), f);
    EXPECT_EQ(img.width, 32);
    EXPECT_EQ(img.height, 32);
    EXPECT_EQ(img.pixels.size(), static_cast<size_t>(img.width) * img.height * img.channels);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(FuzzRegressions, FoldEntryThatNamesNoImageIsAnError) {
  // fuzz_folds splits its input at the first NUL into train.txt and val.txt; an entry like "kp./" reduces
  // to an empty image id, which read_fold promised never to return.
  const std::string b = test::read_bytes(kRegressions + "/folds/entry-names-no-image");
  ASSERT_FALSE(b.empty());
  const size_t nul = b.find('\0');
  test::TempDir d;
  test::write_text(d.file("fold0/train.txt"), b.substr(0, nul));
  test::write_text(d.file("fold0/val.txt"), nul == std::string::npos ? "" : b.substr(nul + 1));
  test::expect_error_mentions([&] { train::read_fold(d.path(), 0); }, {"names no image"});
  test::write_text(d.file("fold0/train.txt"), "a.png\nimages/\n");
  test::expect_error_mentions([&] { train::read_fold(d.path(), 0); }, {"train.txt", "line 2", "names no image"});
}

TEST(FuzzRegressions, DicomDeclaringAFourGibElementIsACleanError) {
  // fuzz_dicom stopped on this: an element declaring ~4 GiB made DCMTK reserve that much before it found
  // the stream too short. The reservation is never touched; the read must end in an error naming the file.
  if (!aug::dicom_available()) GTEST_SKIP() << "built without DCMTK";
  for (const char* f : {"declared-length-4gib-12-bytes.dcm"}) {
    const std::string b = test::read_bytes(kRegressions + "/dicom/" + f);
    ASSERT_FALSE(b.empty()) << f;
    test::expect_error_mentions(
        [&] { aug::read_dicom_memory(reinterpret_cast<const uint8_t*>(b.data()), b.size(), f); }, {f});
  }
}

TEST(FuzzRegressions, JpegScanUsingAnUndefinedHuffmanTableIsACleanError) {
  // fuzz_image (non-sanitized build, 2026-12-07): SEGV in stbi__jpeg_decode_block. The scan names DC table 3
  // for its third component; the file defines DC/AC tables 0 and 1 only, and stb 2.27 decoded with the
  // uninitialised table 3. Now refused before stb decodes.
  const std::string b = test::read_bytes(kRegressions + "/image/scan-uses-undefined-huffman-table.jpg");
  ASSERT_FALSE(b.empty());
  test::expect_error_mentions(
      [&] { aug::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "scan.jpg"); },
      {"scan.jpg", "Huffman table the file never defines"});
}

TEST(FuzzRegressions, DicomPixelDataTagOfAnotherVrIsACleanError) {
  // fuzz_dicom (non-sanitized build, 2026-12-07): SEGV in DcmPixelData::findRepresentationEntry. A mutated
  // JPEG 2000 file whose (7FE0,0010) element DCMTK parsed as a sequence; the reader cast it to DcmPixelData
  // unchecked. Now the element's class is checked.
  if (!aug::dicom_available()) GTEST_SKIP() << "built without DCMTK";
  const std::string b = test::read_bytes(kRegressions + "/dicom/pixel-data-tag-parsed-as-sequence.dcm");
  ASSERT_FALSE(b.empty());
  test::expect_error_mentions(
      [&] { aug::read_dicom_memory(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "px.dcm"); },
      {"px.dcm", "pixel data element has VR SQ"});
}

TEST(FuzzRegressions, DicomClaimingThousandsOfSamplesIsRefusedBeforeDecompressing) {
  // fuzz_dicom (2026-12-07): out of memory. A 1162-byte compressed file claiming 65529 samples per pixel: DCMTK's
  // decompression allocated 2.1 GB (pneumo dicom-to-png peaked at 2,126,868 KB) before the samples check ran.
  // Now refused first (14 MB peak); the message is the early check's, which proves where it stopped.
  if (!aug::dicom_available()) GTEST_SKIP() << "built without DCMTK";
  const std::string b = test::read_bytes(kRegressions + "/dicom/compressed-65529-samples-per-pixel-2gb.dcm");
  ASSERT_FALSE(b.empty());
  test::expect_error_mentions(
      [&] { aug::read_dicom_memory(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "spp.dcm"); },
      {"spp.dcm", "SamplesPerPixel 65529 is not supported"});
}

TEST(FuzzRegressions, DicomJpegWithATemMarkerBeforeTheFrameHeaderEnds) {
  // fuzz_dicom (2026-12-07): timeouts. DCMTK 3.6.7's DJCodecDecoder::scanJpegDataForBitDepth does not move past
  // a TEM marker (FF 01) and loops for ever. First a fragment starting FF D8 FF 01; then (the long campaign,
  // after a check that only looked behind an SOI) a fragment starting FF 01. Both are now refused before DCMTK
  // decodes, by a walk that steps as DCMTK's scan does.
  if (!aug::dicom_available()) GTEST_SKIP() << "built without DCMTK";
  for (const std::string f : {"jpeg-tem-marker-endless-scan.dcm", "jpeg-fragment-starting-with-tem-endless-scan.dcm"}) {
    const std::string b = test::read_bytes(kRegressions + "/dicom/" + f);
    ASSERT_FALSE(b.empty()) << f;
    test::expect_error_mentions(
        [&] { aug::read_dicom_memory(reinterpret_cast<const uint8_t*>(b.data()), b.size(), f); },
        {f, "corrupt JPEG stream", "TEM"});
  }
}

}  // namespace
}  // namespace pneumo
