// Tensor: a contiguous, typed view into shared storage on the CPU or a CUDA device.
// Conventions every layer relies on:
//  - 4-D activations are NHWC (channels last); conv weights are KRSC ([out, kh, kw, in/groups]).
//  - Tensors are always contiguous. Views share storage only along the first (batch) dimension
//    (`slice`) or as a reshape of the whole; anything else is a copy.
//  - An undefined Tensor (default-constructed) has no storage; `defined()` tells.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace pneumo {

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return Device{DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return Device{DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && (type == DeviceType::CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
  // "cpu", "cuda", "cuda:1"; throws on anything else.
  static Device parse(const std::string& s);
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// Raw memory owned by an allocator; freed (or returned to the CUDA cache) when the last Tensor goes.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
  // From host values (converted to dtype), then moved to device.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, DType dtype = DType::F32,
                            Device device = Device::cpu());
  static Tensor from_vector_f64(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F64,
                                Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());
  // Philox draws: element i uses (seed, offset, i), identical on both backends (see kernels/philox.h).
  static Tensor uniform(const Shape& shape, float lo, float hi, uint64_t seed, uint64_t offset = 0,
                        DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor normal(const Shape& shape, float mean, float stddev, uint64_t seed, uint64_t offset = 0,
                       DType dtype = DType::F32, Device device = Device::cpu());

  // ---- properties ----
  bool defined() const { return static_cast<bool>(storage_); }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  size_t element_size() const { return dtype_size(dtype_); }
  // Shares storage with `other` (views, reshapes).
  bool shares_storage(const Tensor& other) const { return storage_ && storage_ == other.storage_; }
  // This is the only Tensor holding its storage, and spans all of it: it may be kept without a copy.
  bool sole_owner() const {
    return storage_ && storage_.use_count() == 1 && offset_ == 0 && nbytes() == storage_->bytes();
  }

  void* raw_data() const;
  template <typename T>
  T* data() const { return static_cast<T*>(raw_data()); }

  // ---- views (share storage) ----
  Tensor reshape(const Shape& shape) const;  // one -1 allowed
  Tensor slice(int64_t begin, int64_t end) const;  // along dim 0
  Tensor operator[](int64_t i) const;  // dim 0 index, drops that dim

  // ---- copies ----
  Tensor to(Device device) const;  // same tensor when already there
  Tensor to(DType dtype) const;    // same tensor when already that dtype
  // Cast where float64 is allowed: on the CPU (to the CPU: move, then cast; to a GPU: cast, then move).
  Tensor to(Device device, DType dtype) const {
    return device.is_cpu() ? to(device).to(dtype) : to(dtype).to(device);
  }
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor clone() const;
  void copy_from(const Tensor& src);  // same shape (numel) and dtype, any devices

  // ---- in place ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  // += 1 on every element of an I32/I64 tensor, on its device: a counter (BatchNorm's
  // num_batches_tracked) that advances on every replay of a CUDA Graph, where fill_(host value) would not.
  Tensor& increment_();

  // ---- host access (copies to CPU as needed) ----
  std::vector<float> to_vector() const;  // values as float
  std::vector<double> to_vector_f64() const;
  double item() const;  // numel must be 1

  std::string str(int max_per_dim = 6) const;  // readable print for debugging

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Checks that throw pneumo::Error naming the op and the shapes.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_defined(const char* op, const Tensor& a);

// Poison mode (tests): every new allocation is filled with 0xFF bytes (NaN for floats) so that an op
// that leaves part of its output unwritten is caught.
void set_poison_allocations(bool on);
bool poison_allocations();

}  // namespace pneumo
