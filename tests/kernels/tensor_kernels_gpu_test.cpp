// Kernel-level GPU tests of kernels/cuda/tensor_kernels.h against the CPU reference kernels on raw buffers,
// for what the tensor ops never exercise: pitched GEMM operands (lda/ldb/ldc > width) with alpha and beta,
// float16 GEMM, copy_rows on every alignment class (16/4/2/1-byte paths) with the bytes around each row
// left untouched, float16 elementwise kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/tensor_kernels.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "tensor/allocator.h"
#include "tensor/ops.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/tensor_kernels.h"
#endif

namespace pneumo {
namespace {

#if PNEUMO_WITH_CUDA

// A device buffer from the caching allocator, filled from / read back to host bytes.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes), ptr_(cuda_memory::allocate(bytes, 0)) {}
  ~DeviceBuffer() { cuda_memory::release(ptr_, 0); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  char* data() const { return static_cast<char*>(ptr_); }
  void upload(const void* host) { cuda::memcpy_h2d(ptr_, host, bytes_, 0); }
  std::vector<uint8_t> download() const {
    std::vector<uint8_t> out(bytes_);
    cuda::memcpy_d2h(out.data(), ptr_, bytes_, 0);
    return out;
  }

 private:
  size_t bytes_;
  void* ptr_;
};

std::vector<float> random_floats(size_t n, float lo, float hi) {
  return Tensor::uniform({static_cast<int64_t>(n)}, lo, hi, test::fresh_seed()).to_vector();
}

uint16_t to_bits(DType dt, float v) { return dt == DType::BF16 ? float_to_bf16_bits(v) : float_to_f16_bits(v); }
float from_bits(DType dt, uint16_t b) { return dt == DType::BF16 ? bf16_bits_to_float(b) : f16_bits_to_float(b); }

TEST(TensorKernelsGpu, GemmPitchedWithAlphaBetaAllTransposes) {
  PNEUMO_REQUIRE_CUDA();
  const int64_t M = 33, N = 17, K = 29;
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      SCOPED_TRACE(std::string(dtype_name(dt)) + (ta ? " A^T" : "") + (tb ? " B^T" : ""));
      const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
      const int64_t lda = a_cols + 3, ldb = b_cols + 5, ldc = N + 2;
      std::vector<float> A = random_floats(a_rows * lda, -1, 1), B = random_floats(b_rows * ldb, -1, 1),
                         C = random_floats(M * ldc, -1, 1);
      const double alpha = 0.7, beta = -1.3;
      const size_t es = dtype_size(dt);
      // Round the inputs to dt so the float32 CPU reference sees exactly what the GPU sees.
      auto to_dt = [&](std::vector<float>& v) {
        std::vector<uint8_t> bytes(v.size() * es);
        for (size_t i = 0; i < v.size(); ++i) {
          if (dt == DType::F32) {
            std::memcpy(&bytes[i * 4], &v[i], 4);
          } else {
            uint16_t b = to_bits(dt, v[i]);
            v[i] = from_bits(dt, b);
            std::memcpy(&bytes[i * 2], &b, 2);
          }
        }
        return bytes;
      };
      std::vector<uint8_t> a_bytes = to_dt(A), b_bytes = to_dt(B), c_bytes = to_dt(C);
      DeviceBuffer da(a_bytes.size()), db(b_bytes.size()), dc(c_bytes.size());
      da.upload(a_bytes.data());
      db.upload(b_bytes.data());
      dc.upload(c_bytes.data());
      kernels::cuda::gemm(dt, ta, tb, M, N, K, alpha, da.data(), lda, db.data(), ldb, beta, dc.data(), ldc,
                          cuda::current_stream(0));
      std::vector<uint8_t> got = dc.download();
      std::vector<float> ref = C;
      kernels::cpu::gemm(DType::F32, ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
      const double tol = dt == DType::F32 ? 1e-5 : (dt == DType::BF16 ? 2e-2 : 4e-3);
      for (int64_t r = 0; r < M; ++r)
        for (int64_t c = 0; c < ldc; ++c) {
          const size_t i = static_cast<size_t>(r * ldc + c);
          float g;
          if (dt == DType::F32) {
            std::memcpy(&g, &got[i * 4], 4);
          } else {
            uint16_t b;
            std::memcpy(&b, &got[i * 2], 2);
            g = from_bits(dt, b);
          }
          if (c >= N) {  // the pitch padding of C must be untouched
            ASSERT_EQ(g, C[i]) << "padding of C written at row " << r << " col " << c;
            continue;
          }
          ASSERT_NEAR(g, ref[i], tol * (1.0 + std::fabs(ref[i]))) << "row " << r << " col " << c;
        }
    }
}

TEST(TensorKernelsGpu, GemmRejectsBadLeadingDimensionsAndF64) {
  PNEUMO_REQUIRE_CUDA();
  DeviceBuffer d(4096);
  EXPECT_THROW(kernels::cuda::gemm(DType::F32, false, false, 4, 4, 8, 1, d.data(), 4, d.data(), 4, 0, d.data(), 4,
                                   cuda::current_stream(0)),
               Error);
  EXPECT_THROW(kernels::cuda::gemm(DType::F64, false, false, 2, 2, 2, 1, d.data(), 2, d.data(), 2, 0, d.data(), 2,
                                   cuda::current_stream(0)),
               Error);
}

TEST(TensorKernelsGpu, CopyRowsEveryAlignmentClass) {
  PNEUMO_REQUIRE_CUDA();
  const int64_t rows = 37;
  for (int64_t width : {1, 2, 3, 4, 6, 16, 32, 48, 100})
    for (int64_t extra : {0, 1, 2, 16})
      for (int64_t offset : {0, 1, 2, 4, 16}) {
        SCOPED_TRACE("width " + std::to_string(width) + " extra " + std::to_string(extra) + " offset " +
                     std::to_string(offset));
        const int64_t src_pitch = width + extra, dst_pitch = width + 2 * extra + 16;
        const size_t src_bytes = static_cast<size_t>(offset + rows * src_pitch);
        const size_t dst_bytes = static_cast<size_t>(offset + rows * dst_pitch);
        std::vector<uint8_t> src(src_bytes), dst(dst_bytes);
        for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
        for (size_t i = 0; i < dst.size(); ++i) dst[i] = static_cast<uint8_t>(0xA5 ^ i);
        DeviceBuffer ds(src_bytes), dd(dst_bytes);
        ds.upload(src.data());
        dd.upload(dst.data());
        kernels::cuda::copy_rows(ds.data() + offset, src_pitch, dd.data() + offset, dst_pitch, width, rows,
                                 cuda::current_stream(0));
        kernels::cpu::copy_rows(src.data() + offset, src_pitch, dst.data() + offset, dst_pitch, width, rows);
        ASSERT_EQ(dd.download(), dst);
      }
}

TEST(TensorKernelsGpu, ElementwiseInFloat16) {
  PNEUMO_REQUIRE_CUDA();
  // The ops tests cover F32 and BF16 through the tensor layer; here F16 at the kernel level, vector path
  // (n = 1000) and scalar path (pointer + 1 element), against the CPU kernels in F16.
  const int64_t n = 1000;
  std::vector<float> xf = random_floats(n + 1, 0.2f, 3), yf = random_floats(n + 1, 0.2f, 3);
  std::vector<uint16_t> x(n + 1), y(n + 1);
  for (int64_t i = 0; i <= n; ++i) x[i] = float_to_f16_bits(xf[i]), y[i] = float_to_f16_bits(yf[i]);
  DeviceBuffer dx((n + 1) * 2), dy((n + 1) * 2), dout((n + 1) * 2);
  dx.upload(x.data());
  dy.upload(y.data());
  cudaStream_t s = cuda::current_stream(0);
  for (int shift : {0, 1}) {
    const int64_t m = n - shift;
    for (int op = 0; op < 9; ++op) {
      kernels::cuda::unary(DType::F16, kernels::UnaryOp(op), dx.data() + 2 * shift, dout.data() + 2 * shift, m, s);
      std::vector<uint16_t> ref(n + 1);
      kernels::cpu::unary(DType::F16, kernels::UnaryOp(op), x.data() + shift, ref.data() + shift, m);
      std::vector<uint8_t> got = dout.download();
      for (int64_t i = shift; i < n; ++i) {
        uint16_t g;
        std::memcpy(&g, &got[2 * i], 2);
        const float gv = f16_bits_to_float(g), rv = f16_bits_to_float(ref[i]);
        ASSERT_NEAR(gv, rv, 2e-3 * (1 + std::fabs(rv))) << "unary op " << op << " element " << i << " shift " << shift;
      }
    }
    for (int op = 0; op < 4; ++op) {
      kernels::cuda::binary(DType::F16, kernels::BinaryOp(op), dx.data() + 2 * shift, kernels::Broadcast::Full,
                            dy.data() + 2 * shift, kernels::Broadcast::Full, dout.data() + 2 * shift, m, 1, s);
      std::vector<uint16_t> ref(n + 1);
      kernels::cpu::binary(DType::F16, kernels::BinaryOp(op), x.data() + shift, kernels::Broadcast::Full, y.data() + shift,
                           kernels::Broadcast::Full, ref.data() + shift, m, 1);
      std::vector<uint8_t> got = dout.download();
      for (int64_t i = shift; i < n; ++i) {
        uint16_t g;
        std::memcpy(&g, &got[2 * i], 2);
        ASSERT_EQ(g, ref[i]) << "binary op " << op << " element " << i << " shift " << shift;  // one IEEE op: exact
      }
    }
  }
}

// The bandwidth figures of the memory-bound ops (formerly the report-only BandwidthReport test) are the
// kernel-bench case "tensor_ops" (tools/kernel-bench/tensor_ops_bench.cpp), beside PyTorch in
// bench/gpu/tensor_kernels_vs_torch.sh.

#else

TEST(TensorKernelsGpu, NotBuiltWithCuda) { PNEUMO_REQUIRE_CUDA(); }  // skips, or fails under PNEUMO_REQUIRE_GPU=1

#endif

}  // namespace
}  // namespace pneumo
