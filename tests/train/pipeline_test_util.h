// Helpers of the after-training pipeline tests (swa, inference, chain).
#pragma once
#include <memory>
#include <string>

#include "nn/models/registry.h"
#include "tensor/generator.h"

namespace pneumo::test {

// A registered network with its PyTorch-default initialisation drawn from a seeded default generator.
inline std::shared_ptr<nn::models::Network> seeded_model(uint64_t seed, const std::string& name = "tiny_unet_se") {
  default_generator().manual_seed(seed);
  return nn::models::create_model(name);
}

}  // namespace pneumo::test
