// Reader for the PyTorch parity fixtures written by tests/fixtures/*.py: one folder per case holding .npy
// files (little-endian '<f4' or '<f8', C order, NumPy format 1.0/2.0) and a meta.txt of "key=value" lines.
// Header-only so suites can use it without touching the support library. Tensors load as F64 on the CPU
// (exact for the float32-stored inputs); `has` tells optional arrays apart.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/check.h"
#include "tensor/tensor.h"

namespace pneumo::test {

inline Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  PNEUMO_CHECK(f.good(), "read_npy: cannot open ", path);
  char magic[6];
  f.read(magic, 6);
  PNEUMO_CHECK(f.good() && std::memcmp(magic, "\x93NUMPY", 6) == 0, "read_npy: ", path, " is not a .npy file");
  unsigned char version[2];
  f.read(reinterpret_cast<char*>(version), 2);
  uint32_t header_len = 0;
  if (version[0] == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  std::string header(header_len, '\0');
  f.read(&header[0], header_len);
  PNEUMO_CHECK(f.good(), "read_npy: ", path, ": truncated header");
  auto field = [&](const std::string& key) {
    size_t k = header.find("'" + key + "'");
    PNEUMO_CHECK(k != std::string::npos, "read_npy: ", path, ": header lacks ", key, ": ", header);
    return header.substr(header.find(':', k) + 1);
  };
  const std::string descr_field = field("descr");
  const size_t q0 = descr_field.find('\''), q1 = descr_field.find('\'', q0 + 1);
  const std::string descr = descr_field.substr(q0 + 1, q1 - q0 - 1);
  PNEUMO_CHECK(descr == "<f4" || descr == "<f8", "read_npy: ", path, ": unsupported dtype ", descr);
  PNEUMO_CHECK(field("fortran_order").find("False") < 3, "read_npy: ", path, ": Fortran order unsupported");
  const std::string shape_field = field("shape");
  const std::string dims = shape_field.substr(shape_field.find('(') + 1, shape_field.find(')') - shape_field.find('(') - 1);
  Shape shape;
  std::stringstream ss(dims);
  std::string item;
  while (std::getline(ss, item, ','))
    if (item.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(item));
  const int64_t n = shape_numel(shape);
  std::vector<double> values(static_cast<size_t>(n));
  if (descr == "<f4") {
    std::vector<float> raw(static_cast<size_t>(n));
    f.read(reinterpret_cast<char*>(raw.data()), n * 4);
    for (int64_t i = 0; i < n; ++i) values[i] = raw[i];
  } else {
    f.read(reinterpret_cast<char*>(values.data()), n * 8);
  }
  PNEUMO_CHECK(f.good(), "read_npy: ", path, ": truncated data (", n, " values of ", descr, " expected)");
  return Tensor::from_vector_f64(values, shape, DType::F64);
}

class NpyFixture {
 public:
  explicit NpyFixture(std::string dir) : dir_(std::move(dir)) {
    std::ifstream f(dir_ + "/meta.txt");
    std::string line;
    while (std::getline(f, line)) {
      const size_t eq = line.find('=');
      if (eq != std::string::npos) meta_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  bool has(const std::string& name) const { return std::ifstream(dir_ + "/" + name + ".npy").good(); }
  Tensor f64(const std::string& name) const { return read_npy(dir_ + "/" + name + ".npy"); }
  Tensor f32(const std::string& name) const { return f64(name).to(DType::F32); }
  double num(const std::string& key) const {
    auto it = meta_.find(key);
    PNEUMO_CHECK(it != meta_.end(), "fixture ", dir_, ": meta.txt lacks ", key);
    return std::stod(it->second);
  }
  int64_t integer(const std::string& key) const { return static_cast<int64_t>(num(key)); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<std::string, std::string> meta_;
};

}  // namespace pneumo::test
