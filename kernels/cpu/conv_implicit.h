// Implicit-GEMM F32 convolutions for stride-1 ungrouped k x k convolutions (the UNet decoder's 3x3 convs,
// DeepLab's dilated 3x3) with AVX-512: no im2col columns and no col2im. The input is copied once into a
// zero-padded buffer whose rows are `w + pad_left + pad_right` pixels wide; in it, the output pixel at
// wide position i = oh * Wp + ow reads tap (r, s) at i + r*dilation_h*Wp + s*dilation_w, so each tap is a
// plain GEMM over consecutive rows of the buffer (positions with ow >= OW compute junk that is not stored).
// Backward data is the same forward pass over the padded output gradient with flipped, transposed weights;
// backward weight reads the padded input in place as the GEMM's B. Every output element is computed by one
// thread in a fixed order, so results do not depend on the thread count.
// Internal to kernels/cpu (conv_kernels.cpp dispatches); exposed for the tests.
#pragma once
#include "kernels/layer_shapes.h"

namespace pneumo::kernels::cpu {

// True when this CPU has AVX-512F and the shape fits: groups == 1, stride 1, not 1x1 unpadded, at least
// 8 input and 8 output channels, and each padding at most (taps - 1) * dilation (so that backward data is
// itself such a convolution). PNEUMO_CONV_IMPLICIT=0 turns the path off (the im2col path then runs).
bool implicit_conv_applies(const ConvShape& cs);
void implicit_conv_forward(const ConvShape& cs, const float* x, const float* w, float* y);
void implicit_conv_backward_data(const ConvShape& cs, const float* dy, const float* w, float* dx);
void implicit_conv_backward_weight(const ConvShape& cs, const float* dy, const float* x, float* dw);

}  // namespace pneumo::kernels::cpu
