// The op profiler on CUDA (cudaEvents around each op scope): the same op sequence profiled on the CPU and on
// the GPU gives the same rows (op, shape, direction, calls), device times are positive, and the op sum stays
// under the wall time. Skips without a GPU (fails under PNEUMO_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "autograd/functions.h"
#include "support/checkers.h"
#include "tensor/cuda_runtime.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace pneumo {
namespace {

using Key = std::tuple<std::string, std::string, std::string>;

std::map<Key, int64_t> profile_sequence(Device device, double* sum_ms, double* wall_ms) {
  profile::set_timing(true);
  profile::reset();
  Tensor a = Tensor::uniform({256, 1024}, -1, 1, 1).to(device), b = Tensor::uniform({256, 1024}, -1, 1, 2).to(device);
  for (int i = 0; i < 5; ++i) ops::add(a, b);
  ag::Variable x(a, true), y(b, true);
  ag::Variable loss = ag::sum(ag::mul(ag::relu(x), y));
  loss.backward();
  if (device.is_cuda()) cuda::synchronize(device.index);
  *wall_ms = profile::wall_ms();
  std::map<Key, int64_t> calls;
  *sum_ms = 0;
  for (const auto& r : profile::rows()) {
    calls[{r.op, r.shape, r.direction}] = r.calls;
    *sum_ms += r.total_ms;
    EXPECT_GE(r.total_ms, 0.0) << r.op;
  }
  profile::set_timing(false);
  profile::reset();
  return calls;
}

TEST(ProfileGpu, SameRowsAsTheCpuAndDeviceTimesUnderWall) {
  PNEUMO_REQUIRE_CUDA();
  double cpu_sum = 0, cpu_wall = 0, gpu_sum = 0, gpu_wall = 0;
  // Copies to the device are scopes of their own on the GPU run only; compare the rest.
  auto cpu = profile_sequence(Device::cpu(), &cpu_sum, &cpu_wall);
  auto gpu = profile_sequence(Device::cuda(0), &gpu_sum, &gpu_wall);
  for (auto it = gpu.begin(); it != gpu.end();)
    it = std::get<0>(it->first).rfind("copy", 0) == 0 ? gpu.erase(it) : std::next(it);
  EXPECT_EQ(cpu, gpu);
  const Key add{"add", "[256, 1024] float32", "fwd"};
  ASSERT_EQ(gpu.count(add), 1u);
  EXPECT_EQ(gpu[add], 5);
  EXPECT_GT(gpu_sum, 0.0);
  EXPECT_LE(gpu_sum, gpu_wall) << "device time of the ops cannot exceed the wall time around them";
}

}  // namespace
}  // namespace pneumo
