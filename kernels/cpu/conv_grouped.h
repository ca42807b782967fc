// Direct F32 grouped convolution for groups with as many outputs as inputs (ResNeXt: 32 groups of 4..32
// channels), forward, backward data and backward weight, with AVX-512: all groups of a pixel at once, 16 channels per zmm
// register, each group's inputs spread across its lanes by a permute (groups < 16 channels) or a broadcast.
// The im2col + per-group GEMM path does 4- or 8-column GEMMs there, which waste most of a vector tile.
// Internal to kernels/cpu (conv_kernels.cpp dispatches); exposed for the tests.
#pragma once
#include "kernels/layer_shapes.h"

namespace pneumo::kernels::cpu {

// True when this CPU has AVX-512F and the shape fits: groups > 1, k == c, channels per group 2, 4, 8 or a
// multiple of 16, and c a multiple of 128.
bool grouped_direct_applies(const ConvShape& cs);
// Same results as conv2d_forward / conv2d_backward_data (F32) up to rounding; each output is summed over
// taps then channels in a fixed order by one thread (independent of the thread count).
void grouped_direct_forward(const ConvShape& cs, const float* x, const float* w, float* y);
void grouped_direct_backward_data(const ConvShape& cs, const float* dy, const float* w, float* dx);
// Weight gradient: threads own 64-channel slices of dw, each summing all pixels in order (in float, as the
// GEMM path does over its K dimension).
void grouped_direct_backward_weight(const ConvShape& cs, const float* dy, const float* x, float* dw);

}  // namespace pneumo::kernels::cpu
