// CPU GEMM: row-major C = alpha * op(A) op(B) + beta * C.
// F32: the classic Goto/BLIS blocking: B packed in KC x NR strips, A in MC x KC blocks of MR-row strips,
// a 6x16 register micro-kernel written with GCC vector extensions, compiled twice (generic x86-64 and
// AVX2+FMA) and chosen at run time, so the default build runs anywhere yet uses FMA where present.
// OpenMP splits the M blocks across threads. F64: a plain parallel triple loop (oracle use only).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <omp.h>

#include "kernels/check.h"
#include "kernels/cpu/tensor_kernels.h"

namespace pneumo::kernels::cpu {
namespace {

constexpr int kMR = 6, kNR = 16;
constexpr int64_t kKC = 256, kMC = 72, kNC = 2048;

typedef float v8f __attribute__((vector_size(32)));

// Per-thread packing buffer `which` (0: B, 1: A) of at least n floats, 64-byte aligned, grown on demand and
// kept for the thread's life (at most 2 MiB + 72 KiB per thread).
float* pack_buffer(int which, size_t n) {
  struct Buf {
    float* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[which];
  if (b.n < n) {
    std::free(b.p);
    b.p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
    PNEUMO_CHECK(b.p != nullptr, "gemm: out of memory for a ", n * sizeof(float), "-byte packing buffer");
    b.n = n;
  }
  return b.p;
}

// acc[MR][NR] = sum_k a[k*MR + i] * b[k*NR + j]; then C = alpha*acc + beta*C (beta applied by caller's flag).
#define PNEUMO_MICROKERNEL_BODY                                                              \
  v8f acc[kMR][2];                                                                           \
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = v8f{0, 0, 0, 0, 0, 0, 0, 0};        \
  for (int64_t k = 0; k < kc; ++k) {                                                         \
    v8f b0, b1;                                                                              \
    std::memcpy(&b0, b + k * kNR, 32);                                                       \
    std::memcpy(&b1, b + k * kNR + 8, 32);                                                   \
    const float* ak = a + k * kMR;                                                           \
    for (int i = 0; i < kMR; ++i) {                                                          \
      v8f ai = v8f{ak[i], ak[i], ak[i], ak[i], ak[i], ak[i], ak[i], ak[i]};                  \
      acc[i][0] += ai * b0;                                                                  \
      acc[i][1] += ai * b1;                                                                  \
    }                                                                                        \
  }                                                                                          \
  std::memcpy(out, acc, sizeof(acc));

__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const float* a, const float* b, float* out) {
  PNEUMO_MICROKERNEL_BODY
}
void micro_generic(int64_t kc, const float* a, const float* b, float* out) { PNEUMO_MICROKERNEL_BODY }

using MicroFn = void (*)(int64_t, const float*, const float*, float*);
MicroFn pick_micro() {
  __builtin_cpu_init();
  return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? micro_avx2 : micro_generic;
}

struct View {
  const float* p;
  int64_t ld;
  bool trans;
  float at(int64_t r, int64_t c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

// Strips [s0, s1) of the B block (kc x nc) into strips of kNR columns, zero-padded.
void pack_b(const View& B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int64_t s0, int64_t s1, float* dst) {
  for (int64_t js = s0 * kNR; js < std::min(nc, s1 * kNR); js += kNR) {
    int64_t w = std::min<int64_t>(kNR, nc - js);
    for (int64_t k = 0; k < kc; ++k) {
      float* d = dst + (js / kNR) * kc * kNR + k * kNR;
      if (!B.trans && w == kNR) {
        std::memcpy(d, B.p + (k0 + k) * B.ld + j0 + js, kNR * sizeof(float));
      } else {
        for (int64_t j = 0; j < w; ++j) d[j] = B.at(k0 + k, j0 + js + j);
        for (int64_t j = w; j < kNR; ++j) d[j] = 0.f;
      }
    }
  }
}

// A block (mc x kc) into strips of kMR rows, zero-padded.
void pack_a(const View& A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t is = 0; is < mc; is += kMR) {
    int64_t h = std::min<int64_t>(kMR, mc - is);
    float* d = dst + (is / kMR) * kc * kMR;
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < h; ++i) d[k * kMR + i] = A.at(i0 + is + i, k0 + k);
      for (int64_t i = h; i < kMR; ++i) d[k * kMR + i] = 0.f;
    }
  }
}

void gemm_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  static const MicroFn micro = pick_micro();
  if (K == 0 || alpha == 0.f) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  View av{A, lda, ta}, bv{B, ldb, tb};
  // Packing buffers sized to this problem and reused per thread, uninitialised (pack_* write what is read):
  // a fresh zeroed 2 MiB per call dominated the small per-group GEMMs of grouped convolutions.
  float* bpack = pack_buffer(0, static_cast<size_t>(std::min(kKC, K) * ((std::min(kNC, N) + kNR - 1) / kNR) * kNR));
  const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // One parallel region for the whole product (not one per K block): threads pack B together, then share
  // the (M block, run of N strips) work items. Short-M problems (the weight gradient of a conv with few
  // output channels: one M block) split N as well so every thread has work. Every C tile is computed the
  // same way whatever the split: results do not depend on the thread count.
#pragma omp parallel if (threads > 1 && M * N * K >= (int64_t{1} << 15))
  {
    float* apack = pack_buffer(1, static_cast<size_t>(kMC * kKC));
    alignas(64) float tile[kMR * kNR];
    for (int64_t j0 = 0; j0 < N; j0 += kNC) {
      const int64_t nc = std::min(kNC, N - j0);
      const int64_t mblocks = (M + kMC - 1) / kMC, nstrips = (nc + kNR - 1) / kNR;
      const int64_t chunks = mblocks >= threads ? 1 : std::min(nstrips, (2 * threads + mblocks - 1) / mblocks);
      const int64_t per_chunk = (nstrips + chunks - 1) / chunks;
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        const bool first = k0 == 0;
#pragma omp for schedule(static)
        for (int64_t st = 0; st < nstrips; ++st) pack_b(bv, k0, kc, j0, nc, st, st + 1, bpack);
#pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < mblocks * chunks; ++item) {
          const int64_t mb = item / chunks, chunk = item % chunks;
          int64_t i0 = mb * kMC, mc = std::min(kMC, M - i0);
          pack_a(av, i0, mc, k0, kc, apack);
          const int64_t js_end = std::min(nc, (chunk + 1) * per_chunk * kNR);
          for (int64_t js = chunk * per_chunk * kNR; js < js_end; js += kNR) {
            int64_t w = std::min<int64_t>(kNR, nc - js);
            const float* bp = bpack + (js / kNR) * kc * kNR;
            for (int64_t is = 0; is < mc; is += kMR) {
              int64_t h = std::min<int64_t>(kMR, mc - is);
              micro(kc, apack + (is / kMR) * kc * kMR, bp, tile);
              for (int64_t i = 0; i < h; ++i) {
                float* crow = C + (i0 + is + i) * ldc + j0 + js;
                const float* trow = tile + i * kNR;
                if (first) {
                  if (beta == 0.f)
                    for (int64_t j = 0; j < w; ++j) crow[j] = alpha * trow[j];
                  else
                    for (int64_t j = 0; j < w; ++j) crow[j] = alpha * trow[j] + beta * crow[j];
                } else {
                  for (int64_t j = 0; j < w; ++j) crow[j] += alpha * trow[j];
                }
              }
            }
          }
        }
      }
    }
  }
}

void gemm_f64(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
              const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
#pragma omp parallel for schedule(static) if (M * N * K > 1000000)
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * acc + (beta == 0 ? 0.0 : beta * C[i * ldc + j]);
    }
}

}  // namespace

void gemm(DType dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc) {
  if (dt == DType::F32)
    return gemm_f32(trans_a, trans_b, M, N, K, static_cast<float>(alpha), static_cast<const float*>(A), lda,
                    static_cast<const float*>(B), ldb, static_cast<float>(beta), static_cast<float*>(C), ldc);
  if (dt == DType::F64)
    return gemm_f64(trans_a, trans_b, M, N, K, alpha, static_cast<const double*>(A), lda, static_cast<const double*>(B),
                    ldb, beta, static_cast<double*>(C), ldc);
  PNEUMO_FAIL("CPU gemm supports F32 and F64, not ", dtype_name(dt));
}

}  // namespace pneumo::kernels::cpu
