// Convolution on CUDA through cuDNN's legacy convolution API with NHWC tensor descriptors and KRSC
// (CUDNN_TENSOR_NHWC filter) weights, activation dtype F32 or BF16, float32 accumulation.
// Math mode: BF16 uses CUDNN_TENSOR_OP_MATH (tensor cores); F32 uses CUDNN_FMA_MATH so that no TF32 kernel
// is chosen and float32 results match the CPU oracle to ~1e-5 (CUDNN_DEFAULT_MATH permits TF32 on Ampere+).
// Algorithms are chosen once per (shape, dtype, direction, device) by cudnnFind*AlgorithmEx (fastest
// deterministic algorithm whose workspace fits; a non-deterministic one, with a note on stderr, only when
// cuDNN offers no deterministic one for the shape), cached in a map; workspace comes from the caller's
// allocator (the caching allocator), never cudaMalloc. Padding must be symmetric here (the tensor layer pads
// explicitly for TF "same").
// Engine switch (kernels/cuda/conv_graph_policy.h conv_engine): PNEUMO_CONV_ENGINE=graph sends each call first
// to cuDNN's backend (graph) API (kernels/cuda/conv_graph.h); a shape whose graph plan cannot be built runs
// here, on this legacy path, said once per shape on stderr. The default is legacy.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/layer_shapes.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

struct WorkspaceAllocator {
  void* (*allocate)(size_t bytes, int device) = nullptr;
  void (*release)(void* p, int device) = nullptr;
};

void conv2d_forward_cudnn(DType dt, const ConvShape& cs, const void* x, const void* w, void* y, int device,
                          cudaStream_t stream, const WorkspaceAllocator& workspace);
// accumulate: dx += the data gradient in the same pass (cuDNN beta = 1), else dx is overwritten.
void conv2d_backward_data_cudnn(DType dt, const ConvShape& cs, const void* dy, const void* w, void* dx, int device,
                                cudaStream_t stream, const WorkspaceAllocator& workspace, bool accumulate = false);
void conv2d_backward_weight_cudnn(DType dt, const ConvShape& cs, const void* dy, const void* x, void* dw, int device,
                                  cudaStream_t stream, const WorkspaceAllocator& workspace);

// Number of cached algorithm choices (for tests and `pneumo info`).
size_t conv_algorithm_cache_size();

}  // namespace pneumo::kernels::cuda
