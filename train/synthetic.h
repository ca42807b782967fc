// A synthetic chest-X-ray-like set for demos and tests when no real data is present: a bright body with two
// darker lung fields (jittered ellipses), rib-like stripes, low-frequency texture and pixel noise; the mask
// is the two lung fields. Sample i depends only on (seed, i, size): the same on every machine.
#pragma once
#include <cstdint>
#include <string>

#include "train/dataset.h"

namespace pneumo::train {

// One synthetic sample (8-bit gray image, 0/255 mask, positive = true) of size x size.
Sample make_synthetic_sample(uint64_t seed, int64_t index, int size);

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(int64_t count, int size, uint64_t seed = 1992);
  size_t size() const override { return ids_.size(); }
  const std::string& id(size_t i) const override { return ids_.at(i); }
  Sample load(size_t i) const override { return make_synthetic_sample(seed_, static_cast<int64_t>(i), size_); }
  bool positive(size_t) const override { return true; }

 private:
  std::vector<std::string> ids_;
  int size_;
  uint64_t seed_;
};

// Writes <dir>/images/syn_NNNNN.png and <dir>/masks/syn_NNNNN.png (the mask-folder layout of --data).
void write_synthetic_folder(const std::string& dir, int64_t count, int size, uint64_t seed = 1992);

}  // namespace pneumo::train
