// Test support shared by every suite.
//  - PNEUMO_REQUIRE_CUDA() / PNEUMO_REQUIRE_DATA(): without a device / ../shared/data a test is SKIPPED (not
//    passed), or FAILS when PNEUMO_REQUIRE_GPU=1 / PNEUMO_REQUIRE_DATA=1 (tests/support/skip_policy_test.cpp).
//  - compare_gpu_cpu: the generic GPU-vs-CPU checker. `fn` is run once on CPU float32 inputs and once on the
//    same inputs moved to CUDA (optionally cast to `gpu_dtype`), with poisoned allocations so an unwritten
//    output element is NaN and fails; outputs and (if `backward`) input gradients must agree within the
//    dtype's tolerance. Fresh random inputs come from `fresh_seed()`, which differs per call and per run
//    unless PNEUMO_TEST_SEED is set (printed on failure so a failure can be replayed).
//  - expect_close / expect_gradcheck: assertions with readable messages.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/variable.h"
#include "tensor/cuda_runtime.h"
#include "tensor/tensor.h"

namespace pneumo::test {

// The skip policy, in one place: a test whose prerequisite is missing SKIPS, unless the environment demands
// the prerequisite, and then it FAILS with the same reason. PNEUMO_REQUIRE_GPU=1 (set by tools/gpu-check.sh)
// for GPU tests, PNEUMO_REQUIRE_DATA=1 for tests that need ../shared/data. Both macros return from the test.
bool env_flag(const char* name);  // the variable is set to something other than "" or "0"
#define PNEUMO_SKIP_OR_FAIL(env_name, reason)                                                   \
  do {                                                                                          \
    const std::string _pneumo_why = (reason);                                                   \
    if (::pneumo::test::env_flag(env_name)) FAIL() << (env_name) << "=1 but " << _pneumo_why;   \
    GTEST_SKIP() << _pneumo_why;                                                                \
  } while (0)

// GPU tests call PNEUMO_REQUIRE_CUDA() first. The reason names what cuda::device_status() found: no device,
// a build without CUDA, or a CUDA error (no driver, driver too old), which are not the same thing.
#define PNEUMO_REQUIRE_CUDA()                                                                   \
  do {                                                                                          \
    if (!::pneumo::cuda::available())                                                           \
      PNEUMO_SKIP_OR_FAIL("PNEUMO_REQUIRE_GPU", "GPU test skipped: " + ::pneumo::cuda::device_status()); \
  } while (0)

uint64_t fresh_seed();

struct Tolerance {
  double atol, rtol;
};
Tolerance tolerance_for(DType dt);  // F32: 1e-5 rel; BF16: 1e-2 rel; F16: 2e-3 rel

// Elementwise |a - b| <= atol + rtol * |b| (b the reference); NaN anywhere fails. Returns "" or a message
// naming the first bad element and the counts.
std::string close_message(const Tensor& actual, const Tensor& reference, Tolerance tol);
#define PNEUMO_EXPECT_CLOSE(actual, reference, tol)                                 \
  do {                                                                              \
    std::string _m = ::pneumo::test::close_message((actual), (reference), (tol));   \
    EXPECT_TRUE(_m.empty()) << _m;                                                  \
  } while (0)

struct GpuCheckOptions {
  DType gpu_dtype = DType::F32;
  bool backward = true;            // also compare input gradients (seeded by a random projection)
  Tolerance tol{-1, -1};           // default: tolerance_for(gpu_dtype)
  Tolerance grad_tol{-1, -1};      // default: tol
};
using VarFn = std::function<ag::Variable(const std::vector<ag::Variable>&)>;
// inputs: float32 CPU tensors (the checker marks floating ones requires_grad).
void compare_gpu_cpu(const VarFn& fn, const std::vector<Tensor>& inputs, const GpuCheckOptions& options = {});

void expect_gradcheck(const VarFn& fn, const std::vector<Tensor>& inputs_f64, const ag::GradcheckOptions& options = {});

// Path under ../shared/data, or "" (and the caller skips, or fails under PNEUMO_REQUIRE_DATA=1) when absent.
std::string shared_data(const std::string& relative);
#define PNEUMO_REQUIRE_DATA(path_var, relative)                                                    \
  std::string path_var = ::pneumo::test::shared_data(relative);                                  \
  if (path_var.empty())                                                                          \
  PNEUMO_SKIP_OR_FAIL("PNEUMO_REQUIRE_DATA",                                                     \
                      std::string("shared data not present (") + (relative) + "): skipped")

}  // namespace pneumo::test
