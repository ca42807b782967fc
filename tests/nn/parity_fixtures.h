// Reads the PyTorch parity fixtures (tests/fixtures/losses/*.safetensors, written by
// tests/fixtures/make_loss_optim_fixtures.py) through the engine's own safetensors reader.
#pragma once
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "nn/checkpoint.h"

namespace pneumo::test {

class ParityFixture {
 public:
  explicit ParityFixture(const std::string& file) {
    path_ = std::string(PNEUMO_TEST_FIXTURES) + "/losses/" + file;
    for (auto& [name, t] : nn::load_safetensors(path_).tensors) tensors_[name] = t;
  }
  const Tensor& operator[](const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("fixture " + path_ + " lacks '" + name + "'");
    return it->second;
  }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }

 private:
  std::string path_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace pneumo::test
