// CUDA kernels behind tensor/ops.h, same contract as kernels/cpu/tensor_kernels.h: raw pointers + sizes,
// dtype chosen at run time. Every launcher takes the stream last and checks its launch. Floating dtypes
// F32, BF16, F16 (float32 math and accumulation inside); no F64 on the device. Reductions are
// deterministic (fixed-order trees, no float atomics). Vectorised 16-byte access where pointers and sizes
// allow. Op codes and broadcast modes are the enums of kernels/op_codes.h (per-channel
// broadcast is over the last dimension of size `channels`).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/op_codes.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

void fill(DType dt, void* out, int64_t n, double value, cudaStream_t stream);
void increment(DType dt, void* out, int64_t n, cudaStream_t stream);  // I32/I64: += 1
void cast(DType src_dt, const void* src, DType dst_dt, void* dst, int64_t n, cudaStream_t stream);
void binary(DType dt, BinaryOp op, const void* a, Broadcast a_mode, const void* b, Broadcast b_mode, void* out,
            int64_t n, int64_t channels, cudaStream_t stream);
void affine(DType dt, const void* x, void* out, int64_t n, double alpha, double beta, cudaStream_t stream);
void axpy(DType dt, void* a, const void* b, int64_t n, double alpha, cudaStream_t stream);  // a += alpha * b
void unary(DType dt, UnaryOp op, const void* x, void* out, int64_t n, cudaStream_t stream);
void unary_backward(DType dt, UnaryOp op, const void* x, const void* y, const void* dy, void* dx, int64_t n, cudaStream_t stream);

void sum_all(DType dt, const void* x, int64_t n, void* out, cudaStream_t stream);
void sum_channels(DType dt, const void* x, int64_t rows, int64_t channels, void* out, cudaStream_t stream);
void sum_hw(DType dt, const void* x, int64_t batch, int64_t hw, int64_t channels, void* out, cudaStream_t stream);
void expand_channels(DType dt, const void* v, int64_t rows, int64_t channels, void* out, double scale, cudaStream_t stream);
void expand_hw(DType dt, const void* nc, int64_t batch, int64_t hw, int64_t channels, void* out, double scale, cudaStream_t stream);
void expand_scalar(DType dt, const void* s, int64_t n, void* out, double scale, cudaStream_t stream);

// Row-major C[M,N] = alpha * op(A) op(B) + beta * C. lda/ldb/ldc are row strides in elements.
// cuBLAS (cublasGemmEx), float32 compute without TF32 so it matches the CPU oracle; BF16/F16 in and out.
void gemm(DType dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc, cudaStream_t stream);

// Copies `rows` rows of `width` bytes between pitched buffers (concat/split along the last dimension).
void copy_rows(const void* src, int64_t src_pitch, void* dst, int64_t dst_pitch, int64_t width, int64_t rows, cudaStream_t stream);

void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi, cudaStream_t stream);
void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev, cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
