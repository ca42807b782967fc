// The process-wide default Philox generator (seed 1992, the reference's seed).
#include "tensor/generator.h"

namespace pneumo {
Generator& default_generator() {
  static Generator g(1992);
  return g;
}
}  // namespace pneumo
