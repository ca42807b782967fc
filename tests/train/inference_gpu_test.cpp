// pneumo predict's engine on CUDA against the CPU: float32 and bf16 activations, batched, with hflip TTA.
// Bounds follow tests/nn/models_gpu_test.cpp (bench/reports/2026-12-03-model-precision.md): network outputs
// within 2e-5 (float32) and 5e-2 (bf16) of max|logit|; a probability moves at most 1/4 of its logit.
#include <gtest/gtest.h>

#include <cmath>

#include "augment/image.h"
#include "support/checkers.h"
#include "tests/train/data_test_util.h"
#include "tests/train/pipeline_test_util.h"
#include "train/inference.h"

namespace pneumo {
namespace {

TEST(InferenceGpu, ProbabilitiesMatchTheCpuInFloat32AndBf16) {
  PNEUMO_REQUIRE_CUDA();
  test::TempDir dir;
  std::vector<train::PreparedImage> batch;
  for (int k = 0; k < 3; ++k) {
    aug::Image im(64, 96);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 96; ++x) im.at(y, x) = static_cast<uint8_t>(128 + 120 * std::sin(0.2 * x + 0.1 * y * (k + 1)));
    aug::write_png(dir.file("i" + std::to_string(k) + ".png"), im);
    batch.push_back(train::prepare_image({"i" + std::to_string(k), dir.file("i" + std::to_string(k) + ".png")}, 0));
  }
  for (bool tta : {false, true}) {
    auto cpu_net = test::seeded_model(3, "tiny_cls_ef"), gpu_net = test::seeded_model(3, "tiny_cls_ef");
    gpu_net->to(Device::cuda(0));
    train::PredictOptions o;
    o.batch = 3;
    o.hflip = tta;
    o.classify = true;
    train::Predictor cpu({cpu_net}, o);
    const auto ref = cpu.predict(batch);
    auto logit = [](double p) {
      const double q = std::clamp(p, 1e-7, 1 - 1e-7);
      return std::abs(std::log(q / (1 - q)));
    };
    double max_logit = 0, max_cls_logit = 0;
    for (const auto& r : ref) {
      for (float p : r.probability) max_logit = std::max(max_logit, logit(p));
      max_cls_logit = std::max(max_cls_logit, logit(r.cls));
    }
    for (bool bf16 : {false, true}) {
      o.device = Device::cuda(0);
      o.bf16 = bf16;
      train::Predictor gpu({gpu_net}, o);
      const auto got = gpu.predict(batch);
      const double rel = bf16 ? 5e-2 : 2e-5;
      const double tol = 0.25 * rel * max_logit + 1e-6, cls_tol = 0.25 * rel * max_cls_logit + 1e-6;
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].probability.size(), ref[i].probability.size());
        for (size_t j = 0; j < got[i].probability.size(); ++j)
          worst = std::max(worst, std::abs(static_cast<double>(got[i].probability[j]) - ref[i].probability[j]));
        EXPECT_NEAR(got[i].cls, ref[i].cls, cls_tol);
      }
      std::printf("predict on CUDA %s%s: worst probability difference %.3g (bound %.3g)\n", bf16 ? "bf16" : "f32",
                  tta ? " + hflip" : "", worst, tol);
      EXPECT_LE(worst, tol);
    }
  }
}

}  // namespace
}  // namespace pneumo
