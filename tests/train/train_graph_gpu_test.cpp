// The whole training step as one CUDA Graph (`pneumo train --cuda-graph`): zero_grad, forward, loss,
// backward and a capturable Adam step captured once and replayed. Checks: replays take the same steps as
// eager capturable steps (parameters, BatchNorm running statistics and counters, optimiser step counts,
// learning-rate changes between replays, EfficientNet's drop-connect masks); random draws in a graph (each
// replay the eager masks, forward and backward); the capturable Adam kernel against the host-scalar one;
// and the refusals that keep a replay from silently repeating a host value (a non-capturable optimiser,
// state created inside the capture). Skips without a GPU (fails under PNEUMO_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/models/registry.h"
#include "support/checkers.h"
#include "tensor/cuda_graph.h"
#include "tensor/cuda_runtime.h"
#include "tensor/generator.h"
#include "tensor/ops.h"
#include "nn/checkpoint.h"
#include "train/data_test_util.h"
#include "train/optim.h"
#include "train/synthetic.h"
#include "train/tiny_train_config.h"
#include "train/trainer.h"

namespace pneumo {
namespace {

std::shared_ptr<nn::models::Network> tiny(uint64_t seed, const char* name = "tiny_unet_se", double drop_connect = 0) {
  default_generator().manual_seed(seed);  // identical initial weights for every call with the same seed
  nn::models::ModelOptions o;
  o.drop_connect_rate = drop_connect;
  auto m = nn::models::create_model(name, o);
  m->to(Device::cuda());
  m->train();
  return m;
}

struct Batch {
  Tensor images, masks, labels;
};

Batch batch(int k) {
  const Device d = Device::cuda();
  Tensor masks = Tensor::uniform({2, 64, 64, 1}, 0, 1, 700 + k);
  masks = ops::affine(masks, 1.0, -0.7);  // about 30 % positive after the threshold below
  std::vector<float> mv = masks.to_vector();
  for (float& v : mv) v = v > 0 ? 1.0f : 0.0f;
  return {Tensor::normal({2, 64, 64, 3}, 0, 1, 600 + k).to(d), Tensor::from_vector(mv, {2, 64, 64, 1}).to(d),
          Tensor::from_vector({1, 0}, {2}).to(d)};
}

// Relative L2 distance of all parameters and buffers, and whether the I64 counters agree exactly.
double state_distance(nn::Module& a, nn::Module& b, bool& counters_equal) {
  auto na = a.named_parameters(), nb = b.named_parameters();
  double num = 0, den = 0;
  for (size_t i = 0; i < na.size(); ++i) {
    const auto x = na[i].second.value().to_vector_f64(), y = nb[i].second.value().to_vector_f64();
    for (size_t j = 0; j < x.size(); ++j) {
      num += (x[j] - y[j]) * (x[j] - y[j]);
      den += y[j] * y[j];
    }
  }
  counters_equal = true;
  auto ba = a.named_buffers(), bb = b.named_buffers();
  for (size_t i = 0; i < ba.size(); ++i) {
    const auto x = ba[i].second->to_vector_f64(), y = bb[i].second->to_vector_f64();
    if (ba[i].second->dtype() == DType::I64) {
      counters_equal = counters_equal && x == y;
      continue;
    }
    for (size_t j = 0; j < x.size(); ++j) {
      num += (x[j] - y[j]) * (x[j] - y[j]);
      den += y[j] * y[j];
    }
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// tiny_unet_se, and tiny_unet_ef with drop-connect: the eager step and the replay start from the same
// generator offset, so they draw the same masks.
TEST(TrainGraphGpu, ReplayedStepsMatchEagerCapturableSteps) {
  PNEUMO_REQUIRE_CUDA();
  struct Case {
    const char* model;
    double drop_connect;
    DType dtype;
  };
  for (const Case& c : {Case{"tiny_unet_se", 0, DType::F32}, Case{"tiny_unet_se", 0, DType::BF16},
                        Case{"tiny_unet_ef", 0.3, DType::F32}}) {
    const DType dtype = c.dtype;
    SCOPED_TRACE(std::string(c.model) + " " + dtype_name(dtype));
    auto eager = tiny(31, c.model, c.drop_connect), graphed = tiny(31, c.model, c.drop_connect);
    Generator& gen = default_generator();
    train::Adam opt_e(eager->named_parameters(), train::AdamOptions{1e-3});
    train::Adam opt_g(graphed->named_parameters(), train::AdamOptions{1e-3});
    opt_e.set_capturable(true);
    opt_g.set_capturable(true);
    const train::LossKind kind = train::LossKind::Dice;
    // Step 0 eager on both (the warm-up: cuDNN searches, optimiser state).
    Batch b0 = batch(0);
    const uint64_t offset0 = gen.offset();
    train::train_step(*eager, opt_e, kind, b0.images, b0.masks, b0.labels, dtype);
    gen.set_offset(offset0);
    train::train_step(*graphed, opt_g, kind, b0.images, b0.masks, b0.labels, dtype);
    Batch s = batch(0);  // the graph's static inputs
    Tensor loss_g;
    cuda::Graph g;
    const uint64_t before_capture = gen.offset();
    g.capture([&] { loss_g = train::train_step(*graphed, opt_g, kind, s.images, s.masks, s.labels, dtype); });
    ASSERT_TRUE(g.captured());
    EXPECT_EQ(gen.offset(), before_capture) << "the capture draws nothing";
    EXPECT_EQ(g.random().draws() > 0, c.drop_connect > 0);
    for (int k = 1; k <= 4; ++k) {
      const double lr = k <= 2 ? 1e-3 : 3e-4;  // changed between replays, as the schedule does per epoch
      opt_e.set_lr(lr);
      opt_g.set_lr(lr);
      Batch b = batch(k);
      const uint64_t offset = gen.offset();
      const double loss_e = train::train_step(*eager, opt_e, kind, b.images, b.masks, b.labels, dtype).item();
      const uint64_t after_eager = gen.offset();
      gen.set_offset(offset);  // the replay draws from where the eager step did
      s.images.copy_from(b.images);
      s.masks.copy_from(b.masks);
      s.labels.copy_from(b.labels);
      g.replay();
      EXPECT_EQ(gen.offset(), after_eager) << "a replay advances the generator as the eager step";
      // Same kernels, same cached algorithms: equal up to a non-deterministic cuDNN fallback (said on stderr).
      EXPECT_NEAR(loss_g.item(), loss_e, 1e-5 * std::fabs(loss_e)) << "step " << k;
    }
    bool counters = false;
    const double d = state_distance(*graphed, *eager, counters);
    EXPECT_LE(d, 1e-5) << "parameters and running statistics after 5 steps";
    EXPECT_TRUE(counters) << "num_batches_tracked must advance on every replay";
    for (size_t i = 0; i < opt_e.parameters().size(); ++i)
      ASSERT_EQ(opt_g.step_count(i), opt_e.step_count(i)) << opt_e.parameters()[i].first;
    EXPECT_EQ(opt_g.step_count(0), 5);
    // The saved state carries the device's counts.
    const train::OptimizerStateDict sd = opt_g.state_dict();
    EXPECT_EQ(sd.tensors[0].second.item(), 5.0) << sd.tensors[0].first;
  }
}

// The kernel's own step scalars (device pow in double) against the host's, over learning-rate changes.
TEST(TrainGraphGpu, CapturableAdamMatchesHostScalarsOnTheDevice) {
  PNEUMO_REQUIRE_CUDA();
  for (bool decoupled : {false, true}) {
    std::vector<ag::Variable> a, b;
    for (int i = 0; i < 3; ++i) {
      Tensor v = Tensor::normal({70000 + 3 * i}, 0, 1, 90 + i).to(Device::cuda());
      a.emplace_back(v.clone(), true);
      b.emplace_back(v.clone(), true);
    }
    train::Adam host(train::name_parameters(a), {1e-2, 0.9, 0.999, 1e-8, 0.01}, decoupled);
    train::Adam cap(train::name_parameters(b), {1e-2, 0.9, 0.999, 1e-8, 0.01}, decoupled);
    cap.set_capturable(true);
    for (int k = 0; k < 6; ++k) {
      host.set_lr(1e-2 / (k + 1));
      cap.set_lr(1e-2 / (k + 1));
      for (int i = 0; i < 3; ++i) {
        Tensor g = Tensor::normal(a[i].shape(), 0, 1, 200 + 10 * k + i).to(Device::cuda());
        a[i].mutable_grad() = g.clone();
        b[i].mutable_grad() = g.clone();
      }
      host.step();
      cap.step();
    }
    // The scalars agree to double rounding before their one float rounding: at most an ulp apart.
    for (int i = 0; i < 3; ++i) PNEUMO_EXPECT_CLOSE(b[i].value(), a[i].value(), (test::Tolerance{1e-6, 1e-6}));
    EXPECT_EQ(cap.step_count(2), 6);
  }
}

// A parameter of 0 elements makes no chunk for the update kernel; its step count must still advance, as on
// the CPU and in the host-scalar optimiser (the CUDA launcher returned before advancing the counts).
TEST(TrainGraphGpu, CapturableStepCountsAdvanceForEmptyParameters) {
  PNEUMO_REQUIRE_CUDA();
  std::vector<ag::Variable> p{ag::Variable(Tensor::zeros({0}, DType::F32, Device::cuda()), true)};
  train::Adam cap(train::name_parameters(p), {1e-2, 0.9, 0.999, 1e-8, 0.0}, false);
  cap.set_capturable(true);
  for (int k = 0; k < 3; ++k) {
    p[0].mutable_grad() = Tensor::zeros({0}, DType::F32, Device::cuda());
    cap.step();
  }
  EXPECT_EQ(cap.step_count(0), 3);
}

TEST(TrainGraphGpu, HostValuesThatAReplayWouldRepeatAreRefused) {
  PNEUMO_REQUIRE_CUDA();
  auto expect_refused = [](const std::function<void()>& region, const std::string& words) {
    cuda::Graph g;
    try {
      g.capture(region);
      ADD_FAILURE() << "captured; expected a refusal naming '" << words << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  Tensor x = Tensor::normal({2, 8, 8, 4}, 0, 1, 5).to(Device::cuda());
  ag::Variable xv(x);
  std::vector<ag::Variable> ps{ag::Variable(Tensor::zeros({4}, DType::F32, Device::cuda()), true)};
  ps[0].mutable_grad() = Tensor::full({4}, 1.0, DType::F32, Device::cuda());
  train::Adam plain(train::name_parameters(ps), {});
  expect_refused([&] { plain.step(); }, "set_capturable(true)");
  train::Adam fresh(train::name_parameters(ps), {});
  fresh.set_capturable(true);
  expect_refused([&] { fresh.step(); }, "take one step before capturing");
  // Eval-mode dropout draws nothing and captures.
  cuda::Graph ok;
  ok.capture([&] { nn::F::dropout(xv, 0.2, false, default_generator()); });
  EXPECT_TRUE(ok.captured());
}

// Dropout and drop-connect captured with their backward: each replay's output and input gradient are the
// eager ones at the generator's offset before that replay (CPU reference: the same Philox draw), and
// replays differ from each other.
TEST(TrainGraphGpu, RandomDrawsInAGraphGiveEachReplayTheEagerMasks) {
  PNEUMO_REQUIRE_CUDA();
  Generator gen(2026);
  const Tensor x_cpu = Tensor::normal({4, 8, 8, 16}, 0, 1, 6), c_cpu = Tensor::normal({4, 8, 8, 16}, 0, 1, 7);
  ag::Variable x(x_cpu.to(Device::cuda()), true);
  const ag::Variable c(c_cpu.to(Device::cuda()));
  ag::Variable y;
  auto region = [&] {
    x.zero_grad();
    y = nn::F::drop_connect(nn::F::dropout(x, 0.3, true, gen), 0.5, true, gen);
    ag::sum(ag::mul(y, c)).backward();
  };
  region();  // eager warm-up (draws offsets 0 and 1)
  cuda::Graph g;
  g.capture(region);
  ASSERT_EQ(g.random().draws(), 2u);
  std::vector<float> previous;
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE(k);
    const uint64_t o = gen.offset();
    g.replay();
    ag::Variable xc(x_cpu, true);
    ag::Variable yc = ag::dropout(ag::dropout(xc, 0.3, gen.seed(), o, false), 0.5, gen.seed(), o + 1, true);
    ag::sum(ag::mul(yc, ag::Variable(c_cpu))).backward();
    PNEUMO_EXPECT_CLOSE(y.value().cpu(), yc.value(), test::tolerance_for(DType::F32));
    PNEUMO_EXPECT_CLOSE(x.grad().cpu(), xc.grad(), test::tolerance_for(DType::F32));
    EXPECT_EQ(gen.offset(), o + 2);
    const std::vector<float> now = y.value().cpu().to_vector();
    EXPECT_NE(now, previous);
    previous = now;
  }
}

// `pneumo train --cuda-graph` end to end: the run captures its step (nothing on stderr says otherwise) and
// its checkpoints match the eager run's (which uses the host-scalar Adam: an ulp apart per step), through
// epochs whose validation swaps the BatchNorm statistics out and back (--val-bn-batches). tiny_unet_ef draws
// drop-connect masks (rate 0.2): the replays draw the eager run's.
TEST(TrainGraphGpu, TrainingRunWithCudaGraphMatchesTheEagerRun) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* model : {"tiny_unet_se", "tiny_unet_ef"}) {
    SCOPED_TRACE(model);
    test::TempDir tmp;
    const std::string data = tmp.file("data");
    train::write_synthetic_folder(data, 40, 64, 7);
    train::TrainConfig a = test::tiny_train_config(data, tmp.file("eager"));
    a.model = model;
    a.overlays = 0;
    a.device = "cuda";
    a.dtype = "f32";  // bf16 roundings would amplify the ulp apart the two Adam paths are
    a.val_bn_batches = 2;  // BatchNorm statistics swapped for validation and copied back into the graph's buffers
    train::TrainConfig b = a;
    b.out = tmp.file("graph");
    b.cuda_graph = true;
    ASSERT_EQ(train::run_training(a).exit_code, 0);
    testing::internal::CaptureStderr();
    const train::TrainResult rb = train::run_training(b);
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_EQ(rb.exit_code, 0) << rb.message;
    EXPECT_EQ(err.find("not captured"), std::string::npos) << err;
    const nn::SafetensorsContents ea = nn::load_safetensors(a.out + "/checkpoints/epoch-001.safetensors");
    const nn::SafetensorsContents eb = nn::load_safetensors(b.out + "/checkpoints/epoch-001.safetensors");
    ASSERT_EQ(ea.tensors.size(), eb.tensors.size());
    for (size_t i = 0; i < ea.tensors.size(); ++i) {
      SCOPED_TRACE(ea.tensors[i].first);
      if (ea.tensors[i].second.dtype() == DType::I64) {
        EXPECT_EQ(ea.tensors[i].second.to_vector_f64(), eb.tensors[i].second.to_vector_f64());
        continue;
      }
      // 14 steps, each apart by at most an ulp of its step size.
      PNEUMO_EXPECT_CLOSE(eb.tensors[i].second, ea.tensors[i].second, (test::Tolerance{1e-4, 1e-4}));
    }
  }
}

}  // namespace
}  // namespace pneumo
