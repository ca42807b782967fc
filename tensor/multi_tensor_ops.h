// Multi-tensor ops: one launch over a list of tensors (issue 12 part 2 item 5b).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace pneumo::ops {

// bfloat16 copies of float32 tensors (all on one device), made in ONE kernel launch (CPU: one loop) into
// ONE new buffer: result k is a view of that buffer with src[k]'s shape, bit-identical to src[k].to(BF16).
// Each view starts 16-byte aligned, so the kernels reading it keep their vector paths.
std::vector<Tensor> cast_bf16_multi(const std::vector<Tensor>& src);

}  // namespace pneumo::ops
