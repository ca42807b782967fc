// Test-only reader for the model parity fixtures written by tests/fixtures/make_model_fixtures.py: a
// safetensors file (8-byte little-endian header length, JSON header, raw little-endian data) holding F32
// tensors only. Parameters are in PyTorch layout, activations NHWC (see the script).
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/check.h"
#include "tensor/tensor.h"

namespace pneumo::test {

inline std::string model_fixture_path(const std::string& file) {
  return std::string(PNEUMO_TEST_FIXTURES) + "/models/" + file;
}

// Ordered as in the file. Throws pneumo::Error on a malformed file.
inline std::vector<std::pair<std::string, Tensor>> read_f32_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  PNEUMO_CHECK(f.good(), "cannot open fixture ", path, " (regenerate with tests/fixtures/make_model_fixtures.py)");
  uint64_t header_len = 0;
  f.read(reinterpret_cast<char*>(&header_len), 8);
  PNEUMO_CHECK(f.good() && header_len < (1u << 26), path, ": bad safetensors header length");
  std::string h(header_len, ' ');
  f.read(&h[0], static_cast<std::streamsize>(header_len));
  std::vector<char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::pair<std::string, Tensor>> out;
  // The writer emits compact JSON: {"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}.
  size_t pos = 1;
  while (pos < h.size() && h[pos] == '"') {
    size_t name_end = h.find('"', pos + 1);
    std::string name = h.substr(pos + 1, name_end - pos - 1);
    size_t obj_end = h.find('}', name_end);
    std::string obj = h.substr(name_end, obj_end - name_end);
    pos = obj_end + 2;  // past "},"
    if (name == "__metadata__") continue;
    PNEUMO_CHECK(obj.find("\"F32\"") != std::string::npos, path, ": ", name, " is not F32");
    auto numbers = [&](const char* key) {
      std::vector<int64_t> v;
      size_t k = obj.find(key);
      PNEUMO_CHECK(k != std::string::npos, path, ": ", name, " lacks ", key);
      size_t b = obj.find('[', k), e = obj.find(']', b);
      std::string list = obj.substr(b + 1, e - b - 1);
      size_t p = 0;
      while (p < list.size()) {
        size_t comma = list.find(',', p);
        if (comma == std::string::npos) comma = list.size();
        if (comma > p) v.push_back(std::stoll(list.substr(p, comma - p)));
        p = comma + 1;
      }
      return v;
    };
    Shape shape = numbers("\"shape\"");
    std::vector<int64_t> off = numbers("\"data_offsets\"");
    PNEUMO_CHECK(off.size() == 2 && off[1] <= static_cast<int64_t>(data.size()) &&
                     off[1] - off[0] == shape_numel(shape) * 4,
                 path, ": ", name, " has inconsistent offsets");
    std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
    if (!values.empty()) std::memcpy(values.data(), data.data() + off[0], values.size() * 4);
    out.emplace_back(name, Tensor::from_vector(values, shape));
  }
  return out;
}

inline std::map<std::string, Tensor> as_map(const std::vector<std::pair<std::string, Tensor>>& v) {
  return std::map<std::string, Tensor>(v.begin(), v.end());
}

}  // namespace pneumo::test
