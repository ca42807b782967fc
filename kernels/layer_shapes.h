// Shapes shared by the CPU and CUDA layer kernels (convolution, resize tables), plain structs on sizes.
// Convention: tensors are NHWC, conv weights KRSC [k, r, s, c/groups]; padding may be asymmetric
// (pad_bottom/pad_right are implied by the output size and only checked, never read, by the CPU kernels).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace pneumo::kernels {

struct ConvShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input [n, h, w, c]
  int64_t k = 0, r = 0, s = 0;         // weight [k, r, s, c / groups]
  int64_t oh = 0, ow = 0;              // output [n, oh, ow, k]
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  int64_t c_per_group() const { return c / groups; }
  int64_t k_per_group() const { return k / groups; }
};

// One axis of a bilinear resize as PyTorch computes it (upsample_bilinear2d): output o reads inputs
// i0[o], i1[o] with weights l0[o], l1[o]. The transpose (for the gather-form backward, deterministic) lists
// for input i the pairs (out_index, weight) in [start[i], start[i+1]).
struct LinearAxis {
  std::vector<int32_t> i0, i1;
  std::vector<double> l0, l1;
  std::vector<int32_t> start, out_index;
  std::vector<double> weight;
};

inline LinearAxis make_linear_axis(int64_t in, int64_t out, bool align_corners) {
  LinearAxis a;
  a.i0.resize(out);
  a.i1.resize(out);
  a.l0.resize(out);
  a.l1.resize(out);
  double scale;
  if (align_corners)
    scale = out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  else
    scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    double src = align_corners ? scale * static_cast<double>(o) : scale * (static_cast<double>(o) + 0.5) - 0.5;
    if (src < 0) src = 0;  // PyTorch clamps negative source coordinates (align_corners=False)
    int64_t i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
    int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    double l1 = src - static_cast<double>(i0);
    if (i1 == i0) l1 = 0;  // at the last input the whole weight is on i0 (l1 would multiply the same value)
    a.i0[o] = static_cast<int32_t>(i0);
    a.i1[o] = static_cast<int32_t>(i1);
    a.l1[o] = l1;
    a.l0[o] = 1.0 - l1;
  }
  // Transpose: input i receives from every output o with i0[o] == i or i1[o] == i.
  std::vector<int32_t> count(in + 1, 0);
  for (int64_t o = 0; o < out; ++o) {
    count[a.i0[o]]++;
    if (a.i1[o] != a.i0[o]) count[a.i1[o]]++;
  }
  a.start.assign(in + 1, 0);
  for (int64_t i = 0; i < in; ++i) a.start[i + 1] = a.start[i] + count[i];
  a.out_index.resize(a.start[in]);
  a.weight.resize(a.start[in]);
  std::vector<int32_t> fill(a.start.begin(), a.start.end() - 1);
  for (int64_t o = 0; o < out; ++o) {  // ascending o: a fixed summation order
    a.out_index[fill[a.i0[o]]] = static_cast<int32_t>(o);
    a.weight[fill[a.i0[o]]++] = a.l0[o];
    if (a.i1[o] != a.i0[o]) {
      a.out_index[fill[a.i1[o]]] = static_cast<int32_t>(o);
      a.weight[fill[a.i1[o]]++] = a.l1[o];
    }
  }
  return a;
}

}  // namespace pneumo::kernels
