// The op profiler (PNEUMO_PROFILE, tensor/profile.h) on the CPU: self-time aggregation of nested scopes,
// the top-N table and its sum-versus-wall line, and real CPU ops filed by op, shape and direction.
// The CUDA side (cudaEvents instead of std::chrono) runs through the same aggregation: ProfileGpu.*.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "kernels/profile.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

using namespace pneumo;
using kernels::profile::Aggregator;
using kernels::profile::Row;
using kernels::profile::Scope;

namespace {

const Row* find_row(const std::vector<Row>& rows, const std::string& op, const std::string& shape,
                    const std::string& dir) {
  for (const Row& r : rows)
    if (r.op == op && r.shape == shape && r.direction == dir) return &r;
  return nullptr;
}

// Turns timing on for one test and restores the previous state (tests run in one process).
struct TimingOn {
  TimingOn() : was(profile::timing()) {
    profile::set_timing(true);
    profile::reset();
  }
  ~TimingOn() {
    profile::set_timing(was);
    profile::reset();
  }
  bool was;
};

}  // namespace

TEST(ProfileAggregator, ChargesSelfTimeOfNestedScopes) {
  Aggregator a;
  // node(10 ms) > {conv(6 ms) > {pad(1 ms)}, add(2 ms)}; a second root conv of 4 ms with the same key.
  a.add({{"node", "[2]", "bwd", -1, 10.0},
         {"conv", "[4, 8]", "bwd", 0, 6.0},
         {"pad", "[4, 8]", "bwd", 1, 1.0},
         {"add", "[4, 8]", "bwd", 0, 2.0},
         {"conv", "[4, 8]", "bwd", -1, 4.0}});
  const auto rows = a.rows();
  ASSERT_EQ(rows.size(), 4u);
  const Row* node = find_row(rows, "node", "[2]", "bwd");
  const Row* conv = find_row(rows, "conv", "[4, 8]", "bwd");
  ASSERT_TRUE(node && conv);
  EXPECT_DOUBLE_EQ(node->total_ms, 2.0);   // 10 - 6 - 2
  EXPECT_DOUBLE_EQ(conv->total_ms, 9.0);   // (6 - 1) + 4
  EXPECT_EQ(conv->calls, 2);
  EXPECT_DOUBLE_EQ(a.total_ms(), 14.0);    // the two roots' inclusive times: nothing counted twice
  EXPECT_EQ(a.calls(), 5);
  EXPECT_EQ(rows[0].op, "conv");           // largest first
  EXPECT_EQ(rows.back().op, "pad");
}

TEST(ProfileAggregator, ChildLongerThanParentLeavesZeroNotNegative) {
  Aggregator a;
  a.add({{"outer", "-", "fwd", -1, 1.0}, {"inner", "-", "fwd", 0, 1.5}});
  EXPECT_DOUBLE_EQ(find_row(a.rows(), "outer", "-", "fwd")->total_ms, 0.0);
  EXPECT_DOUBLE_EQ(a.total_ms(), 1.5);
}

TEST(ProfileAggregator, SeparatesDirectionsAndShapes) {
  Aggregator a;
  a.add_row("mul", "[3]", "fwd", 1.0);
  a.add_row("mul", "[3]", "bwd", 2.0);
  a.add_row("mul", "[4]", "fwd", 3.0);
  a.add_row("mul", "[3]", "fwd", 0.5);
  EXPECT_EQ(a.rows().size(), 3u);
  EXPECT_DOUBLE_EQ(find_row(a.rows(), "mul", "[3]", "fwd")->total_ms, 1.5);
  EXPECT_EQ(find_row(a.rows(), "mul", "[3]", "fwd")->calls, 2);
}

TEST(ProfileAggregator, TableShowsTopRowsTheRestAndSumAgainstWall) {
  Aggregator a;
  a.add_row("conv2d_forward", "[4, 64, 64, 32] bfloat16", "fwd", 6.0);
  a.add_row("batch_norm_apply", "[4, 64, 64, 32] bfloat16", "fwd", 3.0);
  a.add_row("add", "[32] float32", "bwd", 1.0);
  const std::string t = a.table(2, 20.0, "title line");
  EXPECT_EQ(t.rfind("title line\n", 0), 0u) << t;
  EXPECT_NE(t.find("conv2d_forward"), std::string::npos) << t;
  EXPECT_NE(t.find("batch_norm_apply"), std::string::npos) << t;
  EXPECT_EQ(t.find("[32] float32"), std::string::npos) << "row 3 is beyond the top 2:\n" << t;
  EXPECT_NE(t.find("(1 more rows)"), std::string::npos) << t;
  EXPECT_LT(t.find("conv2d_forward"), t.find("batch_norm_apply")) << t;
  EXPECT_NE(t.find("60.00"), std::string::npos) << "conv's share of the op sum:\n" << t;
  EXPECT_NE(t.find("sum over ops 10.000 ms in 3 calls (3 rows)"), std::string::npos) << t;
  EXPECT_NE(t.find("wall 20.000 ms; ops cover 50.0%, gap (wall - ops) 10.000 ms"), std::string::npos) << t;
  // Without a wall time there is no gap line.
  EXPECT_EQ(a.table(5, 0, "t").find("wall"), std::string::npos);
}

TEST(Profile, OffRecordsNothing) {
  const bool was = profile::timing();
  profile::set_timing(false);
  profile::reset();
  Tensor a = Tensor::full({8}, 1.0), b = Tensor::full({8}, 2.0);
  ops::add(a, b);
  EXPECT_TRUE(profile::rows().empty());
  profile::set_timing(was);
}

// Timing switches NVTX ranges on with it; switching timing off switches them off again unless they were asked
// for by themselves (each op scope then still built an NVTX string: bench-models' later models were skewed).
TEST(Profile, TimingOffAlsoEndsTheNvtxRangesItImplied) {
  const bool was = profile::timing();
  const char* env = std::getenv("PNEUMO_NVTX");
  const bool nvtx_was = env && *env && std::strcmp(env, "0") != 0;
  profile::set_nvtx(false);
  profile::set_timing(true);
  EXPECT_TRUE(profile::active());
  profile::set_timing(false);
  EXPECT_FALSE(profile::active());
  profile::set_nvtx(true);
  profile::set_timing(true);
  profile::set_timing(false);
  EXPECT_TRUE(profile::active());  // asked for by itself: kept
  EXPECT_FALSE(profile::timing());
  profile::set_nvtx(false);
  EXPECT_FALSE(profile::active());
  profile::set_nvtx(nvtx_was);
  profile::set_timing(was);
}

TEST(Profile, CpuOpsAreFiledByOpShapeAndDirection) {
  TimingOn on;
  Tensor a = Tensor::uniform({64, 64}, -1, 1, 1), b = Tensor::uniform({64, 64}, -1, 1, 2);
  for (int i = 0; i < 3; ++i) ops::add(a, b);
  ops::matmul(a, b);
  // Autograd: mul forward, then its backward (node scope "mul" around the tensor op mul) under "bwd".
  ag::Variable x(a, true), y(b, true);
  ag::Variable loss = ag::sum(ag::mul(x, y));
  loss.backward();
  const auto rows = profile::rows();
  const Row* add = find_row(rows, "add", "[64, 64] float32", "fwd");
  ASSERT_NE(add, nullptr) << profile::table(50);
  EXPECT_EQ(add->calls, 3);
  EXPECT_GT(add->total_ms, 0.0);
  EXPECT_NE(find_row(rows, "matmul", "[64, 64] float32", "fwd"), nullptr) << profile::table(50);
  EXPECT_EQ(find_row(rows, "mul", "[64, 64] float32", "fwd")->calls, 1);
  const Row* mul_bwd = find_row(rows, "mul", "[64, 64] float32", "bwd");
  ASSERT_NE(mul_bwd, nullptr) << profile::table(50);
  EXPECT_EQ(mul_bwd->calls, 3);  // the node's scope and its two tensor-op muls (dx = dy*y, dy = dy*x)
  bool any_fwd_after = false;
  for (const Row& r : rows) any_fwd_after = any_fwd_after || (r.direction != "fwd" && r.direction != "bwd");
  EXPECT_FALSE(any_fwd_after) << "the backward loop restores the direction";
}

TEST(Profile, HostGapsShowAsWallMinusSum) {
  TimingOn on;
  Tensor a = Tensor::uniform({32, 32}, -1, 1, 1);
  ops::add(a, a);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // host time outside any op
  ops::add(a, a);
  const double wall = profile::wall_ms();
  double sum = 0;
  for (const Row& r : profile::rows()) sum += r.total_ms;
  EXPECT_GE(wall, 30.0);
  EXPECT_LT(sum, wall - 25.0) << "the sleep is in no op's time";
  const std::string t = profile::table(10, wall);
  EXPECT_NE(t.find("gap (wall - ops)"), std::string::npos) << t;
}

TEST(Profile, ScopeEndsOnAnException) {
  TimingOn on;
  Tensor a = Tensor::full({3}, 1.0), b = Tensor::full({4}, 1.0);
  EXPECT_THROW(ops::add(a, b), Error);
  ops::add(a, a);  // the failed op's scope closed: this one is a root again and is folded in
  const std::vector<Row> rows = profile::rows();  // rows() returns a copy: keep it alive for the pointer
  const Row* add = find_row(rows, "add", "[3] float32", "fwd");
  ASSERT_NE(add, nullptr) << profile::table(20);
  EXPECT_EQ(add->calls, 2);
}
