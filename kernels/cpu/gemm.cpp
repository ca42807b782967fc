// CPU GEMM: row-major C = alpha * op(A) op(B) + beta * C.
// F32: the classic Goto/BLIS blocking: B packed in KC x NR strips, A in MC x KC blocks of MR-row strips,
// and a register micro-kernel, chosen at run time so the default (generic x86-64) build runs anywhere:
// 14x32 in AVX-512 zmm registers where the CPU has AVX-512F and M > 6, else 6x16 with AVX2+FMA (or plain
// SSE2 vector code). The micro-kernel updates C itself for full tiles; edge tiles go through a small buffer.
// OpenMP splits the M blocks across threads. F64: a plain parallel triple loop (oracle use only).
// The kernel depends on the CPU and the shape only, never on the thread count (results are reproducible
// for any number of threads on one machine).
#include <immintrin.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <omp.h>

#include "kernels/check.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/profile.h"
#include "kernels/cpu/tensor_kernels.h"

namespace pneumo::kernels::cpu {
namespace {

constexpr int64_t kKC = 256, kNC = 2048;
constexpr int kMaxMR = 14, kMaxNR = 32;

typedef float v8f __attribute__((vector_size(32)));

// Per-thread packing buffer `which` (0: B, 1: A) of at least n floats, 64-byte aligned, grown on demand and
// kept for the thread's life (at most 32 MiB for B on the calling thread, 112 KiB for A per thread).
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

// A full MR x NR tile: acc = sum_k a[k*MR + i] * b[k*NR + j]; C = alpha * acc + beta * C (beta == 0: C is
// only written, so NaN/Inf already in C do not leak in).
using MicroFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta);

// 6x16 with GCC vector extensions, compiled for plain x86-64 and for AVX2+FMA.
#define PNEUMO_MICROKERNEL_6X16_BODY                                                       \
  v8f acc[6][2];                                                                           \
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = v8f{0, 0, 0, 0, 0, 0, 0, 0};        \
  for (int64_t k = 0; k < kc; ++k) {                                                       \
    v8f b0, b1;                                                                            \
    std::memcpy(&b0, b + k * 16, 32);                                                      \
    std::memcpy(&b1, b + k * 16 + 8, 32);                                                  \
    const float* ak = a + k * 6;                                                           \
    for (int i = 0; i < 6; ++i) {                                                          \
      v8f ai = v8f{ak[i], ak[i], ak[i], ak[i], ak[i], ak[i], ak[i], ak[i]};                \
      acc[i][0] += ai * b0;                                                                \
      acc[i][1] += ai * b1;                                                                \
    }                                                                                      \
  }                                                                                        \
  for (int i = 0; i < 6; ++i)                                                              \
    for (int h = 0; h < 2; ++h) {                                                          \
      float* cp = c + i * ldc + h * 8;                                                     \
      v8f r = acc[i][h] * alpha;                                                           \
      if (beta != 0.f) {                                                                   \
        v8f old;                                                                           \
        std::memcpy(&old, cp, 32);                                                         \
        r += old * beta;                                                                   \
      }                                                                                    \
      std::memcpy(cp, &r, 32);                                                             \
    }

__attribute__((target("avx2,fma"))) void micro_6x16_avx2(int64_t kc, const float* a, const float* b, float* c,
                                                          int64_t ldc, float alpha, float beta) {
  PNEUMO_MICROKERNEL_6X16_BODY
}
void micro_6x16_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  PNEUMO_MICROKERNEL_6X16_BODY
}

// 14x32: 28 zmm accumulators, two B vectors, A broadcast from memory (one register left over). A is either
// packed (element (i, k) at a[k*14 + i]) or, when op(A) is A itself, read in place (a[i*lda + k]): packing a
// non-transposed A is a strided transpose that costs as much as the FMAs when N is 64..128.
template <bool kDirectA>
__attribute__((target("avx512f"))) inline void micro_14x32_body(int64_t kc, const float* a, int64_t lda,
                                                                 const float* b, float* c, int64_t ldc, float alpha,
                                                                 float beta) {
  __m512 acc[14][2];
#pragma GCC unroll 14
  for (int i = 0; i < 14; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * 32), b1 = _mm512_load_ps(b + k * 32 + 16);
#pragma GCC unroll 14
    for (int i = 0; i < 14; ++i) {
      const __m512 ai = _mm512_set1_ps(kDirectA ? a[i * lda + k] : a[k * 14 + i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < 14; ++i)
    for (int h = 0; h < 2; ++h) {
      float* cp = c + i * ldc + h * 16;
      const __m512 r = _mm512_mul_ps(acc[i][h], va);
      _mm512_storeu_ps(cp, beta == 0.f ? r : _mm512_fmadd_ps(_mm512_loadu_ps(cp), vb, r));
    }
}
__attribute__((target("avx512f"))) void micro_14x32_avx512(int64_t kc, const float* a, const float* b, float* c,
                                                            int64_t ldc, float alpha, float beta) {
  micro_14x32_body<false>(kc, a, 0, b, c, ldc, alpha, beta);
}
__attribute__((target("avx512f"))) void micro_14x32_avx512_direct(int64_t kc, const float* a, int64_t lda,
                                                                   const float* b, float* c, int64_t ldc, float alpha,
                                                                   float beta) {
  micro_14x32_body<true>(kc, a, lda, b, c, ldc, alpha, beta);
}

// As MicroFn, with A read in place: element (i, k) at a[i*lda + k].
using MicroDirectFn = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                               float alpha, float beta);

struct Kernel {
  int mr, nr;
  int64_t mc;  // A block rows: a multiple of mr, the block (mc x KC floats) kept in L2
  MicroFn micro;
  MicroDirectFn micro_direct;  // or nullptr: A always packed
};
const Kernel kGeneric{6, 16, 72, micro_6x16_generic, nullptr};
const Kernel kAvx2{6, 16, 72, micro_6x16_avx2, nullptr};
const Kernel kAvx512{14, 32, 112, micro_14x32_avx512, micro_14x32_avx512_direct};

bool cpu_has(GemmKernel k) {
  __builtin_cpu_init();
  switch (k) {
    case GemmKernel::Generic: return true;
    case GemmKernel::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmKernel::Avx512: return __builtin_cpu_supports("avx512f");
    case GemmKernel::Auto: return true;
  }
  return false;
}

// Auto: the widest kernel the CPU has, except that M <= 6 (the weight gradient of a grouped convolution
// with 4 channels per group) takes the 6x16 tile: 14 rows would be mostly padding. Measured per CPU second
// on one core: 4x36x4096 TN 18 (6x16) vs 13 (14x32) GFLOP/s; 4096x4x36 NT 12 vs 20; 65536x16x288 NT 23 vs 33.
const Kernel& pick_kernel(GemmKernel want, int64_t M) {
  static const bool avx2 = cpu_has(GemmKernel::Avx2), avx512 = cpu_has(GemmKernel::Avx512);
  switch (want) {
    case GemmKernel::Generic: return kGeneric;
    case GemmKernel::Avx2: return kAvx2;
    case GemmKernel::Avx512: return kAvx512;
    case GemmKernel::Auto: break;
  }
  if (avx512 && M > 6) return kAvx512;
  return avx2 ? kAvx2 : kGeneric;
}

struct View {
  const float* p;
  int64_t ld;
  bool trans;
};

// Strips [s0, s1) of the B block (kc x nc) into strips of nr columns, zero-padded.
void pack_b(const View& B, int nr, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int64_t s0, int64_t s1,
            float* dst) {
  for (int64_t js = s0 * nr; js < std::min(nc, s1 * nr); js += nr) {
    const int64_t w = std::min<int64_t>(nr, nc - js);
    float* d = dst + (js / nr) * kc * nr;
    if (!B.trans) {  // rows of B are contiguous along j
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(d + k * nr, B.p + (k0 + k) * B.ld + j0 + js, w * sizeof(float));
        std::fill(d + k * nr + w, d + (k + 1) * nr, 0.f);
      }
    } else {  // B(k, j) = p[j * ld + k]: read each column of op(B) contiguously
      if (w < nr)
        for (int64_t k = 0; k < kc; ++k) std::fill(d + k * nr + w, d + (k + 1) * nr, 0.f);
      for (int64_t j = 0; j < w; ++j) {
        const float* src = B.p + (j0 + js + j) * B.ld + k0;
        for (int64_t k = 0; k < kc; ++k) d[k * nr + j] = src[k];
      }
    }
  }
}

// A block (mc x kc) into strips of mr rows, zero-padded.
void pack_a(const View& A, int mr, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t is = 0; is < mc; is += mr) {
    const int64_t h = std::min<int64_t>(mr, mc - is);
    float* d = dst + (is / mr) * kc * mr;
    if (A.trans) {  // A(i, k) = p[k * ld + i]: rows of the strip are contiguous in memory along i
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(d + k * mr, A.p + (k0 + k) * A.ld + i0 + is, h * sizeof(float));
        std::fill(d + k * mr + h, d + (k + 1) * mr, 0.f);
      }
    } else {
      if (h < mr)
        for (int64_t k = 0; k < kc; ++k) std::fill(d + k * mr + h, d + (k + 1) * mr, 0.f);
      for (int64_t i = 0; i < h; ++i) {
        const float* src = A.p + (i0 + is + i) * A.ld + k0;
        for (int64_t k = 0; k < kc; ++k) d[k * mr + i] = src[k];
      }
    }
  }
}

void gemm_f32(const Kernel& kern, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (K == 0 || alpha == 0.f) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  const int mr = kern.mr, nr = kern.nr;
  const int64_t kMC = kern.mc;
  View av{A, lda, ta}, bv{B, ldb, tb};
  // B is packed for a whole run of K blocks at once (up to 8 Mi floats), so the threads meet at two
  // barriers per run instead of two per K block: with OMP_WAIT_POLICY=passive a barrier is a futex
  // sleep and wake, and a 1x1 conv's weight gradient (K = every pixel of the batch) has 64..1024 K blocks.
  // Packing buffers are reused per thread, uninitialised (pack_* write what is read): a fresh zeroed
  // buffer per call dominated the small per-group GEMMs of grouped convolutions.
  const int64_t ncp = (std::min(kNC, N) + nr - 1) / nr * nr;
  const int64_t ksb = std::min((K + kKC - 1) / kKC * kKC, std::max(kKC, (int64_t{8} << 20) / ncp / kKC * kKC));
  float* bpack = pack_buffer(0, static_cast<size_t>(ksb * ncp));
  const int64_t threads = threads_here();
  // Work items are (M block, run of N strips). M blocks are balanced (M = 128 is two blocks of 70 rows,
  // not 112 + 16), and short-M problems split N as well so every thread has work. Every C tile is computed
  // the same way whatever the split: results do not depend on the thread count.
  const int64_t mblocks = (M + kMC - 1) / kMC, mc_bal = ((M + mblocks - 1) / mblocks + mr - 1) / mr * mr;
#pragma omp parallel if (threads > 1 && M * N * K >= (int64_t{1} << 15))
  {
    float* apack = pack_buffer(1, static_cast<size_t>(kMC * kKC));
    alignas(64) float tile[kMaxMR * kMaxNR];
    for (int64_t j0 = 0; j0 < N; j0 += kNC) {
      const int64_t nc = std::min(kNC, N - j0), nstrips = (nc + nr - 1) / nr;
      const int64_t chunks = std::min(nstrips, std::max<int64_t>(1, (2 * threads + mblocks - 1) / mblocks));
      const int64_t per_chunk = (nstrips + chunks - 1) / chunks;
      for (int64_t ks0 = 0; ks0 < K; ks0 += ksb) {
        const int64_t kend = std::min(K, ks0 + ksb), nkb = (kend - ks0 + kKC - 1) / kKC;
#pragma omp for schedule(static)
        for (int64_t q = 0; q < nkb * nstrips; ++q) {
          const int64_t kb = q / nstrips, st = q % nstrips, k0 = ks0 + kb * kKC;
          pack_b(bv, nr, k0, std::min(kKC, kend - k0), j0, nc, st, st + 1, bpack + kb * kKC * ncp);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < mblocks * chunks; ++item) {
          const int64_t mb = item / chunks, chunk = item % chunks;
          const int64_t i0 = mb * mc_bal, mc = std::min(mc_bal, M - i0);
          if (mc <= 0) continue;
          // In-place A: only a last partial strip is packed (zero-padded rows).
          const bool direct = kern.micro_direct != nullptr && !ta;
          const int64_t packed_from = direct ? mc / mr * mr : 0;
          const int64_t js_end = std::min(nc, (chunk + 1) * per_chunk * nr);
          for (int64_t kb = 0; kb < nkb; ++kb) {
            const int64_t k0 = ks0 + kb * kKC, kc = std::min(kKC, kend - k0);
            const float beta_k = k0 == 0 ? beta : 1.f;  // later K blocks accumulate
            if (packed_from < mc) pack_a(av, mr, i0 + packed_from, mc - packed_from, k0, kc, apack);
            for (int64_t js = chunk * per_chunk * nr; js < js_end; js += nr) {
              const int64_t w = std::min<int64_t>(nr, nc - js);
              const float* bp = bpack + kb * kKC * ncp + (js / nr) * kc * nr;
              for (int64_t is = 0; is < mc; is += mr) {
                const int64_t h = std::min<int64_t>(mr, mc - is);
                float* c0 = C + (i0 + is) * ldc + j0 + js;
                if (is < packed_from) {
                  const float* ad = A + (i0 + is) * lda + k0;
                  if (w == nr)
                    kern.micro_direct(kc, ad, lda, bp, c0, ldc, alpha, beta_k);
                  else
                    kern.micro_direct(kc, ad, lda, bp, tile, nr, 1.f, 0.f);
                } else {
                  const float* ap = apack + ((is - packed_from) / mr) * kc * mr;
                  if (h == mr && w == nr)
                    kern.micro(kc, ap, bp, c0, ldc, alpha, beta_k);
                  else
                    kern.micro(kc, ap, bp, tile, nr, 1.f, 0.f);
                }
                if (h == mr && w == nr) continue;
                for (int64_t i = 0; i < h; ++i) {
                  float* crow = c0 + i * ldc;
                  const float* trow = tile + i * nr;
                  if (beta_k == 0.f)
                    for (int64_t j = 0; j < w; ++j) crow[j] = alpha * trow[j];
                  else
                    for (int64_t j = 0; j < w; ++j) crow[j] = alpha * trow[j] + beta_k * crow[j];
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
  const char* label = "gemm";
  char shape[96];
  if (profile_shapes()) {
    std::snprintf(shape, sizeof(shape), "gemm %lldx%lldx%lld %c%c", static_cast<long long>(M), static_cast<long long>(N),
                  static_cast<long long>(K), trans_a ? 'T' : 'N', trans_b ? 'T' : 'N');
    label = profile_label(shape);
  }
  PNEUMO_CPU_SCOPE(label);
  if (dt == DType::F32)
    return gemm_f32(pick_kernel(GemmKernel::Auto, M), trans_a, trans_b, M, N, K, static_cast<float>(alpha), static_cast<const float*>(A), lda,
                    static_cast<const float*>(B), ldb, static_cast<float>(beta), static_cast<float*>(C), ldc);
  if (dt == DType::F64)
    return gemm_f64(trans_a, trans_b, M, N, K, alpha, static_cast<const double*>(A), lda, static_cast<const double*>(B),
                    ldb, beta, static_cast<double*>(C), ldc);
  PNEUMO_FAIL("CPU gemm supports F32 and F64, not ", dtype_name(dt));
}

bool gemm_kernel_supported(GemmKernel kernel) { return cpu_has(kernel); }

void gemm_f32_with(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  PNEUMO_CHECK(cpu_has(kernel), "gemm: this CPU cannot run the requested micro-kernel");
  gemm_f32(pick_kernel(kernel, M), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace pneumo::kernels::cpu
