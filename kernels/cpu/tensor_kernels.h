// CPU reference kernels behind tensor/ops.h: raw pointers + sizes, dtype chosen at run time.
// Simple enough to be obviously right; OpenMP-parallel where it matters. Floating math in F32/F64
// (F32 sums accumulate in double). Op codes and broadcast modes are the enums of kernels/op_codes.h (per-channel broadcast is over
// the last dimension of size `channels`).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/op_codes.h"

namespace pneumo::kernels::cpu {

void fill(DType dt, void* out, int64_t n, double value);
void increment(DType dt, void* out, int64_t n);  // I32/I64: += 1
void cast(DType src_dt, const void* src, DType dst_dt, void* dst, int64_t n);
void binary(DType dt, BinaryOp op, const void* a, Broadcast a_mode, const void* b, Broadcast b_mode, void* out,
            int64_t n, int64_t channels);
void affine(DType dt, const void* x, void* out, int64_t n, double alpha, double beta);
void axpy(DType dt, void* a, const void* b, int64_t n, double alpha);  // a += alpha * b
void unary(DType dt, UnaryOp op, const void* x, void* out, int64_t n);
void unary_backward(DType dt, UnaryOp op, const void* x, const void* y, const void* dy, void* dx, int64_t n);

void sum_all(DType dt, const void* x, int64_t n, void* out);
void sum_channels(DType dt, const void* x, int64_t rows, int64_t channels, void* out);
void sum_hw(DType dt, const void* x, int64_t batch, int64_t hw, int64_t channels, void* out);
void expand_channels(DType dt, const void* v, int64_t rows, int64_t channels, void* out, double scale);
void expand_hw(DType dt, const void* nc, int64_t batch, int64_t hw, int64_t channels, void* out, double scale);
void expand_scalar(DType dt, const void* s, int64_t n, void* out, double scale);

// Row-major C[M,N] = alpha * op(A) op(B) + beta * C. lda/ldb/ldc are row strides in elements.
// F32 uses the cache-blocked, OpenMP-parallel GEMM; F64 a simple parallel loop (oracle use only).
void gemm(DType dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc);

// The F32 GEMM's register micro-kernels, for tests and benchmarks: gemm() takes Auto (the widest the CPU
// runs; 6x16 when M <= 6). gemm_f32_with forces one and fails if the CPU lacks its instructions.
enum class GemmKernel { Auto, Generic, Avx2, Avx512 };
bool gemm_kernel_supported(GemmKernel kernel);
void gemm_f32_with(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Copies `rows` rows of `width` bytes between pitched buffers (concat/split along the last dimension).
void copy_rows(const void* src, int64_t src_pitch, void* dst, int64_t dst_pitch, int64_t width, int64_t rows);

void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev);

}  // namespace pneumo::kernels::cpu
