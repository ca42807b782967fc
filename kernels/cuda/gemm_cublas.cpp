// Row-major GEMM on CUDA through cuBLAS (contract: kernels/cuda/tensor_kernels.h): one handle per device,
// float32 compute without TF32 so float32 results match the CPU oracle, unless kernels::allow_tf32()
// (PNEUMO_TF32=1) asks for TF32 on float32 operands. Host code only; compiled only in
// CUDA builds.
#if PNEUMO_WITH_CUDA
#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <map>
#include <mutex>

#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/tensor_kernels.h"
#include "kernels/math_mode.h"

namespace pneumo::kernels::cuda {
namespace {

// cuBLAS handle per device, created on first use; the mutex also serialises setStream + the call.
struct BlasHandle {
  cublasHandle_t handle = nullptr;
  std::mutex mutex;
};
BlasHandle& blas_handle(int device) {
  static std::mutex mutex;
  static auto* handles = new std::map<int, BlasHandle*>();  // never destroyed: the driver may be gone at exit
  std::lock_guard<std::mutex> lock(mutex);
  BlasHandle*& h = (*handles)[device];
  if (!h) {
    int previous = 0;
    PNEUMO_CUDA_CHECK(cudaGetDevice(&previous));
    PNEUMO_CUDA_CHECK(cudaSetDevice(device));
    auto* created = new BlasHandle();
    cublasStatus_t status = cublasCreate(&created->handle);
    if (status == CUBLAS_STATUS_SUCCESS) status = cublasSetMathMode(created->handle, CUBLAS_DEFAULT_MATH);
    PNEUMO_CUDA_CHECK(cudaSetDevice(previous));
    if (status != CUBLAS_STATUS_SUCCESS) {
      delete created;
      PNEUMO_CUBLAS_CHECK(status);
    }
    h = created;
  }
  return *h;
}

}  // namespace

void gemm(DType dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc, cudaStream_t stream) {
  PNEUMO_CHECK(M >= 0 && N >= 0 && K >= 0 && M <= INT_MAX && N <= INT_MAX && K <= INT_MAX,
               "kernels::cuda::gemm: sizes M ", M, " N ", N, " K ", K, " out of range");
  // Row strides: a row-major [rows, cols] matrix needs ld >= cols.
  PNEUMO_CHECK(lda >= std::max<int64_t>(1, trans_a ? M : K) && ldb >= std::max<int64_t>(1, trans_b ? K : N) &&
                   ldc >= std::max<int64_t>(1, N) && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX,
               "kernels::cuda::gemm: bad leading dimensions lda ", lda, " ldb ", ldb, " ldc ", ldc, " for M ", M,
               " N ", N, " K ", K, (trans_a ? " (A transposed)" : ""), (trans_b ? " (B transposed)" : ""));
  cudaDataType_t type = CUDA_R_32F;
  switch (dt) {
    case DType::F32: type = CUDA_R_32F; break;
    case DType::BF16: type = CUDA_R_16BF; break;
    case DType::F16: type = CUDA_R_16F; break;
    default: PNEUMO_FAIL("kernels::cuda::gemm: dtype ", dtype_name(dt), " not supported; ", float_dtypes_message());
  }
  if (M == 0 || N == 0) return;
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  BlasHandle& h = blas_handle(stream_device(stream));
  std::lock_guard<std::mutex> lock(h.mutex);
  PNEUMO_CUBLAS_CHECK(cublasSetStream(h.handle, stream));
  const cublasComputeType_t compute =
      dt == DType::F32 && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
  PNEUMO_CUBLAS_CHECK(cublasGemmEx(h.handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha_f, B, type,
                                   static_cast<int>(ldb), A, type, static_cast<int>(lda), &beta_f, C, type,
                                   static_cast<int>(ldc), compute, CUBLAS_GEMM_DEFAULT));
  PNEUMO_LAUNCH_CHECK("cublasGemmEx");
}

}  // namespace pneumo::kernels::cuda
#endif  // PNEUMO_WITH_CUDA
