// The competition Dice: per image against a naive count, the empty cases, the mean over a set, and the
// RLE-interval and batched-tensor forms against the image form.
#include <gtest/gtest.h>

#include <random>

#include "support/checkers.h"
#include "kernels/check.h"
#include "train/metric.h"

namespace pneumo::train {
namespace {

aug::Image random_mask(int h, int w, std::mt19937_64& rng, double p) {
  aug::Image m(h, w, 1, 0);
  std::bernoulli_distribution on(p);
  for (uint8_t& v : m.pixels) v = on(rng) ? 255 : 0;
  return m;
}

double naive_dice(const aug::Image& a, const aug::Image& b) {
  double inter = 0, sa = 0, sb = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const bool x = a.pixels[i] > 127, y = b.pixels[i] > 127;
    inter += x && y;
    sa += x;
    sb += y;
  }
  if (sa + sb == 0) return 1.0;
  return 2 * inter / (sa + sb);
}

TEST(Metric, DicePerImageMatchesNaive) {
  std::mt19937_64 rng(test::fresh_seed());
  for (int rep = 0; rep < 30; ++rep) {
    const aug::Image a = random_mask(17, 23, rng, 0.3), b = random_mask(17, 23, rng, 0.4);
    EXPECT_DOUBLE_EQ(dice_counts(a, b).dice(), naive_dice(a, b));
  }
}

TEST(Metric, EmptyCases) {
  const aug::Image empty(8, 8, 1, 0), full(8, 8, 1, 255);
  EXPECT_EQ(dice_counts(empty, empty).dice(), 1.0);
  EXPECT_EQ(dice_counts(empty, full).dice(), 0.0);
  EXPECT_EQ(dice_counts(full, empty).dice(), 0.0);
  EXPECT_EQ(dice_counts(full, full).dice(), 1.0);
  EXPECT_DOUBLE_EQ(mean_dice({dice_counts(empty, empty), dice_counts(empty, full), DiceCounts{1, 2, 2}}), 1.5 / 3);
  EXPECT_THROW(mean_dice({}), Error);
}

TEST(Metric, RunsFormMatchesImageForm) {
  std::mt19937_64 rng(test::fresh_seed());
  for (int rep = 0; rep < 30; ++rep) {
    const aug::Image a = random_mask(31, 9, rng, 0.2), b = random_mask(31, 9, rng, 0.5);
    const DiceCounts r = dice_counts(mask_runs(a), mask_runs(b));
    const DiceCounts i = dice_counts(a, b);
    EXPECT_EQ(r.intersection, i.intersection);
    EXPECT_EQ(r.pred, i.pred);
    EXPECT_EQ(r.truth, i.truth);
  }
  EXPECT_EQ(dice_counts(std::vector<RleRun>{}, std::vector<RleRun>{}).dice(), 1.0);
}

TEST(Metric, BatchTensorMatchesImages) {
  std::mt19937_64 rng(test::fresh_seed());
  const int n = 6, h = 13, w = 11;
  Tensor truth = Tensor::empty({n, h, w, 1}, DType::U8);
  Tensor prob = Tensor::uniform({n, h, w, 1}, 0.0f, 1.0f, test::fresh_seed());
  std::vector<DiceCounts> expected;
  for (int i = 0; i < n; ++i) {
    aug::Image t = random_mask(h, w, rng, i == 0 ? 0.0 : 0.3);
    std::copy(t.pixels.begin(), t.pixels.end(), truth.data<uint8_t>() + i * h * w);
    aug::Image p(h, w, 1, 0);
    for (int k = 0; k < h * w; ++k) p.pixels[static_cast<size_t>(k)] = prob.data<float>()[i * h * w + k] > 0.4f ? 255 : 0;
    expected.push_back(dice_counts(p, t));
  }
  const std::vector<DiceCounts> got = dice_counts(prob, truth, 0.4f, 127.0f);
  ASSERT_EQ(got.size(), expected.size());
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i)].intersection, expected[static_cast<size_t>(i)].intersection);
    EXPECT_EQ(got[static_cast<size_t>(i)].pred, expected[static_cast<size_t>(i)].pred);
    EXPECT_EQ(got[static_cast<size_t>(i)].truth, expected[static_cast<size_t>(i)].truth);
  }
  // BF16 predictions give the same counts (the values are exactly representable thresholds apart).
  Tensor bf = prob.to(DType::BF16);
  const std::vector<DiceCounts> gb = dice_counts(bf, truth, 0.4f, 127.0f);
  std::vector<float> bv = bf.to_vector();
  for (int i = 0; i < n; ++i) {
    int64_t np = 0;
    for (int k = 0; k < h * w; ++k) np += bv[static_cast<size_t>(i * h * w + k)] > 0.4f;
    EXPECT_EQ(gb[static_cast<size_t>(i)].pred, np);
  }
  EXPECT_THROW(dice_counts(prob, Tensor::zeros({n, h, w + 1}, DType::U8), 0.4f, 127.0f), Error);
}

}  // namespace
}  // namespace pneumo::train
