// The fused BatchNorm path on the CPU (kernels/cpu/fused_bn_kernels, tensor/fused_bn_ops, F::batch_norm_relu,
// F::bottleneck_tail): statistics and per-sample sums against loops, float64 finite-difference gradients of
// BatchNorm+ReLU and of the whole bottleneck tail (BN, SE MLP, residual) in training and evaluation, the
// accumulate-into-dx option, the same values as the unfused modules, and whole tiny networks giving the
// same outputs and gradients with PNEUMO_FUSED_BN on and off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "autograd/functions.h"
#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "kernels/cpu/host_memory.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/models/registry.h"
#include "nn/squeeze_excite.h"
#include "support/checkers.h"
#include "tensor/fused_bn_ops.h"
#include "tensor/ops.h"
#include "tests/nn/network_compare.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/fused_bn_kernels.h"
#endif

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

// Sets both process-wide switches (fused BatchNorm, fused upsample + concat) and restores them.
struct FusedSwitch {
  bool bn = layer_ops::fused_bn_enabled(), concat = layer_ops::fused_concat_enabled();
  explicit FusedSwitch(bool on) {
    layer_ops::set_fused_bn_enabled(on);
    layer_ops::set_fused_concat_enabled(on);
  }
  ~FusedSwitch() {
    layer_ops::set_fused_bn_enabled(bn);
    layer_ops::set_fused_concat_enabled(concat);
  }
};

TEST(FusedBatchNorm, StatisticsAndSampleSumsMatchLoops) {
  for (DType dt : {DType::F64, DType::F32}) {
    SCOPED_TRACE(dtype_name(dt));
    // A large common offset: the one-read statistics must not lose the variance to cancellation.
    Tensor x = ops::affine(Tensor::normal({3, 5, 7, 6}, 0, 1.5, 11, 0, dt), 1.0, 300.0);
    layer_ops::FusedBnStatistics s = layer_ops::fused_bn_statistics(x, true, true);
    const std::vector<double> v = x.to_vector_f64();
    const int64_t n = 3, hw = 35, c = 6;
    std::vector<double> mean(c, 0), var(c, 0), ss(n * c, 0);
    for (int64_t r = 0; r < n * hw; ++r)
      for (int64_t k = 0; k < c; ++k) {
        mean[k] += v[r * c + k] / (n * hw);
        ss[(r / hw) * c + k] += v[r * c + k];
      }
    for (int64_t r = 0; r < n * hw; ++r)
      for (int64_t k = 0; k < c; ++k) var[k] += (v[r * c + k] - mean[k]) * (v[r * c + k] - mean[k]) / (n * hw);
    const test::Tolerance tol = dt == DType::F64 ? test::Tolerance{1e-12, 1e-12} : test::Tolerance{1e-6, 1e-6};
    PNEUMO_EXPECT_CLOSE(s.mean, Tensor::from_vector_f64(mean, {c}).to(dt), tol);
    PNEUMO_EXPECT_CLOSE(s.var, Tensor::from_vector_f64(var, {c}).to(dt), tol);
    PNEUMO_EXPECT_CLOSE(s.sample_sum, Tensor::from_vector_f64(ss, {n, c}).to(dt), tol);
    EXPECT_EQ(s.mean.dtype(), dt);
  }
}

#if PNEUMO_WITH_CUDA
// The CUDA scratch size is host arithmetic: it runs without a GPU. It sized the 4- (float32) and 8-wide
// (bf16) vector geometry even where C is narrower than a vector, and divided by zero lanes there (SIGFPE at
// C = 3, the GPU test's first shape). The scratch must hold 2 * n * chunks * c floats of partials plus the
// per-sample double sums (4 * n * c floats), for at least one chunk.
TEST(FusedBatchNorm, CudaScratchSizeForChannelsNarrowerThanAVector) {
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t c : {1, 2, 3, 5, 7, 8, 12, 64}) {
      const int64_t floats = kernels::cuda::fused_bn_scratch_floats(dt, 3, 25, c);
      EXPECT_GE(floats, 2 * 3 * c + 4 * 3 * c) << dtype_name(dt) << " c=" << c;
    }
  EXPECT_THROW(kernels::cuda::fused_bn_scratch_floats(DType::F32, 1, 1, 0), Error);
}
#endif

TEST(FusedBatchNorm, ReluForwardAndGradientsEqualTheUnfusedOps) {
  Tensor x = ops::affine(Tensor::normal({2, 6, 5, 8}, 0, 2, 21), 1.0, 0.4);
  Tensor w = Tensor::normal({8}, 1, 0.5, 22), b = Tensor::normal({8}, 0, 0.5, 23);
  Tensor proj = Tensor::normal({2, 6, 5, 8}, 0, 1, 24);
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "evaluation");
    Tensor rm[2], rv[2];
    Tensor xg[2], wg[2], bg[2], y[2];
    for (int fused = 0; fused < 2; ++fused) {
      rm[fused] = Tensor::full({8}, 0.2), rv[fused] = Tensor::full({8}, 1.5);
      Variable xv(x.clone(), true), wv(w.clone(), true), bv(b.clone(), true);
      Variable out = fused ? F::batch_norm_relu(xv, wv, bv, &rm[fused], &rv[fused], training, 0.1, 1e-5)
                           : F::relu(F::batch_norm(xv, wv, bv, &rm[fused], &rv[fused], training, 0.1, 1e-5));
      ag::sum(ag::mul(out, Variable(proj))).backward();
      y[fused] = out.value();
      xg[fused] = xv.grad();
      wg[fused] = wv.grad();
      bg[fused] = bv.grad();
    }
    const test::Tolerance tol{1e-6, 1e-5};
    PNEUMO_EXPECT_CLOSE(y[1], y[0], tol);
    PNEUMO_EXPECT_CLOSE(xg[1], xg[0], tol);
    PNEUMO_EXPECT_CLOSE(wg[1], wg[0], tol);
    PNEUMO_EXPECT_CLOSE(bg[1], bg[0], tol);
    PNEUMO_EXPECT_CLOSE(rm[1], rm[0], tol);
    PNEUMO_EXPECT_CLOSE(rv[1], rv[0], tol);
  }
}

TEST(FusedBatchNorm, GradcheckBatchNormReluFloat64) {
  // x away from values whose normalised output sits on the ReLU kink is not controllable directly; the
  // checker refuses (names) any element whose one-sided differences disagree.
  std::vector<Tensor> inputs{Tensor::normal({2, 3, 4, 5}, 0.5, 2, 31, 0, DType::F64),
                             Tensor::normal({5}, 1, 0.5, 32, 0, DType::F64), Tensor::normal({5}, 0, 1, 33, 0, DType::F64)};
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    return F::batch_norm_relu(v[0], v[1], v[2], nullptr, nullptr, true, 0.1, 1e-5);
  }, inputs);
  Tensor em = Tensor::from_vector_f64({0.3, -0.2, 1.0, 0.0, 0.5}, {5});
  Tensor ev = Tensor::from_vector_f64({0.5, 2.0, 1.5, 1.0, 0.7}, {5});
  test::expect_gradcheck([&](const std::vector<Variable>& v) {
    return F::batch_norm_relu(v[0], v[1], v[2], &em, &ev, false, 0.1, 1e-5);
  }, inputs);
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    return F::batch_norm_relu(v[0], Variable(), Variable(), nullptr, nullptr, true, 0.1, 1e-3);
  }, {inputs[0]});
}

// BatchNorm + swish keeping only x: the unfused ops' values, statistics and gradients bit for bit (the
// backward forms the BatchNorm output again with the same op).
TEST(FusedBatchNorm, SwishEqualsTheUnfusedOpsBitForBit) {
  for (DType dt : {DType::F32, DType::F64})
    for (bool training : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (training ? " training" : " evaluation"));
      const DType sd = dt;  // statistics and parameters: F64 for F64 activations, F32 otherwise
      Tensor x = ops::affine(Tensor::normal({2, 6, 5, 8}, 0, 2, 25, 0, dt), 1.0, 0.4);
      Tensor w = Tensor::normal({8}, 1, 0.5, 26, 0, sd), b = Tensor::normal({8}, 0, 0.5, 27, 0, sd);
      Tensor proj = Tensor::normal({2, 6, 5, 8}, 0, 1, 28, 0, dt);
      Tensor rm[2], rv[2];
      std::vector<double> y[2], xg[2], wg[2], bg[2];
      for (int fused = 0; fused < 2; ++fused) {
        rm[fused] = Tensor::full({8}, 0.2, sd), rv[fused] = Tensor::full({8}, 1.5, sd);
        Variable xv(x.clone(), true), wv(w.clone(), true), bv(b.clone(), true);
        Variable out = fused ? F::batch_norm_swish(xv, wv, bv, &rm[fused], &rv[fused], training, 0.1, 1e-3)
                             : F::swish(F::batch_norm(xv, wv, bv, &rm[fused], &rv[fused], training, 0.1, 1e-3));
        ag::sum(ag::mul(out, Variable(proj))).backward();
        y[fused] = out.value().to_vector_f64();
        xg[fused] = xv.grad().to_vector_f64();
        wg[fused] = wv.grad().to_vector_f64();
        bg[fused] = bv.grad().to_vector_f64();
      }
      EXPECT_EQ(y[1], y[0]);
      EXPECT_EQ(xg[1], xg[0]);
      EXPECT_EQ(wg[1], wg[0]);
      EXPECT_EQ(bg[1], bg[0]);
      EXPECT_EQ(rm[1].to_vector_f64(), rm[0].to_vector_f64());
      EXPECT_EQ(rv[1].to_vector_f64(), rv[0].to_vector_f64());
    }
}

TEST(FusedBatchNorm, GradcheckBatchNormSwishFloat64) {
  std::vector<Tensor> inputs{Tensor::normal({2, 3, 4, 5}, 0.5, 2, 34, 0, DType::F64),
                             Tensor::normal({5}, 1, 0.5, 35, 0, DType::F64), Tensor::normal({5}, 0, 1, 36, 0, DType::F64)};
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    return F::batch_norm_swish(v[0], v[1], v[2], nullptr, nullptr, true, 0.1, 1e-3);
  }, inputs);
  Tensor em = Tensor::from_vector_f64({0.3, -0.2, 1.0, 0.0, 0.5}, {5});
  Tensor ev = Tensor::from_vector_f64({0.5, 2.0, 1.5, 1.0, 0.7}, {5});
  test::expect_gradcheck([&](const std::vector<Variable>& v) {
    return F::batch_norm_swish(v[0], v[1], v[2], &em, &ev, false, 0.1, 1e-3);
  }, inputs);
}

// What it is for: the step's peak memory. Eight conv -> BatchNorm -> swish layers at [2, 128, 128, 16] (2 MiB
// per activation), forward and backward, peak of live host blocks >= 1 MiB: unfused each layer keeps the
// convolution's input, the BatchNorm input and the swish input; with batch_norm_swish the last is not kept
// (8 x 2 MiB), while the backward's transient BatchNorm output takes some back. Measured 54.5 -> 42.0 MiB;
// the bound asks for 10 of those 12.5 MiB.
TEST(FusedBatchNorm, BatchNormSwishLowersThePeakMemoryOfAStep) {
  const Tensor x = Tensor::normal({2, 128, 128, 16}, 0, 1, 37), proj = Tensor::normal({2, 128, 128, 16}, 0, 1, 38);
  layer_ops::Conv2dGeometry g;
  g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = 1;
  auto peak_mib = [&](bool fused) {
    std::vector<Variable> w, bw, bb;
    for (int k = 0; k < 8; ++k) {
      w.emplace_back(Tensor::normal({16, 3, 3, 16}, 0, 0.1, 40 + k), true);
      bw.emplace_back(Tensor::full({16}, 1.0), true);
      bb.emplace_back(Tensor::zeros({16}), true);
    }
    kernels::cpu::host_cache_reset_peak();
    const size_t base = kernels::cpu::host_cache_stats().live_large_bytes;
    Variable h(x);
    for (int k = 0; k < 8; ++k) {
      h = ag::conv2d(h, w[k], g);
      h = fused ? F::batch_norm_swish(h, bw[k], bb[k], nullptr, nullptr, true, 0.1, 1e-3)
                : F::swish(F::batch_norm(h, bw[k], bb[k], nullptr, nullptr, true, 0.1, 1e-3));
    }
    ag::sum(ag::mul(h, Variable(proj))).backward();
    return static_cast<double>(kernels::cpu::host_cache_stats().peak_live_large_bytes - base) / (1 << 20);
  };
  const double unfused = peak_mib(false), fused = peak_mib(true);
  std::printf("8 x conv + BatchNorm + swish, peak of live blocks >= 1 MiB: %.1f MiB unfused, %.1f MiB fused\n",
              unfused, fused);
  EXPECT_LE(fused, unfused - 10.0);
}

TEST(FusedBatchNorm, BackwardAccumulatesIntoAnExistingGradient) {
  Tensor x = Tensor::normal({2, 4, 4, 6}, 0, 1, 41), dy = Tensor::normal({2, 4, 4, 6}, 0, 1, 42);
  Tensor w = Tensor::normal({6}, 1, 0.3, 43);
  layer_ops::FusedBnStatistics s = layer_ops::fused_bn_statistics(x, true, false);
  Tensor y = layer_ops::fused_bn_apply(x, s.mean, s.var, 1e-5, w, Tensor(), Tensor(), Tensor(), true);
  layer_ops::FusedBnGrads fresh = layer_ops::fused_bn_backward(dy, y, x, s.mean, s.var, 1e-5, w, true, true, true);
  Tensor existing = Tensor::normal({2, 4, 4, 6}, 0, 1, 44);
  Tensor into = existing.clone();
  layer_ops::FusedBnGrads acc =
      layer_ops::fused_bn_backward(dy, y, x, s.mean, s.var, 1e-5, w, true, true, true, &into);
  EXPECT_EQ(acc.dx.raw_data(), into.raw_data());
  PNEUMO_EXPECT_CLOSE(into, ops::add(existing, fresh.dx), (test::Tolerance{1e-6, 1e-6}));
  // The ReLU mask comes from the saved output: where y == 0 the gradient stops (eval: dx = w invstd dy mask).
  layer_ops::FusedBnGrads ev = layer_ops::fused_bn_backward(dy, y, x, s.mean, s.var, 1e-5, w, true, false, true);
  const std::vector<float> yv = y.to_vector(), dxv = ev.dx.to_vector();
  int zeros = 0;
  for (size_t i = 0; i < yv.size(); ++i)
    if (yv[i] == 0.f) {
      EXPECT_EQ(dxv[i], 0.f) << i;
      ++zeros;
    }
  EXPECT_GT(zeros, 10);
}

// relu(se(bn(x)) + residual) through the fused op, all parameters float64 leaves.
Variable tail_fn(const std::vector<Variable>& v, bool training, Tensor* rm, Tensor* rv) {
  return F::bottleneck_tail(v[0], v[1], v[2], rm, rv, training, 0.1, 1e-5, nullptr, v[3], v[4], v[5], v[6],
                            kernels::Activation::Relu, v[7]);
}

std::vector<Tensor> tail_inputs(DType dt, int64_t n, int64_t h, int64_t w, int64_t c, int64_t r, uint64_t seed) {
  return {ops::affine(Tensor::normal({n, h, w, c}, 0, 1.5, seed, 0, dt), 1.0, 0.3),
          Tensor::normal({c}, 1, 0.4, seed + 1, 0, dt),
          Tensor::normal({c}, 0, 0.5, seed + 2, 0, dt),
          Tensor::normal({r, 1, 1, c}, 0, 0.6, seed + 3, 0, dt),
          Tensor::normal({r}, 0, 0.3, seed + 4, 0, dt),
          Tensor::normal({c, 1, 1, r}, 0, 0.6, seed + 5, 0, dt),
          Tensor::normal({c}, 0, 0.3, seed + 6, 0, dt),
          Tensor::normal({n, h, w, c}, 0, 1, seed + 7, 0, dt)};
}

TEST(BottleneckTail, GradcheckFloat64TrainingAndEvaluation) {
  const std::vector<Tensor> inputs = tail_inputs(DType::F64, 2, 3, 4, 6, 3, 51);
  test::expect_gradcheck([](const std::vector<Variable>& v) { return tail_fn(v, true, nullptr, nullptr); }, inputs);
  Tensor em = Tensor::normal({6}, 0.2, 0.3, 58, 0, DType::F64);
  Tensor ev = Tensor::uniform({6}, 0.5, 2.0, 59, 0, DType::F64);
  test::expect_gradcheck([&](const std::vector<Variable>& v) { return tail_fn(v, false, &em, &ev); }, inputs);
}

TEST(BottleneckTail, EqualsTheUnfusedModules) {
  // BatchNorm2d + SqueezeExcite + add + ReLU (the verified path) against the fused tail, same parameters.
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "evaluation");
    Tensor proj = Tensor::normal({2, 5, 6, 32}, 0, 1, 61);
    Tensor x = ops::affine(Tensor::normal({2, 5, 6, 32}, 0, 1.2, 62), 1.0, 0.5);
    Tensor res = Tensor::normal({2, 5, 6, 32}, 0, 1, 63);
    std::vector<Tensor> out, grads;
    std::vector<Tensor> running;
    for (bool fused : {false, true}) {
      FusedSwitch sw(fused);
      nn::BatchNorm2d bn(32);
      nn::SqueezeExcite se(32, 4, nn::SEActivation::ReLU);
      bn.weight().mutable_value().copy_from(Tensor::normal({32}, 1, 0.3, 64));
      bn.bias().mutable_value().copy_from(Tensor::normal({32}, 0, 0.3, 65));
      bn.running_mean().copy_from(Tensor::normal({32}, 0, 0.3, 66));
      bn.running_var().copy_from(Tensor::uniform({32}, 0.5, 1.5, 67));
      se.reduce().weight().mutable_value().copy_from(Tensor::normal({4, 1, 1, 32}, 0, 0.3, 68));
      se.reduce().bias().mutable_value().copy_from(Tensor::normal({4}, 0, 0.3, 69));
      se.expand().weight().mutable_value().copy_from(Tensor::normal({32, 1, 1, 4}, 0, 0.3, 70));
      se.expand().bias().mutable_value().copy_from(Tensor::normal({32}, 0, 0.3, 71));
      if (!training) bn.eval();
      Variable xv(x.clone(), true), rv(res.clone(), true);
      Variable y = bn.forward_tail(xv, se, rv);
      ag::sum(ag::mul(y, Variable(proj))).backward();
      out.push_back(y.value());
      for (Tensor t : {xv.grad(), rv.grad(), bn.weight().grad(), bn.bias().grad(), se.reduce().weight().grad(),
                       se.reduce().bias().grad(), se.expand().weight().grad(), se.expand().bias().grad()})
        grads.push_back(t);
      running.push_back(bn.running_mean().clone());
      running.push_back(bn.running_var().clone());
      EXPECT_EQ(bn.num_batches_tracked().item(), training ? 1.0 : 0.0);
    }
    const test::Tolerance tol{1e-6, 1e-5};
    PNEUMO_EXPECT_CLOSE(out[1], out[0], tol);
    for (size_t i = 0; i < 8; ++i) {
      SCOPED_TRACE(i);
      ASSERT_TRUE(grads[i].defined() && grads[8 + i].defined());
      PNEUMO_EXPECT_CLOSE(grads[8 + i], grads[i], tol);
    }
    PNEUMO_EXPECT_CLOSE(running[2], running[0], tol);
    PNEUMO_EXPECT_CLOSE(running[3], running[1], tol);
  }
}

TEST(UpsampleConcat, EqualsUpsampleThenConcatAndGradcheckFloat64) {
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = Tensor::normal({2, 3, 5, 4}, 0, 1, 91).to(dt), skip = Tensor::normal({2, 6, 10, 3}, 0, 1, 92).to(dt);
    Tensor proj = Tensor::normal({2, 6, 10, 7}, 0, 1, 93).to(dt);
    Variable x0(x.clone(), true), s0(skip.clone(), true), x1(x.clone(), true), s1(skip.clone(), true);
    Variable y0 = F::concat({F::upsample_nearest2x(x0), s0});
    Variable y1 = ag::upsample2x_concat(x1, s1);
    EXPECT_EQ(y1.value().to(DType::F32).to_vector(), y0.value().to(DType::F32).to_vector());  // copies: exact
    ag::sum(ag::cast(ag::mul(y0, Variable(proj)), DType::F32)).backward();
    ag::sum(ag::cast(ag::mul(y1, Variable(proj)), DType::F32)).backward();
    EXPECT_EQ(s1.grad().to(DType::F32).to_vector(), s0.grad().to(DType::F32).to_vector());
    PNEUMO_EXPECT_CLOSE(x1.grad().to(DType::F32), x0.grad().to(DType::F32), test::tolerance_for(dt));
  }
  test::expect_gradcheck([](const std::vector<Variable>& v) { return ag::upsample2x_concat(v[0], v[1]); },
                         {Tensor::normal({2, 3, 4, 5}, 0, 1, 94, 0, DType::F64),
                          Tensor::normal({2, 6, 8, 2}, 0, 1, 95, 0, DType::F64)});
}

TEST(FusedBatchNorm, TinyNetworksGiveTheSameOutputsAndGradientsBothWays) {
  // PNEUMO_FUSED_BN and PNEUMO_FUSED_CONCAT on vs off.
  // The networks' wiring (SE-ResNeXt stem/bottlenecks, UNet Conv2dReLU, DeepLab ASPP/final, EfficientNet's
  // BatchNorm + swish): float64,
  // training mode, fused vs the verified path. Both compute the same function in double: agreement to
  // 1e-9 of each tensor's scale.
  for (const char* name : {"tiny_unet_se", "tiny_deeplab_se", "tiny_unet_ef"}) {
    SCOPED_TRACE(name);
    nn::models::ModelOptions opt;
    opt.drop_connect_rate = 0.0;  // the two runs would draw different masks
    auto a = nn::models::create_model(name, opt);
    a->to(DType::F64);
    auto b = test::copy_of(*a, name, opt);
    b->to(DType::F64);
    Tensor input = Tensor::normal({2, 64, 64, 3}, 0, 1, 81, 0, DType::F64);
    Tensor proj = test::projection_for(*a, input, 82);
    a->train();
    b->train();
    test::NetworkRun r0, r1;
    {
      FusedSwitch sw(false);
      r0 = test::run_network(*a, input, proj, Device::cpu(), DType::F64);
    }
    {
      FusedSwitch sw(true);
      r1 = test::run_network(*b, input, proj, Device::cpu(), DType::F64);
    }
    EXPECT_LT(test::max_normalized_error(r1.seg, r0.seg), 1e-9);
    EXPECT_LT(test::max_normalized_error(r1.input_grad, r0.input_grad), 1e-9);
    ASSERT_EQ(r1.grads.size(), r0.grads.size());
    // Each tensor against its own scale, except a gradient that is 0 in exact arithmetic: EfficientNet's
    // projection BatchNorm biases feeding a training-mode BatchNorm (a per-channel shift is normalised
    // away) hold rounding noise (~1e-14 against gradients of order 1) in both runs. Those are held to the
    // same 1e-9 against the network's largest gradient.
    double scale = 0;
    for (const auto& g : r0.grads)
      for (double v : g.second.to_vector_f64()) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < r0.grads.size(); ++i) {
      const std::vector<double> u = r1.grads[i].second.to_vector_f64(), v = r0.grads[i].second.to_vector_f64();
      double err = 0, own = 0;
      for (size_t j = 0; j < u.size(); ++j) err = std::max(err, std::fabs(u[j] - v[j])), own = std::max(own, std::fabs(v[j]));
      EXPECT_LT(err / (own > 1e-9 * scale ? own : scale), 1e-9) << r0.grads[i].first;
    }
    // Running statistics advanced identically.
    const auto sa = a->state_dict(), sb = b->state_dict();
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      if (sa[i].first.find("running_") == std::string::npos) continue;
      EXPECT_LT(test::max_normalized_error(sb[i].second, sa[i].second), 1e-12) << sa[i].first;
    }
  }
}

}  // namespace
}  // namespace pneumo
