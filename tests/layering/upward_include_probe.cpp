// Compiled with the include roots of the kernels library only (tests/CMakeLists.txt): nn/ sits above
// kernels/, so this include must fail ("nn/module.h: No such file or directory"). Not part of any binary.
#include "nn/module.h"

int pneumo_layering_upward_probe() { return 0; }
