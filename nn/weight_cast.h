// Weights cast to bf16 once per training step in ONE multi-tensor launch (issue 12 part 2 item 5b), instead
// of one cast launch per weight inside every layer's forward. While a WeightCastScope is alive on a thread,
// cast_for_forward() (used by nn::F's layers and squeeze-excite wherever a float32 master weight meets bf16
// activations) returns the precast copy, recorded as the same cast node, so the backward (bf16 gradient ->
// float32 master gradient) and every value are bit-identical to the per-weight path.
// Opt-in (never run on a GPU yet): PNEUMO_CAST_ONCE=1 or `enabled = true`; the trainer opens the scope
// after the optimiser step, right before the forward, so the copies are of the current weights. The
// parameters must not change while the scope lives (an entry whose storage no longer matches is ignored).
#pragma once
#include <unordered_map>
#include <vector>

#include "autograd/variable.h"

namespace pneumo::nn {

class Module;

bool cast_once_enabled();  // PNEUMO_CAST_ONCE=1, read once

class WeightCastScope {
 public:
  // Precasts every float32 parameter of `params` / `module` to `dtype` when `enabled`, dtype is BF16 and
  // the parameters live on one device; otherwise does nothing (layers cast per weight as before).
  WeightCastScope(const std::vector<ag::Variable>& params, DType dtype, bool enabled = cast_once_enabled());
  WeightCastScope(const Module& module, DType dtype, bool enabled = cast_once_enabled());
  ~WeightCastScope();
  WeightCastScope(const WeightCastScope&) = delete;
  WeightCastScope& operator=(const WeightCastScope&) = delete;
  size_t size() const { return cast_.size(); }  // parameters precast

 private:
  struct Entry {
    const void* source;  // the parameter's data when cast: a replaced value is not served stale
    Tensor copy;
  };
  friend ag::Variable cast_for_forward(const ag::Variable& v, DType dtype);
  void precast(const std::vector<ag::Variable>& params);
  std::unordered_map<const void*, Entry> cast_;  // keyed by the parameter's VariableImpl
  DType dtype_;
  WeightCastScope* previous_;
};

// v as `dtype` for a layer's forward: v itself when already that dtype, the active scope's precast copy
// when it has one, else ag::cast(v, dtype).
ag::Variable cast_for_forward(const ag::Variable& v, DType dtype);

}  // namespace pneumo::nn
