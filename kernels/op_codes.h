// The op codes of the kernel APIs (CPU and CUDA alike), so a launcher's `op`, broadcast mode, activation or
// loss kind is a named value instead of a bare int. tensor/ops.h exposes the first three as ops::BinaryOp,
// ops::UnaryOp and ops::Broadcast. The numeric values are fixed: kernels switch on them.
#pragma once
#include <cstdint>

namespace pneumo::kernels {

enum class BinaryOp : uint8_t { Add = 0, Sub, Mul, Div };
enum class UnaryOp : uint8_t { Neg = 0, Exp, Log, Sqrt, Abs, Relu, Sigmoid, Tanh, Swish };
// How an operand of a binary op is read against the output: every element, element 0, or per channel
// (index % channels over the last dimension).
enum class Broadcast : uint8_t { Full = 0, Scalar = 1, Channel = 2 };
// The hidden activation of the fused squeeze-excite block.
enum class Activation : uint8_t { Relu = 0, Swish = 1 };
// The elementwise binary losses: BCE-with-logits, and focal.
enum class BinaryLoss : uint8_t { Bce = 0, Focal = 1 };

}  // namespace pneumo::kernels
