// Random draws inside a CUDA Graph (dropout, drop-connect under `--cuda-graph`), the way PyTorch's CUDA
// generator handles capture: a draw made during capture bakes in only its offset WITHIN the region; its
// kernels read the seed and the region's offset base from a small device tensor {seed, offset base}, which
// is written before every replay. So each replay draws fresh masks -- exactly the masks the same step would
// have drawn eagerly at that point of the generator's stream -- and the backward, reading the same tensor,
// recomputes the forward's mask. Device-agnostic (a CPU "state" tensor works the same), so it is tested
// without a GPU; cuda::Graph owns one (tensor/cuda_graph.h).
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace pneumo {

class GraphRandom {
 public:
  struct Draw {
    uint64_t offset = 0;  // within the region: the kernel draws philox(state[0], state[1] + offset, i)
    Tensor state;         // I64 {seed, offset base} on the draw's device, written by before_replay()
  };
  // Before the capture: forgets the draws of an earlier, failed capture of the same graph.
  void begin_capture() { entries_.clear(); }
  // During the capture: the next draw of `generator` on `device` (advances the generator as an eager draw).
  Draw next(Generator& generator, Device device);
  // After the capture, whether or not it succeeded: counts each generator's draws and puts the generator back
  // where the region found it (the capture ran nothing).
  void end_capture();
  // Before each replay: writes each state tensor (its generator's seed and current offset; a copy on the
  // device's current stream, so ordered before a replay launched there), then advances the generator past
  // the region's draws, as the eager step would.
  void before_replay();
  size_t draws() const;  // offsets one replay consumes, over all generators

 private:
  struct Entry {
    Generator* generator = nullptr;
    uint64_t start = 0, used = 0;
    Tensor state;
  };
  std::vector<Entry> entries_;
};

}  // namespace pneumo
