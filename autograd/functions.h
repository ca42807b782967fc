// Differentiable ops on Variables (the autograd twins of tensor/ops.h). Broadcasting rules are those of
// tensor/ops.h: b may be same-shape, scalar or per-channel [C]; gradients of broadcast operands are reduced
// back to their shape.
#pragma once
#include <vector>

#include "autograd/variable.h"
#include "tensor/ops.h"

namespace pneumo::ag {

Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable affine(const Variable& x, double alpha, double beta);  // alpha * x + beta
Variable scale(const Variable& x, double alpha);

Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable abs(const Variable& x);
Variable relu(const Variable& x);
Variable sigmoid(const Variable& x);
Variable tanh(const Variable& x);
Variable swish(const Variable& x);  // x * sigmoid(x); backward recomputes from x (saves only x)
Variable unary(ops::UnaryOp op, const Variable& x);

Variable sum(const Variable& x);
Variable mean(const Variable& x);
Variable sum_channels(const Variable& x);  // [..., C] -> [C]
Variable sum_hw(const Variable& x);        // [N, H, W, C] -> [N, C]
Variable mean_hw(const Variable& x);       // global average pool, [N, H, W, C] -> [N, C]

Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
Variable reshape(const Variable& x, const Shape& shape);
Variable concat_channels(const std::vector<Variable>& parts);
std::vector<Variable> split_channels(const Variable& x, const std::vector<int64_t>& sizes);
Variable cast(const Variable& x, DType dtype);
// cast(x, out.dtype()) whose result `out` (== x.value().to(out.dtype())) was made beforehand, e.g. by one
// multi-tensor launch for all weights (nn/weight_cast.h): the same node and backward, no kernel here.
Variable cast_precomputed(const Variable& x, Tensor out);

}  // namespace pneumo::ag
