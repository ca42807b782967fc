// Image I/O: PNG round trips, colour -> gray with OpenCV's weights, 16-bit PNG scaling (a 16-bit PNG is built
// byte by byte here, stored deflate blocks), alpha dropped, clear errors for missing/corrupt files, the real
// sample JPEGs, and the reference's ImageNet normalisation.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "augment/image.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "train/data_test_util.h"

namespace pneumo::aug {
namespace {

// ---- a minimal PNG writer for 16-bit gray (stb_image_write only writes 8-bit) ----
uint32_t crc32(const std::string& data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}
void put32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void chunk(std::string& png, const char* type, const std::string& data) {
  put32(png, static_cast<uint32_t>(data.size()));
  std::string td = std::string(type) + data;
  png += td;
  put32(png, crc32(td));
}
std::string png16_gray(int h, int w, const std::vector<uint16_t>& v) {
  std::string raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int x = 0; x < w; ++x) {
      raw.push_back(static_cast<char>(v[static_cast<size_t>(y * w + x)] >> 8));
      raw.push_back(static_cast<char>(v[static_cast<size_t>(y * w + x)] & 0xFF));
    }
  }
  std::string z = "\x78\x01";
  z.push_back(1);  // final stored block
  const uint16_t len = static_cast<uint16_t>(raw.size());
  z.push_back(static_cast<char>(len & 0xFF));
  z.push_back(static_cast<char>(len >> 8));
  z.push_back(static_cast<char>(~len & 0xFF));
  z.push_back(static_cast<char>((~len >> 8) & 0xFF));
  z += raw;
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, (b << 16) | a);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put32(ihdr, static_cast<uint32_t>(w));
  put32(ihdr, static_cast<uint32_t>(h));
  ihdr += std::string("\x10\x00\x00\x00\x00", 5);  // depth 16, gray, deflate, filter 0, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  return png;
}

TEST(ImageIo, GrayPngRoundTrip) {
  test::TempDir dir;
  Image img(5, 7, 1);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 37 % 256);
  write_png(dir.file("g.png"), img);
  const Image back = read_image(dir.file("g.png"));
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.channels, 1);
  EXPECT_EQ(back.pixels, img.pixels);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string(), "g.png") << "temporary file left behind";
}

TEST(ImageIo, ColourToGrayWithOpenCvWeights) {
  test::TempDir dir;
  // Expected values are cv2.cvtColor / IMREAD_GRAYSCALE results: round(0.299 R + 0.587 G + 0.114 B).
  const std::vector<std::array<uint8_t, 3>> rgb = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {100, 150, 200}, {255, 255, 255}, {1, 2, 3}};
  const std::vector<uint8_t> expected = {76, 150, 29, 141, 255, 2};
  Image c(1, static_cast<int>(rgb.size()), 3);
  Image ca(1, static_cast<int>(rgb.size()), 4);
  for (size_t i = 0; i < rgb.size(); ++i)
    for (int k = 0; k < 3; ++k) {
      c.pixels[i * 3 + k] = rgb[i][static_cast<size_t>(k)];
      ca.pixels[i * 4 + k] = rgb[i][static_cast<size_t>(k)];
      ca.pixels[i * 4 + 3] = 17;  // alpha is dropped, not blended
    }
  write_png(dir.file("c.png"), c);
  write_png(dir.file("ca.png"), ca);
  EXPECT_EQ(read_image(dir.file("c.png")).pixels, expected);
  EXPECT_EQ(read_image(dir.file("ca.png")).pixels, expected);
  Image ga(1, 3, 2);
  ga.pixels = {10, 0, 20, 255, 30, 128};
  write_png(dir.file("ga.png"), ga);
  EXPECT_EQ(read_image(dir.file("ga.png")).pixels, (std::vector<uint8_t>{10, 20, 30}));
}

TEST(ImageIo, SixteenBitPngIsScaled) {
  test::TempDir dir;
  const std::vector<uint16_t> v = {0, 65535, 257, 32768, 1000, 65000, 128, 129};
  test::write_text(dir.file("p16.png"), png16_gray(2, 4, v));
  const Image img = read_image(dir.file("p16.png"));
  ASSERT_EQ(img.height, 2);
  ASSERT_EQ(img.width, 4);
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(img.pixels[i], static_cast<uint8_t>(std::lround(v[i] * 255.0 / 65535.0))) << v[i];
}

TEST(ImageIo, ErrorsNameTheFile) {
  test::TempDir dir;
  test::expect_error_mentions([&] { read_image(dir.file("missing.png")); }, {"missing.png"});
  test::write_text(dir.file("garbage.png"), "this is not a png at all");
  test::expect_error_mentions([&] { read_image(dir.file("garbage.png")); }, {"garbage.png"});
  Image img(16, 16, 1, 9);
  write_png(dir.file("ok.png"), img);
  std::ifstream in(dir.file("ok.png"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  test::write_text(dir.file("truncated.png"), bytes.substr(0, bytes.size() / 2));
  test::expect_error_mentions([&] { read_image(dir.file("truncated.png")); }, {"truncated.png"});
  test::write_text(dir.file("empty.png"), "");
  test::expect_error_mentions([&] { read_image(dir.file("empty.png")); }, {"empty.png"});
  test::expect_error_mentions([&] { write_png(dir.file("nodir/x.png"), img); }, {"nodir/x.png"});
}

TEST(ImageIo, NormalizeImagenet) {
  Image g(2, 3, 1);
  g.pixels = {0, 1, 127, 128, 200, 255};
  const Tensor t = normalize_imagenet(g);
  ASSERT_EQ(t.shape(), (Shape{2, 3, 3}));
  const float* p = t.data<float>();
  const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
  for (size_t i = 0; i < g.pixels.size(); ++i)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(p[i * 3 + c], (g.pixels[i] / 255.0 - mean[c]) / stdv[c], 2e-6) << i << " " << c;
  Image rgb(1, 1, 3);
  EXPECT_THROW(normalize_imagenet(rgb), Error);
}

TEST(ImageIoRealData, SampleJpegsAreGray1024) {
  PNEUMO_REQUIRE_DATA(dir, "siim/sample/images");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const Image img = read_image(e.path().string());
    EXPECT_EQ(img.height, 1024);
    EXPECT_EQ(img.width, 1024);
    EXPECT_EQ(img.channels, 1);
    ++n;
  }
  EXPECT_EQ(n, 10);
}

}  // namespace
}  // namespace pneumo::aug
