// Tensor ops: validation here (shapes, dtypes, devices, with the shapes in every message), computation in
// kernels/cpu (oracle) or kernels/cuda (fast). Outputs are always freshly allocated, contiguous tensors.
#include "tensor/ops.h"

#include <algorithm>
#include <cmath>

#include "kernels/check.h"
#include "kernels/cpu/tensor_kernels.h"
#include "tensor/dispatch.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/tensor_kernels.h"
#endif

namespace pneumo::ops {

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "swish"};
  return names[static_cast<int>(op)];
}
const char* binary_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div"};
  return names[static_cast<int>(op)];
}

namespace {
void check_float_op(const char* op, const Tensor& t) {
  check_defined(op, t);
  DType dt = t.dtype();
  if (t.device().is_cpu())
    PNEUMO_CHECK(dt == DType::F32 || dt == DType::F64 || dt == DType::BF16 || dt == DType::F16, op,
                 ": unsupported dtype ", dtype_name(dt), " for ", shape_str(t.shape()));
  else
    PNEUMO_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16, op, ": unsupported dtype ",
                 dtype_name(dt), " on CUDA for ", shape_str(t.shape()));
}
int64_t last_dim(const Shape& s) { return s.empty() ? 1 : s.back(); }
}  // namespace

Broadcast broadcast_kind(const Tensor& operand, const Shape& out) {
  if (operand.shape() == out) return Broadcast::Full;
  if (operand.numel() == 1) return Broadcast::Scalar;
  if (operand.dim() == 1 && !out.empty() && operand.shape()[0] == out.back()) return Broadcast::Channel;
  PNEUMO_FAIL("cannot broadcast ", shape_str(operand.shape()), " to ", shape_str(out),
              " (same shape, a scalar or a per-channel [C] vector only)");
}

Shape broadcast_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() == b.shape()) return a.shape();
  // The larger operand defines the output; the other must be scalar or per-channel.
  const Tensor& big = a.numel() >= b.numel() && !(a.numel() == 1 && b.dim() > a.dim()) ? a : b;
  const Tensor& small = &big == &a ? b : a;
  try {
    broadcast_kind(small, big.shape());
  } catch (const Error&) {
    PNEUMO_FAIL(op, ": shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), " do not broadcast");
  }
  return big.shape();
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  PNEUMO_OP_SCOPE(name, a);
  check_float_op(name, a);
  check_float_op(name, b);
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  Shape out_shape = broadcast_shape(name, a, b);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  const Broadcast am = broadcast_kind(a, out_shape), bm = broadcast_kind(b, out_shape);
  int64_t c = last_dim(out_shape);
  PNEUMO_DISPATCH(a, binary(a.dtype(), op, a.raw_data(), am, b.raw_data(), bm, out.raw_data(), out.numel(), c),
                  binary(a.dtype(), op, a.raw_data(), am, b.raw_data(), bm, out.raw_data(), out.numel(), c, stream));
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }

Tensor affine(const Tensor& x, double alpha, double beta) {
  PNEUMO_OP_SCOPE("affine", x);
  check_float_op("affine", x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  PNEUMO_DISPATCH(x, affine(x.dtype(), x.raw_data(), out.raw_data(), x.numel(), alpha, beta),
                  affine(x.dtype(), x.raw_data(), out.raw_data(), x.numel(), alpha, beta, stream));
  return out;
}

void add_(Tensor& a, const Tensor& b, double alpha) {
  PNEUMO_OP_SCOPE("add_", a);
  check_float_op("add_", a);
  check_same_device("add_", a, b);
  check_same_dtype("add_", a, b);
  PNEUMO_CHECK(a.numel() == b.numel(), "add_: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), " differ");
  PNEUMO_DISPATCH(a, axpy(a.dtype(), a.raw_data(), b.raw_data(), a.numel(), alpha),
                  axpy(a.dtype(), a.raw_data(), b.raw_data(), a.numel(), alpha, stream));
}

Tensor unary(UnaryOp op, const Tensor& x) {
  PNEUMO_OP_SCOPE(unary_name(op), x);
  check_float_op(unary_name(op), x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  PNEUMO_DISPATCH(x, unary(x.dtype(), op, x.raw_data(), out.raw_data(), x.numel()),
                  unary(x.dtype(), op, x.raw_data(), out.raw_data(), x.numel(), stream));
  return out;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy) {
  const char* name = unary_name(op);
  PNEUMO_OP_SCOPE(name, dy);
  check_float_op(name, dy);
  const kernels::UnaryBackwardReads reads = kernels::unary_backward_reads(op, x.defined(), y.defined());
  const bool needs_x = reads.x, needs_y = reads.y;
  const Tensor& ref = needs_x ? x : y;
  if (needs_x || needs_y) {
    PNEUMO_CHECK(ref.defined(), name, " backward needs its saved ", needs_x ? "input" : "output");
    check_same_device(name, ref, dy);
    check_same_dtype(name, ref, dy);
    PNEUMO_CHECK(ref.numel() == dy.numel(), name, " backward: ", shape_str(ref.shape()), " vs gradient ",
                 shape_str(dy.shape()));
  }
  const void* xp = needs_x ? x.raw_data() : nullptr;
  const void* yp = needs_y ? y.raw_data() : nullptr;
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
  PNEUMO_DISPATCH(dy, unary_backward(dy.dtype(), op, xp, yp, dy.raw_data(), dx.raw_data(), dy.numel()),
                  unary_backward(dy.dtype(), op, xp, yp, dy.raw_data(), dx.raw_data(), dy.numel(), stream));
  return dx;
}

Tensor sum(const Tensor& x) {
  PNEUMO_OP_SCOPE("sum", x);
  check_float_op("sum", x);
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  PNEUMO_DISPATCH(x, sum_all(x.dtype(), x.raw_data(), x.numel(), out.raw_data()),
                  sum_all(x.dtype(), x.raw_data(), x.numel(), out.raw_data(), stream));
  return out;
}

Tensor mean(const Tensor& x) {
  PNEUMO_CHECK(x.numel() > 0, "mean of an empty tensor ", shape_str(x.shape()));
  return affine(sum(x), 1.0 / static_cast<double>(x.numel()), 0.0);
}

Tensor sum_channels(const Tensor& x) {
  PNEUMO_OP_SCOPE("sum_channels", x);
  check_float_op("sum_channels", x);
  PNEUMO_CHECK(x.dim() >= 1, "sum_channels of a 0-d tensor");
  int64_t c = x.shape().back(), rows = c ? x.numel() / c : 0;
  Tensor out = Tensor::empty({c}, x.dtype(), x.device());
  PNEUMO_DISPATCH(x, sum_channels(x.dtype(), x.raw_data(), rows, c, out.raw_data()),
                  sum_channels(x.dtype(), x.raw_data(), rows, c, out.raw_data(), stream));
  return out;
}

Tensor sum_hw(const Tensor& x) {
  PNEUMO_OP_SCOPE("sum_hw", x);
  check_float_op("sum_hw", x);
  PNEUMO_CHECK(x.dim() == 4, "sum_hw expects NHWC, got ", shape_str(x.shape()));
  int64_t n = x.size(0), hw = x.size(1) * x.size(2), c = x.size(3);
  Tensor out = Tensor::empty({n, c}, x.dtype(), x.device());
  PNEUMO_DISPATCH(x, sum_hw(x.dtype(), x.raw_data(), n, hw, c, out.raw_data()),
                  sum_hw(x.dtype(), x.raw_data(), n, hw, c, out.raw_data(), stream));
  return out;
}

Tensor expand_channels(const Tensor& v, const Shape& shape, double scale) {
  PNEUMO_OP_SCOPE("expand_channels", v);
  check_float_op("expand_channels", v);
  PNEUMO_CHECK(v.dim() == 1 && !shape.empty() && shape.back() == v.size(0), "expand_channels: ", shape_str(v.shape()),
               " to ", shape_str(shape));
  Tensor out = Tensor::empty(shape, v.dtype(), v.device());
  int64_t c = shape.back(), rows = c ? out.numel() / c : 0;
  PNEUMO_DISPATCH(v, expand_channels(v.dtype(), v.raw_data(), rows, c, out.raw_data(), scale),
                  expand_channels(v.dtype(), v.raw_data(), rows, c, out.raw_data(), scale, stream));
  return out;
}

Tensor expand_hw(const Tensor& nc, const Shape& shape, double scale) {
  PNEUMO_OP_SCOPE("expand_hw", nc);
  check_float_op("expand_hw", nc);
  PNEUMO_CHECK(shape.size() == 4 && nc.dim() == 2 && nc.size(0) == shape[0] && nc.size(1) == shape[3],
               "expand_hw: ", shape_str(nc.shape()), " to ", shape_str(shape));
  Tensor out = Tensor::empty(shape, nc.dtype(), nc.device());
  int64_t n = shape[0], hw = shape[1] * shape[2], c = shape[3];
  PNEUMO_DISPATCH(nc, expand_hw(nc.dtype(), nc.raw_data(), n, hw, c, out.raw_data(), scale),
                  expand_hw(nc.dtype(), nc.raw_data(), n, hw, c, out.raw_data(), scale, stream));
  return out;
}

Tensor expand_scalar(const Tensor& s, const Shape& shape, double scale) {
  PNEUMO_OP_SCOPE("expand_scalar", s);
  check_float_op("expand_scalar", s);
  PNEUMO_CHECK(s.numel() == 1, "expand_scalar: ", shape_str(s.shape()), " is not a scalar");
  Tensor out = Tensor::empty(shape, s.dtype(), s.device());
  PNEUMO_DISPATCH(s, expand_scalar(s.dtype(), s.raw_data(), out.numel(), out.raw_data(), scale),
                  expand_scalar(s.dtype(), s.raw_data(), out.numel(), out.raw_data(), scale, stream));
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  PNEUMO_OP_SCOPE("matmul", a);
  check_float_op("matmul", a);
  check_float_op("matmul", b);
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  PNEUMO_CHECK(a.dim() == 2 && b.dim() == 2, "matmul expects 2-D operands, got ", shape_str(a.shape()), " and ",
               shape_str(b.shape()));
  int64_t m = ta ? a.size(1) : a.size(0), k = ta ? a.size(0) : a.size(1);
  int64_t kb = tb ? b.size(1) : b.size(0), n = tb ? b.size(0) : b.size(1);
  PNEUMO_CHECK(k == kb, "matmul: inner dimensions differ: ", shape_str(a.shape()), (ta ? "^T" : ""), " x ",
               shape_str(b.shape()), (tb ? "^T" : ""));
  // CPU bfloat16 (the CUDA rounding points, docs/gpu-status.md): float32 GEMM, the product rounded once.
  if (a.device().is_cpu() && a.dtype() == DType::BF16)
    return matmul(a.to(DType::F32), b.to(DType::F32), ta, tb).to(DType::BF16);
  PNEUMO_CHECK(a.device().is_cuda() || a.dtype() == DType::F32 || a.dtype() == DType::F64,
               "CPU matmul supports float32 and float64, got ", dtype_name(a.dtype()));
  Tensor out = Tensor::empty({m, n}, a.dtype(), a.device());
  PNEUMO_DISPATCH(a, gemm(a.dtype(), ta, tb, m, n, k, 1.0, a.raw_data(), a.size(1), b.raw_data(), b.size(1), 0.0, out.raw_data(), n),
                  gemm(a.dtype(), ta, tb, m, n, k, 1.0, a.raw_data(), a.size(1), b.raw_data(), b.size(1), 0.0, out.raw_data(), n, stream));
  return out;
}

Tensor concat_channels(const std::vector<Tensor>& parts) {
  PNEUMO_CHECK(!parts.empty(), "concat_channels of nothing");
  const Tensor& first = parts[0];
  check_defined("concat_channels", first);
  PNEUMO_CHECK(first.dim() >= 1, "concat_channels of a 0-d tensor");
  Shape out_shape = first.shape();
  int64_t total = 0;
  for (const Tensor& p : parts) {
    check_defined("concat_channels", p);
    check_same_device("concat_channels", first, p);
    check_same_dtype("concat_channels", first, p);
    PNEUMO_CHECK(p.dim() == first.dim() && std::equal(p.shape().begin(), p.shape().end() - 1, first.shape().begin()),
                 "concat_channels: ", shape_str(p.shape()), " does not match ", shape_str(first.shape()),
                 " outside the last dimension");
    total += p.shape().back();
  }
  PNEUMO_OP_SCOPE("concat_channels", first);
  out_shape.back() = total;
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  int64_t es = static_cast<int64_t>(first.element_size()), rows = total ? out.numel() / total : 0, col = 0;
  for (const Tensor& p : parts) {
    int64_t c = p.shape().back();
    char* dst = static_cast<char*>(out.raw_data()) + col * es;
    PNEUMO_DISPATCH(p, copy_rows(p.raw_data(), c * es, dst, total * es, c * es, rows),
                    copy_rows(p.raw_data(), c * es, dst, total * es, c * es, rows, stream));
    col += c;
  }
  return out;
}

std::vector<Tensor> split_channels(const Tensor& x, const std::vector<int64_t>& sizes) {
  check_defined("split_channels", x);
  PNEUMO_CHECK(x.dim() >= 1, "split_channels of a 0-d tensor");
  int64_t total = 0;
  for (int64_t s : sizes) {
    PNEUMO_CHECK(s >= 0, "split_channels: negative size");
    total += s;
  }
  PNEUMO_CHECK(total == x.shape().back(), "split_channels: sizes sum to ", total, " but ", shape_str(x.shape()),
               " has ", x.shape().back(), " channels");
  PNEUMO_OP_SCOPE("split_channels", x);
  int64_t es = static_cast<int64_t>(x.element_size()), rows = total ? x.numel() / total : 0, col = 0;
  std::vector<Tensor> out;
  for (int64_t c : sizes) {
    Shape s = x.shape();
    s.back() = c;
    Tensor part = Tensor::empty(s, x.dtype(), x.device());
    const char* src = static_cast<const char*>(x.raw_data()) + col * es;
    PNEUMO_DISPATCH(x, copy_rows(src, total * es, part.raw_data(), c * es, c * es, rows),
                    copy_rows(src, total * es, part.raw_data(), c * es, c * es, rows, stream));
    out.push_back(part);
    col += c;
  }
  return out;
}

Tensor cast(const Tensor& x, DType dtype) { return x.to(dtype); }

Difference compare(const Tensor& a, const Tensor& b) {
  PNEUMO_CHECK(a.numel() == b.numel(), "compare: ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
  std::vector<double> va = a.to_vector_f64(), vb = b.to_vector_f64();
  Difference d;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) || std::isnan(vb[i])) {
      d.has_nan = true;
      continue;
    }
    double diff = std::fabs(va[i] - vb[i]);
    d.max_abs = std::max(d.max_abs, diff);
    d.max_rel = std::max(d.max_rel, diff / (std::fabs(vb[i]) + 1e-12));
  }
  return d;
}

}  // namespace pneumo::ops
