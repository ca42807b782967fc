// GPU-vs-CPU checks of the data kernels through the train API: batched RLE encode (threshold + runs on the
// device) and decode against the CPU, odd sizes and all mask dtypes, every real prediction row, and Dice counts.
#include <gtest/gtest.h>

#include "support/checkers.h"
#include "train/metric.h"
#include "train/rle.h"
#include "train/rle_csv.h"

namespace pneumo::train {
namespace {

TEST(RleGpu, EncodeDecodeMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (auto [h, w] : std::vector<std::pair<int, int>>{{1, 1}, {7, 5}, {37, 53}, {129, 1}, {1, 300}, {256, 256}}) {
    Tensor probs = Tensor::uniform({4, h, w, 1}, 0.0f, 1.0f, test::fresh_seed());
    std::vector<float> v = probs.to_vector();
    v[v.size() - 1] = 0.9f;  // a run reaching the last pixel
    probs = Tensor::from_vector(v, {4, h, w, 1});
    for (DType dt : {DType::F32, DType::BF16}) {
      const Tensor p = probs.to(dt);
      const auto cpu = batch_runs(p, 0.4f);
      const auto gpu = batch_runs(p.to(Device::cuda()), 0.4f);
      ASSERT_EQ(cpu.size(), gpu.size());
      for (size_t i = 0; i < cpu.size(); ++i) EXPECT_EQ(cpu[i], gpu[i]) << h << "x" << w << " mask " << i;
      const Tensor dc = batch_decode(cpu, h, w, Device::cpu());
      const Tensor dg = batch_decode(cpu, h, w, Device::cuda()).cpu();
      EXPECT_EQ(dc.to_vector(), dg.to_vector());
      const Tensor u8 = dg.to(Device::cuda());
      EXPECT_EQ(batch_encode(u8, 127.0f), batch_encode(dc, 127.0f));
    }
  }
}

TEST(RleGpu, EveryPredictionRowRoundTrips) {
  PNEUMO_REQUIRE_CUDA();
  PNEUMO_REQUIRE_DATA(path, "siim/predictions/stage1-ensemble-5fold-0.4.csv");
  const RleCsv csv = read_rle_csv(path);
  std::vector<std::vector<RleRun>> runs;
  std::vector<std::string> text;
  for (const std::string& id : csv.ids()) {
    runs.push_back(csv.runs(id, 1024, 1024));
    text.push_back(csv.entries(id)[0].rle);
  }
  for (size_t b = 0; b < runs.size(); b += 64) {
    const size_t e = std::min(runs.size(), b + 64);
    const std::vector<std::vector<RleRun>> part(runs.begin() + static_cast<long>(b), runs.begin() + static_cast<long>(e));
    const std::vector<std::string> enc = batch_encode(batch_decode(part, 1024, 1024, Device::cuda()), 127.0f);
    for (size_t i = b; i < e; ++i) ASSERT_EQ(enc[i - b], text[i]) << csv.ids()[i];
  }
}

TEST(MetricGpu, DiceCountsMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  Tensor pred = Tensor::uniform({5, 33, 17, 1}, 0.0f, 1.0f, test::fresh_seed());
  Tensor truth = Tensor::uniform({5, 33, 17, 1}, 0.0f, 1.0f, test::fresh_seed());
  const auto cpu = dice_counts(pred, truth, 0.4f, 0.7f);
  const auto gpu = dice_counts(pred.to(Device::cuda()), truth.to(Device::cuda()), 0.4f, 0.7f);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(cpu[i].intersection, gpu[i].intersection);
    EXPECT_EQ(cpu[i].pred, gpu[i].pred);
    EXPECT_EQ(cpu[i].truth, gpu[i].truth);
  }
  EXPECT_DOUBLE_EQ(mean_dice(cpu), mean_dice(gpu));
  const Tensor empty = Tensor::zeros({2, 8, 8}, DType::U8, Device::cuda());
  EXPECT_EQ(mean_dice(dice_counts(empty, empty, 127.0f, 127.0f)), 1.0);
}

}  // namespace
}  // namespace pneumo::train
