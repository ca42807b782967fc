// Each augmentation transform against its defining property and against OpenCV 4.6 / albumentations 0.3.0
// outputs stored as fixtures (tests/augment/make_opencv_fixtures.py): resize, warpAffine (ShiftScaleRotate),
// flip, gamma, brightness/contrast, CLAHE (gray and Lab lightness), box/median/motion blur; and one
// geometric property on a real SIIM mask (skipped when ../shared/data is absent).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "augment/transforms.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "tests/augment/augment_fixture.h"

namespace pneumo::aug {
namespace {

using test::load_aug_fixture;

Image random_image(int h, int w, uint32_t seed, int channels = 1) {
  Image img(h, w, channels);
  std::mt19937 gen(seed);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(gen() & 0xff);
  return img;
}

// ---- geometry --------------------------------------------------------------------------------------
TEST(AugmentTransforms, ResizeMatchesOpenCV) {
  const Image noise = load_aug_fixture("noise").image;
  const Image mask = load_aug_fixture("mask").image;
  for (auto [h, w] : {std::pair{23, 31}, std::pair{48, 64}, std::pair{29, 16}}) {
    const std::string tag = std::to_string(h) + "x" + std::to_string(w);
    SCOPED_TRACE(tag);
    PNEUMO_EXPECT_IMAGES_WITHIN(resize_linear(noise, h, w), load_aug_fixture("resize_linear_" + tag).image, 0);
    PNEUMO_EXPECT_IMAGES_WITHIN(resize_nearest(mask, h, w), load_aug_fixture("resize_nearest_" + tag).image, 0);
  }
}

TEST(AugmentTransforms, ResizeToSameSizeIsACopy) {
  const Image img = random_image(17, 23, 1);
  EXPECT_EQ(resize_linear(img, 17, 23).pixels, img.pixels);
  EXPECT_EQ(resize_nearest(img, 17, 23).pixels, img.pixels);
}

TEST(AugmentTransforms, ResizeOfConstantImageIsConstant) {
  Image img(13, 19, 1, 201);
  const Image out = resize_linear(img, 31, 7);
  for (uint8_t p : out.pixels) ASSERT_EQ(p, 201);
}

TEST(AugmentTransforms, ShiftScaleRotateMatchesOpenCV) {
  const Image noise = load_aug_fixture("noise").image;
  const Image mask = load_aug_fixture("mask").image;
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    const auto lin = load_aug_fixture("ssr_linear_" + std::to_string(i));
    const auto nn = load_aug_fixture("ssr_nearest_" + std::to_string(i));
    const Affine m = shift_scale_rotate_matrix(test::fixture_param(lin, "angle"), test::fixture_param(lin, "scale"),
                                               test::fixture_param(lin, "dx"), test::fixture_param(lin, "dy"),
                                               noise.height, noise.width);
    PNEUMO_EXPECT_IMAGES_WITHIN(warp_affine(noise, m, false), lin.image, 0);
    PNEUMO_EXPECT_IMAGES_WITHIN(warp_affine(mask, m, true), nn.image, 0);
  }
}

TEST(AugmentTransforms, ShiftScaleRotateWithZeroParametersIsIdentity) {
  const Image img = random_image(41, 33, 2, 3);
  const Affine m = shift_scale_rotate_matrix(0, 1, 0, 0, img.height, img.width);
  EXPECT_EQ(warp_affine(img, m, false).pixels, img.pixels);
  EXPECT_EQ(warp_affine(img, m, true).pixels, img.pixels);
}

TEST(AugmentTransforms, WarpOfAWholePixelShiftMovesPixels) {
  // A pure translation by (+3, -2) pixels: out(y, x) = in(y + 2, x - 3), zero where the source is outside.
  const Image img = random_image(20, 24, 3);
  Affine m;
  m.m[2] = 3;
  m.m[5] = -2;
  for (bool nearest : {false, true}) {
    const Image out = warp_affine(img, m, nearest);
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        const int sy = y + 2, sx = x - 3;
        const int expect = (sy < img.height && sx >= 0) ? img.at(sy, sx) : 0;
        ASSERT_EQ(out.at(y, x), expect) << "at " << y << "," << x << " nearest " << nearest;
      }
  }
}

TEST(AugmentTransforms, InvertAffineComposesToIdentity) {
  const Affine a = shift_scale_rotate_matrix(17.3, 0.91, 0.13, -0.07, 100, 80);
  const Affine b = invert_affine(a);
  // (b o a) should be the identity.
  const double* A = a.m;
  const double* B = b.m;
  const double c[6] = {B[0] * A[0] + B[1] * A[3], B[0] * A[1] + B[1] * A[4], B[0] * A[2] + B[1] * A[5] + B[2],
                       B[3] * A[0] + B[4] * A[3], B[3] * A[1] + B[4] * A[4], B[3] * A[2] + B[4] * A[5] + B[5]};
  const double id[6] = {1, 0, 0, 0, 1, 0};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(c[i], id[i], 1e-12) << i;
}

TEST(AugmentTransforms, MaskStaysBinaryUnderNearestWarpAndResize) {
  Image mask = load_aug_fixture("mask").image;
  for (uint8_t v : {uint8_t{255}, uint8_t{1}}) {
    Image m = mask;
    for (auto& p : m.pixels) p = p ? v : 0;
    const Affine a = shift_scale_rotate_matrix(-13.1, 1.17, 0.05, 0.11, m.height, m.width);
    for (const Image& out : {warp_affine(m, a, true), resize_nearest(m, 61, 45), hflip(m)})
      for (uint8_t p : out.pixels) ASSERT_TRUE(p == 0 || p == v) << int(p);
  }
}

TEST(AugmentTransforms, HorizontalFlipTwiceIsIdentity) {
  const Image img = random_image(9, 14, 4, 3);
  const Image once = hflip(img);
  EXPECT_EQ(once.at(2, 0, 1), img.at(2, 13, 1));
  EXPECT_EQ(hflip(once).pixels, img.pixels);
}

// ---- photometric -------------------------------------------------------------------------------------
TEST(AugmentTransforms, GammaLutMatchesAlbumentations) {
  for (const char* g : {"0.6", "0.87", "1.0", "1.2"}) {
    SCOPED_TRACE(g);
    const auto f = load_aug_fixture(std::string("gamma_lut_") + g);
    const Lut lut = gamma_lut(test::fixture_param(f, "gamma"));
    for (int i = 0; i < 256; ++i) ASSERT_EQ(lut[i], f.image.pixels[i]) << "entry " << i;
  }
}

TEST(AugmentTransforms, GammaOneIsIdentity) {
  const Lut lut = gamma_lut(100 / 100.0);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(lut[i], i);
}

TEST(AugmentTransforms, GammaFollowsTheInverseExponentFormula) {
  // albumentations 0.3.0: uint8 table = trunc((i/255) ** (1/gamma) * 255); gamma < 1 darkens.
  const Lut lut = gamma_lut(0.6);
  EXPECT_EQ(lut[128], static_cast<int>(std::pow(128 / 255.0, 1 / 0.6) * 255));
  EXPECT_LT(lut[128], 128);
  EXPECT_EQ(lut[0], 0);
  EXPECT_EQ(lut[255], 255);
}

TEST(AugmentTransforms, BrightnessContrastMatchesAlbumentationsFormula) {
  const Image smooth = load_aug_fixture("smooth").image;
  const double mean = image_mean(smooth);
  for (auto [a, b] : {std::pair{"1.13", "-0.07"}, std::pair{"0.81", "0.19"}, std::pair{"1.2", "0.2"}}) {
    SCOPED_TRACE(std::string(a) + " " + b);
    const auto f = load_aug_fixture(std::string("bc_lut_") + a + "_" + b);
    const Image out = apply_lut(smooth, brightness_contrast_lut(test::fixture_param(f, "alpha"),
                                                                test::fixture_param(f, "beta"), mean));
    PNEUMO_EXPECT_IMAGES_WITHIN(out, f.image, 0);
  }
}

TEST(AugmentTransforms, BrightnessContrastFormulaByHand) {
  // out = trunc(clip(alpha * v + beta * mean, 0, 255)); the identity at alpha 1, beta 0.
  const Lut id = brightness_contrast_lut(1.0, 0.0, 123.0);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(id[i], i);
  const Lut lut = brightness_contrast_lut(1.1, 0.1, 100.0);
  EXPECT_EQ(lut[0], 10);    // 0 * 1.1 + 10
  EXPECT_EQ(lut[100], 120);  // 110 + 10
  EXPECT_EQ(lut[250], 255);  // clipped
  const Lut dark = brightness_contrast_lut(0.8, -0.2, 50.0);
  EXPECT_EQ(dark[5], 0);     // 4 - 10 clipped at 0
  EXPECT_EQ(dark[99], 69);   // 79.2 - 10 = 69.2 truncated
}

TEST(AugmentTransforms, ImageMeanIsExact) {
  Image img(2, 2, 1);
  img.pixels = {0, 1, 2, 4};
  EXPECT_DOUBLE_EQ(image_mean(img), 1.75);
}

TEST(AugmentTransforms, ClaheMatchesOpenCV) {
  const Image smooth = load_aug_fixture("smooth").image;
  for (const char* clip : {"4.0", "1.7"}) {
    SCOPED_TRACE(clip);
    const auto f = load_aug_fixture(std::string("clahe_gray_") + clip);
    PNEUMO_EXPECT_IMAGES_WITHIN(clahe(smooth, test::fixture_param(f, "clip"), 4, 4), f.image, 0);
  }
  const auto tiny = load_aug_fixture("tiny").image;
  PNEUMO_EXPECT_IMAGES_WITHIN(clahe(tiny, 0.0, 2, 2), load_aug_fixture("clahe_tiny_noclip").image, 0);
}

TEST(AugmentTransforms, ClaheHandComputedSmallCase) {
  // 8x8 image v = 3 * (8 r + c), a 2x2 grid of 4x4 tiles, no clipping: each tile holds 16 distinct values,
  // so its LUT at a value of rank k (0-based) within the tile is round((k + 1) * 255 / 16), and 0 below
  // the tile's smallest value.
  Image img(8, 8, 1);
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) img.at(r, c) = static_cast<uint8_t>(3 * (8 * r + c));
  const Image out = clahe(img, 0.0, 2, 2);
  // (0,0): tile coordinate -0.5 on both axes -> only tile (0,0); value 0 has rank 0 -> round(15.9375) = 16.
  EXPECT_EQ(out.at(0, 0), 16);
  // (0,1): x coordinate -0.25 -> still tile 0 only; value 3 has rank 1 -> round(31.875) = 32.
  EXPECT_EQ(out.at(0, 1), 32);
  // (0,3): x coordinate 0.25 -> 0.75 * tile(0,0) + 0.25 * tile(0,1). Value 9 has rank 3 in tile (0,0)
  // (-> round(63.75) = 64) and is below every value of tile (0,1) (smallest 12) -> 0. 0.75 * 64 = 48.
  EXPECT_EQ(out.at(0, 3), 48);
  // (3,3): y coordinate 0.25 too; value 81 has rank 15 in tile (0,0) -> 255; in tile (0,1) (row 3 holds
  // 84..93 and rows 0-2 hold 12..69) rank of 81 among values <= 81: 12 values of rows 0-2 -> cdf 12 ->
  // round(191.25) = 191; tile (1,0) values start at 96 -> 0; tile (1,1) -> 0.
  // 0.75 * (0.75 * 255 + 0.25 * 191) + 0.25 * 0 = 0.75 * 239 = 179.25 -> 179.
  EXPECT_EQ(out.at(3, 3), 179);
}

TEST(AugmentTransforms, ClaheOnLightnessMatchesOpenCVLabPathWithinOneLevel) {
  const Image smooth = load_aug_fixture("smooth").image;
  for (const char* clip : {"4.0", "1.7"}) {
    SCOPED_TRACE(clip);
    const auto f = load_aug_fixture(std::string("clahe_lab_") + clip);
    const Image ours = clahe_on_lightness(smooth, test::fixture_param(f, "clip"), 4, 4);
    // OpenCV's 8-bit Lab conversions are fixed-point tables (its three output channels even differ by 1 for
    // a gray input); we compare with each channel.
    for (int c = 0; c < 3; ++c) {
      Image channel(f.image.height, f.image.width, 1);
      for (size_t i = 0; i < channel.pixels.size(); ++i) channel.pixels[i] = f.image.pixels[i * 3 + c];
      PNEUMO_EXPECT_IMAGES_WITHIN(ours, channel, 1);
    }
  }
}

TEST(AugmentTransforms, LightnessTablesMatchOpenCVLabConversions) {
  const Image fwd = load_aug_fixture("lab_lightness_of_gray").image;  // 1 x 256
  const Image back = load_aug_fixture("lab_gray_to_rgb").image;       // 1 x 256 x 3
  const Lut ours_fwd = gray_to_lightness_lut(), ours_back = lightness_to_gray_lut();
  for (int i = 0; i < 256; ++i) {
    ASSERT_EQ(ours_fwd[i], fwd.pixels[i]) << "gray " << i;
    for (int c = 0; c < 3; ++c) ASSERT_LE(std::abs(ours_back[i] - back.pixels[i * 3 + c]), 1) << "L " << i << " c " << c;
  }
}

TEST(AugmentTransforms, LightnessTablesAreMonotoneAndNearlyInverse) {
  const Lut fwd = gray_to_lightness_lut(), back = lightness_to_gray_lut();
  EXPECT_EQ(fwd[0], 0);
  EXPECT_EQ(fwd[255], 255);
  for (int i = 1; i < 256; ++i) {
    ASSERT_GE(fwd[i], fwd[i - 1]);
    ASSERT_GE(back[i], back[i - 1]);
  }
  for (int i = 0; i < 256; ++i) EXPECT_LE(std::abs(back[fwd[i]] - i), 2) << i;
}

// ---- blurs ------------------------------------------------------------------------------------------
TEST(AugmentTransforms, BoxAndMedianBlurMatchOpenCV) {
  const Image noise = load_aug_fixture("noise").image;
  PNEUMO_EXPECT_IMAGES_WITHIN(box_blur(noise, 3), load_aug_fixture("blur3").image, 0);
  PNEUMO_EXPECT_IMAGES_WITHIN(median_blur(noise, 3), load_aug_fixture("median3").image, 0);
}

TEST(AugmentTransforms, BlursKeepConstantImages) {
  Image img(11, 9, 1, 77);
  for (const Image& out : {box_blur(img, 3), median_blur(img, 3), motion_blur(img, motion_kernel(3, 0, 0, 2, 2), 3)})
    for (uint8_t p : out.pixels) ASSERT_EQ(p, 77);
}

TEST(AugmentTransforms, MotionKernelsMatchCv2Line) {
  const Image table = load_aug_fixture("motion_kernels_3").image;  // rows: xs ys xe ye k0..k8
  ASSERT_EQ(table.height, 81);
  for (int r = 0; r < table.height; ++r) {
    const uint8_t* row = table.row(r);
    const auto k = motion_kernel(3, row[0], row[1], row[2], row[3]);
    for (int i = 0; i < 9; ++i)
      ASSERT_EQ(k[i], row[4 + i]) << "line (" << int(row[0]) << "," << int(row[1]) << ")-(" << int(row[2]) << ","
                                  << int(row[3]) << ") entry " << i;
  }
}

TEST(AugmentTransforms, MotionBlurMatchesOpenCVFilter2D) {
  const Image noise = load_aug_fixture("noise").image;
  for (int i = 0; i < 3; ++i) {
    const auto f = load_aug_fixture("motion_" + std::to_string(i));
    std::istringstream is(f.params);
    std::string word;
    int xs, ys, xe, ye;
    is >> word >> xs >> ys >> xe >> ye;
    PNEUMO_EXPECT_IMAGES_WITHIN(motion_blur(noise, motion_kernel(3, xs, ys, xe, ye), 3), f.image, 0);
  }
}

TEST(AugmentTransforms, MotionBlurRoundsHalfToEven) {
  // A two-pixel horizontal kernel: (1 + 2) / 2 = 1.5 -> 2 and (2 + 3) / 2 = 2.5 -> 2, as rint does.
  Image img(1, 3, 1);
  img.pixels = {1, 2, 3};
  const auto k = motion_kernel(3, 1, 1, 2, 1);  // pixels (1,1) and (2,1): centre and its right neighbour
  const Image out = motion_blur(img, k, 3);
  EXPECT_EQ(out.at(0, 0), 2);
  EXPECT_EQ(out.at(0, 1), 2);
  EXPECT_EQ(out.at(0, 2), 2);  // (3 + reflect101(3) = 2) / 2 = 2.5 -> 2
}

TEST(AugmentTransforms, BadInputGivesClearErrors) {
  Image rgb(4, 4, 3);
  EXPECT_THROW(clahe(rgb, 2.0, 2, 2), Error);
  EXPECT_THROW(box_blur(Image(4, 4, 1), 4), Error);
  EXPECT_THROW(gamma_lut(0.0), Error);
  EXPECT_THROW(resize_linear(Image(), 4, 4), Error);
  EXPECT_THROW(motion_kernel(3, 0, 0, 3, 0), Error);
  EXPECT_THROW(clahe(Image(3, 3, 1), 2.0, 4, 4), Error);
}

}  // namespace
}  // namespace pneumo::aug

// ---- real data (skipped without ../shared/data) -------------------------------------------------------
namespace pneumo::aug {
namespace {

TEST(AugmentTransforms, RealMaskAreaScalesWithShiftScaleRotate) {
  PNEUMO_REQUIRE_DATA(folder, "siim/sample");
  if (!image_io_available()) GTEST_SKIP() << "built without stb: cannot read JPEG";
  // A positive sample; its lesion lies well inside the image, so a centred rotation + scale keeps it whole
  // and the warped mask's area must be the original area times scale^2 (up to boundary pixels).
  Image mask = read_image(folder + "/masks/1.2.276.0.7230010.3.1.4.8323329.4440.1517875182.865105.jpg");
  for (auto& p : mask.pixels) p = p > 127 ? 255 : 0;
  auto area = [](const Image& m) {
    int64_t n = 0;
    for (uint8_t p : m.pixels) n += p != 0;
    return n;
  };
  const int64_t a0 = area(mask);
  ASSERT_GT(a0, 1000);
  for (auto [angle, scale] : {std::pair{17.0, 1.15}, std::pair{-12.0, 0.85}, std::pair{5.0, 1.0}}) {
    const Image warped = warp_affine(mask, shift_scale_rotate_matrix(angle, scale, 0, 0, mask.height, mask.width), true);
    const double ratio = static_cast<double>(area(warped)) / (a0 * scale * scale);
    EXPECT_NEAR(ratio, 1.0, 0.03) << "angle " << angle << " scale " << scale;
    for (uint8_t p : warped.pixels) ASSERT_TRUE(p == 0 || p == 255);
  }
}

}  // namespace
}  // namespace pneumo::aug
