// The op codes of the kernel APIs (CPU and CUDA alike), so a launcher's `op`, broadcast mode, activation or
// loss kind is a named value instead of a bare int. tensor/ops.h exposes the first three as ops::BinaryOp,
// ops::UnaryOp and ops::Broadcast. The numeric values are fixed: kernels switch on them.
#pragma once
#include <cstdint>

namespace pneumo::kernels {

enum class BinaryOp : uint8_t { Add = 0, Sub, Mul, Div };
enum class UnaryOp : uint8_t { Neg = 0, Exp, Log, Sqrt, Abs, Relu, Sigmoid, Tanh, Swish };
// Which saved tensor a unary op's backward reads. Sigmoid and Tanh read their output y, or only their input x
// when no y is given (16-bit activations keep x: ops::unary_backward). The one rule for ops::unary_backward
// and both backends' kernels (the CUDA launcher once kept its own copy, which still demanded y).
struct UnaryBackwardReads {
  bool x = false, y = false;
};
constexpr UnaryBackwardReads unary_backward_reads(UnaryOp op, bool have_x, bool have_y) {
  switch (op) {
    case UnaryOp::Log: case UnaryOp::Abs: case UnaryOp::Relu: case UnaryOp::Swish: return {true, false};
    case UnaryOp::Exp: case UnaryOp::Sqrt: return {false, true};
    case UnaryOp::Sigmoid: case UnaryOp::Tanh: return have_x && !have_y ? UnaryBackwardReads{true, false}
                                                                        : UnaryBackwardReads{false, true};
    default: return {false, false};
  }
}
// How an operand of a binary op is read against the output: every element, element 0, or per channel
// (index % channels over the last dimension).
enum class Broadcast : uint8_t { Full = 0, Scalar = 1, Channel = 2 };
// The hidden activation of the fused squeeze-excite block.
enum class Activation : uint8_t { Relu = 0, Swish = 1 };
// The elementwise binary losses: BCE-with-logits, and focal.
enum class BinaryLoss : uint8_t { Bce = 0, Focal = 1 };

}  // namespace pneumo::kernels
