// Every F32 GEMM micro-kernel this CPU runs (kernels/cpu/gemm.cpp: generic 6x16, AVX2 6x16, AVX-512 14x32)
// against a float64 reference on odd shapes: edge tiles in M and N, K across the KC block, all transposes,
// pitched operands, alpha/beta, beta == 0 ignoring NaN already in C, and C's padding columns left untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/tensor_kernels.h"

namespace pneumo::kernels::cpu {
namespace {

struct Case {
  int64_t m, n, k;
};

void check_kernel(GemmKernel kernel, const char* name) {
  if (!gemm_kernel_supported(kernel)) GTEST_SKIP() << name << " not supported by this CPU";
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const Case cases[] = {{1, 1, 1},    {13, 17, 5},   {14, 32, 256}, {15, 33, 257}, {29, 31, 300},
                        {113, 65, 9}, {6, 16, 513},  {200, 48, 64}, {7, 5, 3},     {28, 64, 1}};
  for (const Case& cs : cases)
    for (int t = 0; t < 4; ++t)
      for (int ab = 0; ab < 3; ++ab) {
        const bool ta = t & 1, tb = t & 2;
        const float alpha = ab == 0 ? 1.f : (ab == 1 ? -0.75f : 2.5f), beta = ab == 0 ? 0.f : (ab == 1 ? 1.f : -0.5f);
        // Leading dimensions larger than the rows need (pitched views into bigger buffers).
        const int64_t lda = (ta ? cs.m : cs.k) + 3, ldb = (tb ? cs.k : cs.n) + 5, ldc = cs.n + 7;
        std::vector<float> a((ta ? cs.k : cs.m) * lda), b((tb ? cs.n : cs.k) * ldb), c(cs.m * ldc);
        for (auto& v : a) v = u(rng);
        for (auto& v : b) v = u(rng);
        for (auto& v : c) v = ab == 0 ? std::numeric_limits<float>::quiet_NaN() : u(rng);
        const std::vector<float> c0 = c;
        gemm_f32_with(kernel, ta, tb, cs.m, cs.n, cs.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
        for (int64_t i = 0; i < cs.m; ++i) {
          for (int64_t j = 0; j < cs.n; ++j) {
            double acc = 0, mag = 0;
            for (int64_t q = 0; q < cs.k; ++q) {
              const double x = ta ? a[q * lda + i] : a[i * lda + q], y = tb ? b[j * ldb + q] : b[q * ldb + j];
              acc += x * y;
              mag += std::fabs(x * y);
            }
            const double want = alpha * acc + (beta == 0.f ? 0.0 : beta * static_cast<double>(c0[i * ldc + j]));
            const double bound = 1e-6 * (std::fabs(alpha) * mag + std::fabs(beta) + 1.0) * std::sqrt(cs.k + 1.0);
            ASSERT_NEAR(c[i * ldc + j], want, bound)
                << name << " " << cs.m << "x" << cs.n << "x" << cs.k << " ta " << ta << " tb " << tb << " at " << i
                << "," << j;
          }
          for (int64_t j = cs.n; j < ldc; ++j)  // padding: untouched (NaN stays NaN, bit for bit)
            ASSERT_EQ(std::memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)), 0) << name << " padding";
        }
      }
}

TEST(GemmKernels, GenericMatchesFloat64) { check_kernel(GemmKernel::Generic, "generic 6x16"); }
TEST(GemmKernels, Avx2MatchesFloat64) { check_kernel(GemmKernel::Avx2, "avx2 6x16"); }
TEST(GemmKernels, Avx512MatchesFloat64) { check_kernel(GemmKernel::Avx512, "avx512 14x32"); }

// The automatic choice agrees with a forced kernel bit for bit (it is one of them), and large K/M cross
// the KC and MC blocks on both sides of the M <= 6 switch.
TEST(GemmKernels, AutoIsOneOfTheKernels) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t m : {5, 300}) {
    const int64_t n = 40, k = 600;
    std::vector<float> a(m * k), b(k * n), c(m * n), d(m * n);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    gemm(DType::F32, false, false, m, n, k, 1.0, a.data(), k, b.data(), n, 0.0, c.data(), n);
    bool same = false;
    for (GemmKernel kern : {GemmKernel::Generic, GemmKernel::Avx2, GemmKernel::Avx512}) {
      if (!gemm_kernel_supported(kern)) continue;
      gemm_f32_with(kern, false, false, m, n, k, 1.f, a.data(), k, b.data(), n, 0.f, d.data(), n);
      same = same || c == d;
    }
    EXPECT_TRUE(same) << "m " << m;
  }
}

}  // namespace
}  // namespace pneumo::kernels::cpu
