// Tensor creation, views, copies between devices and dtypes, host access and printing.
#include "tensor/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "kernels/check.h"
#include "kernels/cpu/tensor_kernels.h"
#include "tensor/cuda_runtime.h"
#include "tensor/dispatch.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/tensor_kernels.h"
#endif

namespace pneumo {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    case DType::U8: return "uint8";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
  }
  return "?";
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda" || s == "gpu") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    char* end = nullptr;
    long i = std::strtol(s.c_str() + 5, &end, 10);
    if (end && *end == 0 && i >= 0) return cuda(static_cast<int>(i));
  }
  PNEUMO_FAIL("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    PNEUMO_CHECK(d >= 0, "negative dimension in shape ", shape_str(s));
    n *= d;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  PNEUMO_CHECK(device.is_cpu() || dtype != DType::F64, "float64 tensors live on the CPU only (asked for ",
               device.str(), ")");
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, DType dtype, Device device) {
  PNEUMO_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values for shape ", shape_str(shape));
  Tensor host = empty(shape, DType::F32, Device::cpu());
  std::copy(values.begin(), values.end(), host.data<float>());
  return host.to(dtype).to(device);
}

Tensor Tensor::from_vector_f64(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  PNEUMO_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector_f64: ", values.size(),
               " values for shape ", shape_str(shape));
  Tensor host = empty(shape, DType::F64, Device::cpu());
  std::copy(values.begin(), values.end(), host.data<double>());
  return host.to(dtype).to(device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::uniform(const Shape& shape, float lo, float hi, uint64_t seed, uint64_t offset, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cpu()) {
    kernels::cpu::random_uniform(dtype, t.raw_data(), t.numel(), seed, offset, lo, hi);
  } else {
#if PNEUMO_WITH_CUDA
    kernels::cuda::random_uniform(dtype, t.raw_data(), t.numel(), seed, offset, lo, hi, cuda::current_stream(device.index));
#endif
  }
  return t;
}

Tensor Tensor::normal(const Shape& shape, float mean, float stddev, uint64_t seed, uint64_t offset, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cpu()) {
    kernels::cpu::random_normal(dtype, t.raw_data(), t.numel(), seed, offset, mean, stddev);
  } else {
#if PNEUMO_WITH_CUDA
    kernels::cuda::random_normal(dtype, t.raw_data(), t.numel(), seed, offset, mean, stddev, cuda::current_stream(device.index));
#endif
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------
int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  if (d < 0) d += n;
  PNEUMO_CHECK(d >= 0 && d < n, "dimension ", d, " out of range for shape ", shape_str(shape_));
  return shape_[static_cast<size_t>(d)];
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

void* Tensor::raw_data() const {
  PNEUMO_CHECK(storage_, "access to the data of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

Tensor Tensor::reshape(const Shape& shape) const {
  check_defined("reshape", *this);
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      PNEUMO_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    PNEUMO_CHECK(known > 0 && numel_ % known == 0, "reshape: cannot infer -1 in ", shape_str(shape), " from ",
                 shape_str(shape_));
    s[static_cast<size_t>(infer)] = numel_ / known;
  }
  PNEUMO_CHECK(shape_numel(s) == numel_, "reshape: ", shape_str(shape_), " (", numel_, " elements) cannot become ",
               shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  check_defined("slice", *this);
  PNEUMO_CHECK(dim() >= 1, "slice of a 0-d tensor");
  PNEUMO_CHECK(0 <= begin && begin <= end && end <= shape_[0], "slice [", begin, ", ", end, ") out of range for shape ",
               shape_str(shape_));
  Tensor t = *this;
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += begin * row;
  t.shape_[0] = end - begin;
  t.numel_ = (end - begin) * row;
  return t;
}

Tensor Tensor::operator[](int64_t i) const {
  Tensor t = slice(i, i + 1);
  t.shape_.erase(t.shape_.begin());
  return t;
}

Tensor Tensor::to(Device device) const {
  check_defined("to(device)", *this);
  if (device == this->device()) return *this;
  Tensor out = empty(shape_, dtype_, device);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  check_defined("to(dtype)", *this);
  if (dtype == dtype_) return *this;
  PNEUMO_OP_SCOPE("cast", *this);
  Tensor out = empty(shape_, dtype, device());
  if (device().is_cpu()) {
    kernels::cpu::cast(dtype_, raw_data(), dtype, out.raw_data(), numel_);
  } else {
#if PNEUMO_WITH_CUDA
    kernels::cuda::cast(dtype_, raw_data(), dtype, out.raw_data(), numel_, cuda::current_stream(device().index));
#endif
  }
  return out;
}

Tensor Tensor::clone() const {
  check_defined("clone", *this);
  Tensor out = empty(shape_, dtype_, device());
  out.copy_from(*this);
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  check_defined("copy_from", *this);
  check_defined("copy_from", src);
  PNEUMO_CHECK(src.numel_ == numel_ && src.dtype_ == dtype_, "copy_from: source ", shape_str(src.shape_), " ",
               dtype_name(src.dtype_), " into ", shape_str(shape_), " ", dtype_name(dtype_));
  if (nbytes() == 0 || (src.storage_ == storage_ && src.offset_ == offset_)) return;
  Device sd = src.device(), dd = device();
  PNEUMO_OP_SCOPE(sd.is_cpu() && dd.is_cuda() ? "copy_h2d" : dd.is_cpu() && sd.is_cuda() ? "copy_d2h" : "copy",
                  dd.is_cuda() ? *this : src);
  if (sd.is_cpu() && dd.is_cpu()) {
    std::memcpy(raw_data(), src.raw_data(), nbytes());
  } else if (sd.is_cpu()) {
    cuda::memcpy_h2d(raw_data(), src.raw_data(), nbytes(), dd.index);
  } else if (dd.is_cpu()) {
    cuda::memcpy_d2h(raw_data(), src.raw_data(), nbytes(), sd.index);
  } else {
    PNEUMO_CHECK(sd.index == dd.index, "copy between CUDA devices ", sd.str(), " and ", dd.str(), " is not supported");
    cuda::memcpy_d2d(raw_data(), src.raw_data(), nbytes(), dd.index);
  }
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_", *this);
  PNEUMO_OP_SCOPE("fill", *this);
  if (device().is_cpu()) {
    kernels::cpu::fill(dtype_, raw_data(), numel_, value);
  } else {
#if PNEUMO_WITH_CUDA
    kernels::cuda::fill(dtype_, raw_data(), numel_, value, cuda::current_stream(device().index));
#endif
  }
  return *this;
}

Tensor& Tensor::increment_() {
  check_defined("increment_", *this);
  PNEUMO_OP_SCOPE("increment", *this);
  if (device().is_cpu()) {
    kernels::cpu::increment(dtype_, raw_data(), numel_);
  } else {
#if PNEUMO_WITH_CUDA
    kernels::cuda::increment(dtype_, raw_data(), numel_, cuda::current_stream(device().index));
#endif
  }
  return *this;
}

std::vector<double> Tensor::to_vector_f64() const {
  Tensor h = cpu().to(DType::F64);
  const double* p = h.data<double>();
  return std::vector<double>(p, p + numel_);
}

std::vector<float> Tensor::to_vector() const {
  Tensor h = cpu().to(DType::F32);
  const float* p = h.data<float>();
  return std::vector<float>(p, p + numel_);
}

double Tensor::item() const {
  PNEUMO_CHECK(numel_ == 1, "item() needs exactly one element, shape is ", shape_str(shape_));
  return to_vector_f64()[0];
}

std::string Tensor::str(int max_per_dim) const {
  std::ostringstream os;
  if (!defined()) return "Tensor(undefined)";
  os << "Tensor(" << shape_str(shape_) << ", " << dtype_name(dtype_) << ", " << device().str() << ")";
  if (numel_ == 0) return os.str();
  std::vector<double> v = to_vector_f64();
  os << std::setprecision(6);
  // Print the last dimension as rows, eliding the middle of long dimensions.
  int64_t last = dim() ? shape_.back() : 1;
  int64_t rows = last ? numel_ / last : 0;
  auto print_row = [&](int64_t r) {
    os << "\n  [";
    for (int64_t c = 0; c < last; ++c) {
      if (last > 2 * max_per_dim && c == max_per_dim) {
        os << " ...";
        c = last - max_per_dim - 1;
        continue;
      }
      os << (c ? ", " : "") << v[static_cast<size_t>(r * last + c)];
    }
    os << "]";
  };
  for (int64_t r = 0; r < rows; ++r) {
    if (rows > 2 * max_per_dim && r == max_per_dim) {
      os << "\n  ... (" << rows - 2 * max_per_dim << " more rows)";
      r = rows - max_per_dim - 1;
      continue;
    }
    print_row(r);
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

void check_defined(const char* op, const Tensor& a) { PNEUMO_CHECK(a.defined(), op, ": tensor is undefined"); }
void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  PNEUMO_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(), " ",
               shape_str(a.shape()), " vs ", b.device().str(), " ", shape_str(b.shape()), ")");
}
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  PNEUMO_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", dtype_name(a.dtype()), " ", shape_str(a.shape()),
               " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()), ")");
}

}  // namespace pneumo
