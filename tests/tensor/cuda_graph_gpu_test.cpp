// CUDA Graph capture and replay (tensor/cuda_graph.h): a captured region replays to the eager result, reads
// refilled inputs, keeps its memory private (a tensor allocated outside after capture is never written by a
// replay), fails clearly on a host sync inside; and a small network's training-mode forward + backward
// replays to the eager step's loss and gradients. Skips without a GPU (fails under PNEUMO_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "nn/models/registry.h"
#include "tensor/allocator.h"
#include "support/checkers.h"
#include "tensor/cuda_graph.h"
#include "tensor/cuda_runtime.h"
#include "tensor/ops.h"

namespace pneumo {
namespace {

std::vector<float> host(const Tensor& t) { return t.to(Device::cpu()).to(DType::F32).to_vector(); }

TEST(CudaGraphGpu, ReplayMatchesEagerReadsRefilledInputsAndKeepsItsMemory) {
  PNEUMO_REQUIRE_CUDA();
  const Device d = Device::cuda();
  Tensor a = Tensor::uniform({1000, 64}, -1, 1, 1).to(d), b = Tensor::uniform({1000, 64}, -1, 1, 2).to(d);
  auto region = [&] { return ops::add(ops::mul(a, b), ops::unary(ops::UnaryOp::Relu, a)); };
  region();  // warm-up: first-use setup outside the capture
  cuda::synchronize();
  Tensor out;
  cuda::Graph g;
  g.capture([&] { out = region(); });
  EXPECT_TRUE(g.captured());
  EXPECT_GE(g.nodes(), 3u);
  // Allocated outside after capture: must not alias anything the graph writes.
  Tensor bystander = Tensor::full({1000, 64}, 7.0, DType::F32, d);
  g.replay();
  EXPECT_EQ(host(out), host(region()));
  a.copy_from(Tensor::uniform({1000, 64}, -1, 1, 3).to(d));  // refill the input in place
  g.replay();
  EXPECT_EQ(host(out), host(region()));
  EXPECT_EQ(host(bystander), std::vector<float>(64000, 7.0f));
}

// The graph's pool is private for the graph's life: empty_cache() (and the out-of-memory retry, which calls
// the same code) must not give its blocks to the driver, whose next cudaMalloc could hand the addresses baked
// into the graph to eager tensors. Destroying the graph frees the pool; an output the caller still holds
// stays valid and is released later into the device stream's cache.
TEST(CudaGraphGpu, ItsPoolOutlivesEmptyCacheAndIsFreedWithTheGraph) {
  PNEUMO_REQUIRE_CUDA();
  const Device d = Device::cuda();
  Tensor a = Tensor::uniform({256, 1024}, -1, 1, 4).to(d);
  auto region = [&] { return ops::add(ops::mul(a, a), ops::mul(ops::add(a, a), a)); };  // temporaries too
  const std::vector<float> want = host(region());
  cuda::synchronize();
  Tensor out;
  size_t reserved_with_graph = 0;
  {
    cuda::Graph g;
    g.capture([&] { out = region(); });
    cuda_memory::empty_cache();
    const CudaMemoryStats after_empty = cuda_memory::stats(0);
    Tensor filler = Tensor::full({4, 256, 1024}, 3.0, DType::F32, d);  // new blocks, maybe at freed addresses
    g.replay();
    EXPECT_EQ(host(out), want);
    EXPECT_EQ(host(filler), std::vector<float>(4 * 256 * 1024, 3.0f));
    reserved_with_graph = after_empty.reserved_bytes;
  }
  cuda_memory::empty_cache();
  EXPECT_LT(cuda_memory::stats(0).reserved_bytes, reserved_with_graph);  // the temporaries' blocks are gone
  EXPECT_EQ(host(out), want);  // the output outlives the graph
  out = Tensor();
  cuda_memory::empty_cache();
}

TEST(CudaGraphGpu, HostSyncInsideTheRegionFailsClearly) {
  PNEUMO_REQUIRE_CUDA();
  Tensor a = Tensor::full({16}, 1.0, DType::F32, Device::cuda());
  cuda::Graph g;
  try {
    g.capture([&] { (void)ops::sum(a).item(); });
    FAIL() << "a device-to-host copy with a stream sync was captured";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda::Graph::capture failed"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(g.captured());
  // The device is usable afterwards.
  EXPECT_EQ(host(ops::add(a, a)), std::vector<float>(16, 2.0f));
}

TEST(CudaGraphGpu, NetworkTrainStepReplaysToTheEagerStep) {
  PNEUMO_REQUIRE_CUDA();
  nn::models::ModelOptions opt;
  opt.drop_connect_rate = 0.0;  // seeds would be baked into the graph
  auto m = nn::models::create_model("tiny_unet_se", opt);
  m->to(Device::cuda());
  m->train();
  Tensor input = Tensor::normal({2, 64, 64, 3}, 0, 1, 51).to(Device::cuda()).to(DType::BF16);
  ag::Variable loss;
  auto step = [&] {
    nn::models::NetworkOutput out = m->run(ag::Variable(input));
    loss = ag::mean(ag::cast(out.seg, DType::F32));
    if (out.cls.defined()) loss = ag::add(loss, ag::mean(ag::cast(out.cls, DType::F32)));
    loss.backward();
  };
  auto grads = [&] {
    std::vector<float> all;
    for (const auto& p : m->parameters())
      if (p.grad().defined()) {
        auto v = host(p.grad());
        all.insert(all.end(), v.begin(), v.end());
      }
    return all;
  };
  m->zero_grad();
  step();  // warm-up (cuDNN searches, workspaces)
  m->zero_grad();
  cuda::synchronize();
  cuda::Graph g;
  g.capture(step);
  input.copy_from(Tensor::normal({2, 64, 64, 3}, 0, 1, 52).to(Device::cuda()).to(DType::BF16));
  g.replay();
  const std::vector<float> graph_loss = host(loss.value()), graph_grads = grads();
  m->zero_grad();
  step();  // eager, same input
  const std::vector<float> eager_loss = host(loss.value()), eager_grads = grads();
  // Same kernels, same (cached) algorithms, same inputs: identical unless a non-deterministic cuDNN
  // fallback ran (said on stderr), which moves a bf16 gradient by its rounding, not O(1).
  EXPECT_EQ(graph_loss, eager_loss);
  ASSERT_EQ(graph_grads.size(), eager_grads.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < eager_grads.size(); ++i) {
    num += (graph_grads[i] - eager_grads[i]) * double(graph_grads[i] - eager_grads[i]);
    den += double(eager_grads[i]) * eager_grads[i];
  }
  EXPECT_LE(std::sqrt(num / den), 1e-3);
}

}  // namespace
}  // namespace pneumo
