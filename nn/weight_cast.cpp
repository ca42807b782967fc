#include "nn/weight_cast.h"

#include <cstdlib>
#include <cstring>

#include "autograd/functions.h"
#include "nn/module.h"
#include "tensor/multi_tensor_ops.h"

namespace pneumo::nn {
namespace {
thread_local WeightCastScope* g_active = nullptr;
}

bool cast_once_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("PNEUMO_CAST_ONCE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

WeightCastScope::WeightCastScope(const std::vector<ag::Variable>& params, DType dtype, bool enabled)
    : dtype_(dtype), previous_(g_active) {
  // Active only once built: a cast that throws (out of memory in a capture) must not leave g_active pointing
  // at this dead object, which later scopes would restore and cast_for_forward read.
  if (enabled && dtype == DType::BF16) precast(params);
  g_active = this;
}

void WeightCastScope::precast(const std::vector<ag::Variable>& params) {
  std::vector<Tensor> src;
  std::vector<const ag::Variable*> which;
  for (const ag::Variable& p : params) {
    if (!p.defined() || p.dtype() != DType::F32 || p.numel() == 0) continue;
    if (!src.empty() && p.device() != src[0].device()) return;  // mixed devices: per-weight casts
    src.push_back(p.value());
    which.push_back(&p);
  }
  std::vector<Tensor> copies = ops::cast_bf16_multi(src);
  for (size_t k = 0; k < copies.size(); ++k)
    cast_[which[k]->impl().get()] = Entry{src[k].raw_data(), std::move(copies[k])};
}

WeightCastScope::WeightCastScope(const Module& module, DType dtype, bool enabled)
    : WeightCastScope(module.parameters(), dtype, enabled) {}

WeightCastScope::~WeightCastScope() { g_active = previous_; }

ag::Variable cast_for_forward(const ag::Variable& v, DType dtype) {
  if (v.dtype() == dtype) return v;
  if (const WeightCastScope* s = g_active; s && s->dtype_ == dtype) {
    auto it = s->cast_.find(v.impl().get());
    if (it != s->cast_.end() && it->second.source == v.value().raw_data())
      return ag::cast_precomputed(v, it->second.copy);
  }
  return ag::cast(v, dtype);
}

}  // namespace pneumo::nn
