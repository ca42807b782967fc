// When the CPU kernels start OpenMP threads: one threshold and one thread count for all of them.
#pragma once
#include <omp.h>

#include <cstdint>

namespace pneumo::kernels::cpu {

// Threads only for work that amortises starting them (tiny tensors in gradient checks stay serial).
inline bool worth_parallel(int64_t work) { return work >= (int64_t{1} << 15); }

// The threads a kernel called here may start: 1 inside an enclosing parallel region.
inline int threads_here() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

}  // namespace pneumo::kernels::cpu
