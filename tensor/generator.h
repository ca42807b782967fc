// The engine's random stream: a Philox seed plus a 64-bit offset that each random op advances by one, so
// draws never overlap and a run is reproducible from its seed (dropout, drop-connect, initialisers).
// Element i of a draw uses philox(seed, offset, i) (kernels/philox.h): identical on CPU and CUDA.
#pragma once
#include <cstdint>

namespace pneumo {

class Generator {
 public:
  explicit Generator(uint64_t seed = 1992) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  void set_offset(uint64_t offset) { offset_ = offset; }  // for checkpoints and replays
  uint64_t next_offset() { return offset_++; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide default generator (single-threaded use: the training loop's thread).
Generator& default_generator();

}  // namespace pneumo
