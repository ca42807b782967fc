// Tensor-level ops without autograd: validate in the entry point, dispatch to kernels/cpu or kernels/cuda.
// Broadcasting is deliberately narrow (what the networks need): the second operand of a binary op may be
// the same shape, a scalar (numel 1) or a per-channel vector [C] over the last dimension (NHWC channels);
// the first operand may be a scalar too. Floating dtypes: F32/F64 on the CPU, F32/BF16/F16 on CUDA.
#pragma once
#include <vector>

#include "kernels/op_codes.h"
#include "tensor/tensor.h"

namespace pneumo::ops {

// The kernels' op codes (kernels/op_codes.h), named here for the tensor API.
using BinaryOp = kernels::BinaryOp;
using UnaryOp = kernels::UnaryOp;
const char* unary_name(UnaryOp op);
const char* binary_name(BinaryOp op);

// How an operand is read against the output shape.
using Broadcast = kernels::Broadcast;
Broadcast broadcast_kind(const Tensor& operand, const Shape& out_shape);  // throws if incompatible
Shape broadcast_shape(const char* op, const Tensor& a, const Tensor& b);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// out = alpha * x + beta (the scalar forms of add/mul).
Tensor affine(const Tensor& x, double alpha, double beta);
// In place: a += alpha * b (b same shape as a). Used to accumulate gradients.
void add_(Tensor& a, const Tensor& b, double alpha = 1.0);

Tensor unary(UnaryOp op, const Tensor& x);
// dx = dy * f'(x); `y` = f(x) is used where cheaper (exp, sigmoid, tanh, sqrt); either may be undefined
// where the op does not need it (relu/abs/log/swish need x; exp/sqrt need y; sigmoid/tanh use y when it is
// given, else compute the derivative from x in float32 without forming 1 - y -- accurate for 16-bit
// storage, where a saturated y rounds 1 - y to 0 or 2^-8).
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy);

// Reductions, float32 (or float64 on CPU) accumulation, same dtype out.
Tensor sum(const Tensor& x);                // -> shape [] (numel 1)
Tensor mean(const Tensor& x);               // -> shape []
Tensor sum_channels(const Tensor& x);       // [..., C] -> [C] (over N, H, W)
Tensor sum_hw(const Tensor& x);             // [N, H, W, C] -> [N, C]
// The reverse broadcasts: [C] -> shape (last dim C); [N, C] -> [N, H, W, C]; scalar -> shape; each
// multiplied by `scale`.
Tensor expand_channels(const Tensor& v, const Shape& shape, double scale = 1.0);
Tensor expand_hw(const Tensor& nc, const Shape& shape, double scale = 1.0);
Tensor expand_scalar(const Tensor& s, const Shape& shape, double scale = 1.0);

// C = op(A) op(B), 2-D, op = transpose when the flag is set. CUDA: cuBLAS (float32 compute, no TF32);
// CPU: cache-blocked OpenMP GEMM.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// Along the last dimension (channels in NHWC); all other dimensions must agree.
Tensor concat_channels(const std::vector<Tensor>& parts);
std::vector<Tensor> split_channels(const Tensor& x, const std::vector<int64_t>& sizes);

Tensor cast(const Tensor& x, DType dtype);

// max |a - b| and max |a - b| / (|b| + eps) over all elements, computed on the host in float64.
struct Difference {
  double max_abs = 0, max_rel = 0;
  bool has_nan = false;
};
Difference compare(const Tensor& a, const Tensor& b);

}  // namespace pneumo::ops
