// The reference pipeline's random decisions (albumentations 0.3.0 Compose/OneOf semantics) and its
// application to an image and mask: statistics over many seeds, determinism, fixed draw slots, presets.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "augment/pipeline.h"
#include "augment/transforms.h"
#include "kernels/check.h"

namespace pneumo::aug {
namespace {

constexpr int kDraws = 20000;
// Four standard deviations of a binomial proportion estimate (seeds are fixed, so this never flakes; four
// rather than three because the test makes a dozen such comparisons).
double tolerance(double p, int n) { return 4.0 * std::sqrt(p * (1 - p) / n) + 1e-9; }

TEST(AugmentPipeline, OneOfFrequenciesFollowAlbumentations03) {
  const Pipeline pipe = reference_train_pipeline(64);
  int photo[4] = {0, 0, 0, 0}, blur[4] = {0, 0, 0, 0}, flips = 0, affine = 0;
  std::set<double> gammas;
  for (int i = 0; i < kDraws; ++i) {
    const AugmentParams p = pipe.draw(1992, i);
    ++photo[static_cast<int>(p.photometric)];
    ++blur[static_cast<int>(p.blur)];
    flips += p.hflip;
    affine += p.affine;
    if (p.photometric == Photometric::Gamma) gammas.insert(p.gamma);
  }
  // First OneOf: default p = 0.5, children weights 0.9/0.9/0.9 -> each 1/3 of the applied half.
  EXPECT_NEAR(photo[0] / double(kDraws), 0.5, tolerance(0.5, kDraws));
  for (int k = 1; k <= 3; ++k) EXPECT_NEAR(photo[k] / double(kDraws), 1.0 / 6, tolerance(1.0 / 6, kDraws)) << k;
  // Second OneOf: p = 0.5, weights 1/1/1.
  EXPECT_NEAR(blur[0] / double(kDraws), 0.5, tolerance(0.5, kDraws));
  for (int k = 1; k <= 3; ++k) EXPECT_NEAR(blur[k] / double(kDraws), 1.0 / 6, tolerance(1.0 / 6, kDraws)) << k;
  EXPECT_NEAR(flips / double(kDraws), 0.5, tolerance(0.5, kDraws));
  EXPECT_EQ(affine, kDraws);  // ShiftScaleRotate p = 1
  // RandomGamma: random.randint(60, 120) / 100 -> the 61 values 0.60, 0.61, ..., 1.20.
  EXPECT_EQ(gammas.size(), 61u);
  EXPECT_DOUBLE_EQ(*gammas.begin(), 0.60);
  EXPECT_DOUBLE_EQ(*gammas.rbegin(), 1.20);
}

TEST(AugmentPipeline, OneOfChildWeightsAreNormalised) {
  PipelineConfig c;
  c.size = 32;
  c.photometric_p = 1.0;  // always apply, so only the weights matter
  c.gamma_weight = 0.6;
  c.brightness_contrast_weight = 0.3;
  c.clahe_weight = 0.1;
  const Pipeline pipe(c);
  int n[4] = {0, 0, 0, 0};
  for (int i = 0; i < kDraws; ++i) ++n[static_cast<int>(pipe.draw(7, i).photometric)];
  EXPECT_EQ(n[0], 0);
  EXPECT_NEAR(n[1] / double(kDraws), 0.6, tolerance(0.6, kDraws));
  EXPECT_NEAR(n[2] / double(kDraws), 0.3, tolerance(0.3, kDraws));
  EXPECT_NEAR(n[3] / double(kDraws), 0.1, tolerance(0.1, kDraws));
}

TEST(AugmentPipeline, ParameterRangesMatchTheReference) {
  const Pipeline pipe = reference_train_pipeline(64);
  double min_angle = 1e9, max_angle = -1e9, min_scale = 1e9, max_scale = -1e9;
  for (int i = 0; i < kDraws; ++i) {
    const AugmentParams p = pipe.draw(3, i);
    ASSERT_GE(p.angle, -20.0);
    ASSERT_LT(p.angle, 20.0);
    ASSERT_GE(p.scale, 0.8);
    ASSERT_LT(p.scale, 1.2);
    ASSERT_GE(p.shift_x, -0.2);
    ASSERT_LT(p.shift_x, 0.2);
    ASSERT_GE(p.shift_y, -0.2);
    ASSERT_LT(p.shift_y, 0.2);
    min_angle = std::min(min_angle, p.angle), max_angle = std::max(max_angle, p.angle);
    min_scale = std::min(min_scale, p.scale), max_scale = std::max(max_scale, p.scale);
    if (p.photometric == Photometric::BrightnessContrast) {
      ASSERT_GE(p.contrast_alpha, 0.8);
      ASSERT_LT(p.contrast_alpha, 1.2);
      ASSERT_GE(p.brightness_beta, -0.2);
      ASSERT_LT(p.brightness_beta, 0.2);
    }
    if (p.photometric == Photometric::Clahe) {
      ASSERT_GE(p.clahe_clip, 1.0);  // to_tuple(4.0, 1) -> uniform(1, 4)
      ASSERT_LT(p.clahe_clip, 4.0);
      ASSERT_EQ(p.clahe_tiles_x, 4);
    }
    if (p.blur != BlurKind::None) {
      ASSERT_EQ(p.blur_ksize, 3);  // arange(3, 4 + 1, 2) = [3]
    }
    if (p.blur == BlurKind::Motion) {
      ASSERT_EQ(p.motion_kernel.size(), 9u);
      int ones = 0;
      for (uint8_t v : p.motion_kernel) ones += v;
      ASSERT_GE(ones, 2);  // xs == xe forces ys != ye, so the line never degenerates to a point
    }
  }
  EXPECT_LT(min_angle, -19.5);
  EXPECT_GT(max_angle, 19.5);
  EXPECT_LT(min_scale, 0.81);
  EXPECT_GT(max_scale, 1.19);
}

TEST(AugmentPipeline, DrawsAreDeterministicAndDifferAcrossSamplesAndSeeds) {
  const Pipeline pipe = reference_train_pipeline(64);
  const AugmentParams a = pipe.draw(11, 5), b = pipe.draw(11, 5), c = pipe.draw(11, 6), d = pipe.draw(12, 5);
  EXPECT_EQ(a.describe(), b.describe());
  EXPECT_EQ(a.angle, b.angle);
  EXPECT_NE(a.angle, c.angle);
  EXPECT_NE(a.angle, d.angle);
}

TEST(AugmentPipeline, DrawSlotsAreFixedPerDecision) {
  // The affine values do not depend on whether the photometric/blur branches were taken: they come from
  // their own slots. Turning the OneOfs off must leave angle/scale/shift unchanged.
  PipelineConfig off;
  off.size = 64;
  off.photometric_p = 0;
  off.blur_p = 0;
  const Pipeline ref = reference_train_pipeline(64), quiet(off);
  for (int i = 0; i < 200; ++i) {
    const AugmentParams a = ref.draw(5, i), b = quiet.draw(5, i);
    ASSERT_EQ(a.angle, b.angle);
    ASSERT_EQ(a.scale, b.scale);
    ASSERT_EQ(a.shift_x, b.shift_x);
    ASSERT_EQ(a.hflip, b.hflip);
    ASSERT_EQ(b.photometric, Photometric::None);
    ASSERT_EQ(b.blur, BlurKind::None);
  }
}

Image test_image(int h, int w) {
  Image img(h, w, 1);
  std::mt19937 gen(9);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.at(y, x) = static_cast<uint8_t>((x * 3 + y * 2 + (gen() % 20)) & 0xff);
  return img;
}
Image test_mask(int h, int w, uint8_t on) {
  Image m(h, w, 1);
  for (int y = h / 4; y < h / 2; ++y)
    for (int x = w / 3; x < 2 * w / 3; ++x) m.at(y, x) = on;
  return m;
}

TEST(AugmentPipeline, ApplyResizesAndKeepsMaskBinary) {
  const Pipeline pipe = reference_train_pipeline(48);
  for (uint8_t on : {uint8_t{255}, uint8_t{1}}) {
    for (int i = 0; i < 60; ++i) {
      Image img = test_image(70, 90), mask = test_mask(70, 90, on);
      pipe.apply(img, mask, 42, i);
      ASSERT_EQ(img.height, 48);
      ASSERT_EQ(img.width, 48);
      ASSERT_EQ(mask.height, 48);
      ASSERT_EQ(mask.width, 48);
      for (uint8_t p : mask.pixels) ASSERT_TRUE(p == 0 || p == on) << int(p);
    }
  }
}

TEST(AugmentPipeline, ApplyEqualsTheTransformsInReferenceOrder) {
  const Pipeline pipe = reference_train_pipeline(40);
  for (int i = 0; i < 40; ++i) {
    const AugmentParams p = pipe.draw(77, i);
    Image img = test_image(50, 60), mask = test_mask(50, 60, 255);
    Image expect = resize_linear(img, 40, 40), expect_mask = resize_nearest(mask, 40, 40);
    if (p.photometric == Photometric::Gamma) expect = apply_lut(expect, gamma_lut(p.gamma));
    if (p.photometric == Photometric::BrightnessContrast)
      expect = apply_lut(expect, brightness_contrast_lut(p.contrast_alpha, p.brightness_beta, image_mean(expect)));
    if (p.photometric == Photometric::Clahe) expect = clahe_on_lightness(expect, p.clahe_clip, 4, 4);
    if (p.blur == BlurKind::Box) expect = box_blur(expect, 3);
    if (p.blur == BlurKind::Median) expect = median_blur(expect, 3);
    if (p.blur == BlurKind::Motion) expect = motion_blur(expect, p.motion_kernel, 3);
    if (p.hflip) expect = hflip(expect), expect_mask = hflip(expect_mask);
    const Affine m = shift_scale_rotate_matrix(p.angle, p.scale, p.shift_x, p.shift_y, 40, 40);
    expect = warp_affine(expect, m, false);
    expect_mask = warp_affine(expect_mask, m, true);
    pipe.apply(img, mask, 77, i);
    ASSERT_EQ(img.pixels, expect.pixels) << p.describe();
    ASSERT_EQ(mask.pixels, expect_mask.pixels) << p.describe();
  }
}

TEST(AugmentPipeline, ValidationPresetOnlyResizes) {
  const Pipeline val = validation_pipeline(32);
  Image img = test_image(64, 64), mask = test_mask(64, 64, 255);
  const Image expect = resize_linear(img, 32, 32), expect_mask = resize_nearest(mask, 32, 32);
  val.apply(img, mask, 1, 0);
  EXPECT_EQ(img.pixels, expect.pixels);
  EXPECT_EQ(mask.pixels, expect_mask.pixels);
  const AugmentParams p = val.draw(1, 0);
  EXPECT_EQ(p.photometric, Photometric::None);
  EXPECT_EQ(p.blur, BlurKind::None);
  EXPECT_FALSE(p.hflip);
  EXPECT_FALSE(p.affine);
}

TEST(AugmentPipeline, PresetsByNameAndErrors) {
  EXPECT_TRUE(pipeline_preset("reference", 64).config().augment);
  EXPECT_FALSE(pipeline_preset("validation", 64).config().augment);
  EXPECT_THROW(pipeline_preset("heavy", 64), Error);
  Image img = test_image(20, 20), mask = test_mask(10, 10, 255);
  EXPECT_THROW(reference_train_pipeline(16).apply(img, mask, 1, 1), Error);
  PipelineConfig bad;
  bad.blur_limit = 2;
  EXPECT_THROW(Pipeline{bad}, Error);
}

TEST(AugmentPipeline, UniformIsInUnitInterval) {
  double lo = 1, hi = 0;
  for (uint64_t i = 0; i < 5000; ++i) {
    const double u = augment_uniform(3, i, kSlotAngle);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u), hi = std::max(hi, u);
  }
  EXPECT_LT(lo, 0.01);
  EXPECT_GT(hi, 0.99);
}

}  // namespace
}  // namespace pneumo::aug
