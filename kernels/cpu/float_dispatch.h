// Calls fn(float{}) or fn(double{}) for the two floating dtypes the CPU layer kernels compute in, and
// fails clearly for any other: one place for the dtype switch of kernels/cpu/*_kernels.cpp.
#pragma once
#include "kernels/check.h"
#include "kernels/dtype.h"

namespace pneumo::kernels::cpu {

template <typename Fn>
void dispatch_float(DType dt, const char* what, Fn&& fn) {
  if (dt == DType::F32)
    fn(float{});
  else if (dt == DType::F64)
    fn(double{});
  else
    PNEUMO_FAIL(what, ": CPU supports F32 and F64, got ", dtype_name(dt));
}

}  // namespace pneumo::kernels::cpu
