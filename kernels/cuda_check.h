// CUDA, cuDNN and cuBLAS variants of PNEUMO_CHECK. Include only from CUDA-enabled translation units.
// PNEUMO_LAUNCH_CHECK(name) goes after every kernel launch: it reads the launch error and, with
// PNEUMO_SYNC_DEBUG=1, synchronises so that an asynchronous fault is reported against this launch.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/check.h"

#define PNEUMO_CUDA_CHECK(expr)                                                                        \
  do {                                                                                                 \
    cudaError_t _e = (expr);                                                                           \
    if (_e != cudaSuccess)                                                                             \
      ::pneumo::detail::throw_error("CUDA", #expr, __FILE__, __LINE__,                                \
                                    std::string("CUDA error: ") + cudaGetErrorString(_e));             \
  } while (0)

#define PNEUMO_LAUNCH_CHECK(name)                                                                      \
  do {                                                                                                 \
    cudaError_t _e = cudaGetLastError();                                                               \
    if (_e == cudaSuccess && ::pneumo::sync_debug_enabled()) _e = cudaDeviceSynchronize();             \
    if (_e != cudaSuccess)                                                                             \
      ::pneumo::detail::throw_error("CUDA launch", name, __FILE__, __LINE__,                          \
                                    std::string("kernel ") + (name) + " failed: " + cudaGetErrorString(_e)); \
  } while (0)

#define PNEUMO_CUBLAS_CHECK(expr)                                                                      \
  do {                                                                                                 \
    int _s = static_cast<int>(expr);                                                                   \
    if (_s != 0)                                                                                       \
      ::pneumo::detail::throw_error("cuBLAS", #expr, __FILE__, __LINE__,                              \
                                    "cuBLAS status " + std::to_string(_s));                            \
  } while (0)

// cudnnGetErrorString needs cudnn.h; callers of this macro include it.
#define PNEUMO_CUDNN_CHECK(expr)                                                                       \
  do {                                                                                                 \
    cudnnStatus_t _s = (expr);                                                                         \
    if (_s != CUDNN_STATUS_SUCCESS)                                                                    \
      ::pneumo::detail::throw_error("cuDNN", #expr, __FILE__, __LINE__,                               \
                                    std::string("cuDNN error: ") + cudnnGetErrorString(_s));           \
  } while (0)
