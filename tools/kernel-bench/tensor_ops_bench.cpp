// Kernel-bench case "tensor_ops": the memory-bound tensor ops (tensor/ops.h, the CUDA kernels of
// kernels/cuda/elementwise.cu and reduce.cu) on the NHWC activation [4, 256, 256, 64], float32 and bf16.
// Moved here from the GPU test TensorKernelsGpu.BandwidthReport, which timed without asserting: a speed
// figure is a benchmark row beside the copy bandwidth, not a test. bench/gpu/tensor_kernels_vs_torch.sh
// reads these rows (--filter tensor_ops --json) and sets PyTorch's times for the same work beside them.
// Names carry the dtype suffix the PyTorch script uses. Minimal bytes: reductions read x once; unary ops
// read + write; binary ops read two and write one; expand_hw writes the output (its sum_hw input included in
// the time on both sides); concat reads both halves and writes the whole.
#include <functional>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tensor/tensor.h"
#include "tools/kernel-bench/bench.h"

namespace pneumo::kbench {
namespace {

void bench_tensor_ops(Context& ctx) {
  const bool big = ctx.gpu || ctx.full;
  const int64_t N = 4, H = big ? 256 : 64, W = big ? 256 : 64, C = 64;
  const Shape nhwc = {N, H, W, C};
  const std::string shape = std::to_string(N) + "x" + std::to_string(H) + "x" + std::to_string(W) + "x" + std::to_string(C);
  const double n = static_cast<double>(shape_numel(nhwc));
  const Device dev = ctx.gpu ? Device::cuda() : Device::cpu();
  std::vector<DType> dtypes = {DType::F32};
  if (ctx.gpu) dtypes.push_back(DType::BF16);
  for (DType dt : dtypes) {
    const std::string sfx = dt == DType::F32 ? "_f32" : "_bf16";
    const double es = static_cast<double>(dtype_size(dt));
    Tensor x = Tensor::uniform(nhwc, -1, 1, 1, 0, dt, dev);
    Tensor y = Tensor::uniform(nhwc, -1, 1, 2, 0, dt, dev);
    Tensor v = Tensor::uniform({C}, -1, 1, 3, 0, dt, dev);
    Tensor half = Tensor::uniform({N, H, W, C / 2}, -1, 1, 4, 0, dt, dev);
    auto row = [&](const std::string& name, double passes, const std::function<void()>& fn) {
      ctx.run(name + sfx, shape, dt, passes * n * es, fn);
    };
    row("sum_channels", 1, [&] { ops::sum_channels(x); });
    row("sum_hw", 1, [&] { ops::sum_hw(x); });
    row("sum_all", 1, [&] { ops::sum(x); });
    row("relu", 2, [&] { ops::unary(ops::UnaryOp::Relu, x); });
    row("swish", 2, [&] { ops::unary(ops::UnaryOp::Swish, x); });
    row("swish_backward", 3, [&] { ops::unary_backward(ops::UnaryOp::Swish, x, Tensor(), y); });
    row("add", 3, [&] { ops::add(x, y); });
    row("mul_channel", 2, [&] { ops::mul(x, v); });
    row("add_inplace", 3, [&] { ops::add_(y, x, 1e-3); });
    row("expand_hw", 1, [&] { ops::expand_hw(ops::sum_hw(x), nhwc, 0.5); });
    row("concat_channels", 2, [&] { ops::concat_channels({half, half}); });
  }
  Tensor xf = Tensor::uniform(nhwc, -1, 1, 5, 0, DType::F32, dev);
  ctx.run("cast_f32_to_bf16", shape, DType::F32, n * 6.0, [&] { xf.to(DType::BF16); });
  ctx.run("uniform_f32", shape, DType::F32, n * 4.0, [&] { Tensor::uniform(nhwc, 0, 1, 9, 0, DType::F32, dev); });
}

PNEUMO_KERNEL_BENCH("tensor_ops", bench_tensor_ops);

}  // namespace
}  // namespace pneumo::kbench
