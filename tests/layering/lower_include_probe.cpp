// The control of upward_include_probe.cpp: the same include roots (the kernels library's) reach the
// kernels layer's own headers, so this compiles; the upward probe fails only because of its include.
#include "kernels/dtype.h"

int pneumo_layering_lower_probe() { return static_cast<int>(pneumo::dtype_size(pneumo::DType::F32)); }
