// Every network on CUDA against the CPU oracle: forward and backward with the same weights on both, in
// float32 and with bfloat16 activations (float32 master weights and BatchNorm statistics). Eval mode at
// batch 2, 64x64; train mode (batch statistics) at batch 4, 128x128. One draw per network and dtype (no
// best-of-two). Metrics: tests/nn/network_compare.h (scale-free), printed for the record.
#include <gtest/gtest.h>

#include <algorithm>

#include "nn/models/registry.h"
#include "tensor/cuda_runtime.h"
#include "tests/nn/network_compare.h"
#include "tests/support/checkers.h"

namespace pneumo::nn::models {
namespace {

using test::compare_runs;
using test::NetworkErrors;
using test::run_network;

struct Setup {
  bool train;
  int64_t batch, size;
};
constexpr Setup kEval{false, 2, 64};
constexpr Setup kTrain{true, 4, 128};

void check_network(const std::string& name, DType dtype, const test::ErrorBounds& tol, Setup setup) {
  const std::string label = name + " " + dtype_name(dtype) + (setup.train ? " train" : " eval");
  SCOPED_TRACE(label);
  ModelOptions opt;
  opt.drop_connect_rate = 0.0;  // keep the comparison about arithmetic (masks agree anyway: same Philox)
  auto cpu = create_model(name, opt);
  auto gpu = test::copy_of(*cpu, name, opt);
  gpu->to(Device::cuda());
  Tensor input = Tensor::normal({setup.batch, setup.size, setup.size, 3}, 0, 1, test::fresh_seed());
  Tensor proj = test::projection_for(*cpu, input, test::fresh_seed());
  cpu->train(setup.train);
  gpu->train(setup.train);
  test::NetworkRun c = run_network(*cpu, input, proj, Device::cpu(), DType::F32);
  test::NetworkRun g = run_network(*gpu, input, proj, Device::cuda(), dtype);
  cuda::synchronize();
  const NetworkErrors e = compare_runs(g, c);
  test::print_errors(label, e);
  ASSERT_TRUE(e.names_match);
  EXPECT_LE(e.seg, tol.forward);
  EXPECT_LE(e.cls, tol.forward);
  EXPECT_LE(e.input_grad, tol.input_grad);
  EXPECT_LE(e.grads_l2, tol.grads_l2);
  const char* const group[3] = {"conv/linear weights", "squeeze-excite", "BatchNorm/bias"};
  for (int k = 0; k < 3; ++k)
    EXPECT_LE(e.group_worst[k], tol.group[k]) << group[k] << ": worst tensor " << e.group_worst_name[k]
                                              << ", error relative to the whole gradient's norm";
}

const char* const kTiny[] = {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef"};
const char* const kFull[] = {"unet_se50", "unet_se101", "unet_ef3", "unet_ef5", "deeplab_se50", "cls_ef3"};

// Bounds: every figure is from bench/model_precision_torch.py (PyTorch twins of the networks; float32 and
// emulated bf16 storage against float64, default initialisation, input N(0,1)), the tables in
// bench/reports/2026-12-03-model-precision.md ("Dec 3") and bench/reports/2026-12-07-model-precision-groups.md
// ("Dec 7": the per-group metric, eval 64x64 batch 2 over 20 cases, train 128x128 batch 4), and the H200
// run bench/reports/2026-11-27-h200/run2-tests_gpu.log ("H200"). Two float32 evaluations (GPU, CPU) differ by
// up to twice the float32-vs-float64 figure; the float32 bounds leave a further ~5x, the factor by which the
// H200's float32 parameter-gradient L2 (unet_se101, 1.8e-4) exceeded PyTorch's own (3.8e-5, Dec 7). The bf16
// bounds leave about 2x over the bf16-storage-vs-float32 maxima (as the Dec 3 bounds did). A wrong kernel
// shows at 1e-2 (float32) or O(1). Groups: conv/linear weights, squeeze-excite parameters, BatchNorm/biases,
// each as its worst tensor's error relative to the WHOLE gradient's norm (tests/nn/network_compare.h).
//
// float32, eval:             was (best of two draws)  now (one draw)  measurement (max over cases)
//   seg, cls                 2e-5                     2e-5            2.4e-6 (Dec 7, unet_se101 cls); H200 4e-6
//   input gradient           1e-3                     2e-3            9.5e-4 (Dec 7, unet_se101 seed 0: a ReLU /
//                                                                     max-pool flip, a discrete event that does
//                                                                     not scale with the arithmetic; without
//                                                                     best-of-two it must fit the bound: 2x)
//   parameter-gradient L2    1e-3                     6e-4            5.6e-5 (Dec 3 and Dec 7, cls_ef3 seed 0);
//                                                                     H200 1.8e-4 (unet_se101)
//   weights group            -                        3e-4            2.8e-5 (Dec 7, unet_se101 seed 0)
//   SE group                 -                        1e-6            2.0e-8 (Dec 7). bf16 storage moves an
//                                                                     SE tensor by 5.8e-5 of the whole norm, a
//                                                                     relative error of at most ~1 of its own,
//                                                                     so SE tensors carry >= ~6e-5 of the norm:
//                                                                     a wrong SE kernel shows there, 60x over
//   BN/bias group            -                        6e-4            5.2e-5 (Dec 7, cls_ef3 seed 0)
constexpr test::ErrorBounds kF32Eval{2e-5, 2e-3, 6e-4, {3e-4, 1e-6, 6e-4}};
// bfloat16, eval:            was                      now             bf16 storage vs float32 (max)
//   seg, cls                 5e-2                     5e-2            2.7e-2 (Dec 3, unet_se101 cls); Dec 7 1.5e-2
//   input gradient           0.5                      0.5             0.27 (Dec 3 and Dec 7, tiny_unet_se)
//   parameter-gradient L2    0.2                      0.2             0.093 (Dec 3 and Dec 7, tiny_deeplab_se)
//   weights group            -                        0.15            7.1e-2 (Dec 7, tiny_deeplab_se seed 1)
//   SE group                 -                        1.2e-4          5.8e-5 (Dec 7, tiny_unet_ef seed 0)
//   BN/bias group            -                        0.15            7.3e-2 (Dec 7, cls_ef3 seed 0)
constexpr test::ErrorBounds kBF16Eval{5e-2, 0.5, 0.2, {0.15, 1.2e-4, 0.15}};
// float32, train mode at batch 4, 128x128 (was: reported only, at batch 2, 64x64, where the deepest stages
// normalise over 8 values per channel and float32 alone moved gradients by up to 4e-2). Dec 7, one draw per
// network, float32 vs float64, max over the four tiny networks, unet_se50 and unet_ef3 (the full networks
// measured so far at this size): seg 2.0e-5 (unet_se50),
// input gradient 3.4e-2 (tiny_unet_se), L2 1.2e-2 (unet_se50), weights group 7.9e-3 (unet_se50), SE 4.8e-5
// (unet_se50), BN/bias 3.3e-4 (tiny_cls_ef). Bounds 5x over (two evaluations, then 2.5x): still far below
// the O(1) of a wrong batch-statistics backward.
constexpr test::ErrorBounds kF32Train{1e-4, 0.2, 6e-2, {4e-2, 2.5e-4, 2e-3}};
// bfloat16, train mode: bf16 storage alone moves the gradients by O(1) there (Dec 7, batch 4, 128x128: input
// gradient 0.63-0.74 and L2 0.44-0.67 on the tiny networks, 1.3 and 1.1 on unet_se50), so gradients cannot be
// bounded against float32. The tiny networks' forward can (seg up to 0.15, cls 0.052: bound 0.3; unet_se50's
// cls moves by 0.33, so the full networks are not asserted), and every value must be finite (1e29).
constexpr test::ErrorBounds kBF16TrainForward{0.3, 1e29, 1e29, {1e29, 1e29, 1e29}};

// Eval mode: BatchNorm from running statistics. float32: cuDNN/cuBLAS in float32 (no TF32) against the CPU
// oracle; bfloat16: activations in bf16 with float32 accumulation, master weights and BatchNorm statistics.
TEST(ModelsGpu, TinyNetworksFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kTiny) check_network(n, DType::F32, kF32Eval, kEval);
}
TEST(ModelsGpu, TinyNetworksBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kTiny) check_network(n, DType::BF16, kBF16Eval, kEval);
}
TEST(ModelsGpu, FullNetworksFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kFull) check_network(n, DType::F32, kF32Eval, kEval);
}
TEST(ModelsGpu, FullNetworksBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kFull) check_network(n, DType::BF16, kBF16Eval, kEval);
}
// Train mode (batch statistics) at batch 4, 128x128: the networks whose train-mode figures were measured.
TEST(ModelsGpu, TrainModeFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kTiny) check_network(n, DType::F32, kF32Train, kTrain);
  for (const char* n : {"unet_se50", "unet_ef3"}) check_network(n, DType::F32, kF32Train, kTrain);
}
TEST(ModelsGpu, TrainModeBFloat16Forward) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kTiny) check_network(n, DType::BF16, kBF16TrainForward, kTrain);
}

}  // namespace
}  // namespace pneumo::nn::models
