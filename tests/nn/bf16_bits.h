// Test-only: the raw bfloat16 bit patterns of a BF16 tensor (any device), for bit-exact comparisons.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/tensor.h"

namespace pneumo::test {

inline std::vector<uint16_t> bf16_bits(const Tensor& t) {
  Tensor c = t.to(Device::cpu()).clone();
  std::vector<uint16_t> out(static_cast<size_t>(c.numel()));
  if (!out.empty()) std::memcpy(out.data(), c.raw_data(), out.size() * 2);
  return out;
}

}  // namespace pneumo::test
