// `pneumo bench`: timed benchmarks of the engine, printed as a table and optionally written as JSON.
// Suites: gemm (CPU GEMM, and cuBLAS when a GPU is present) and conv (the three passes of unet_se50's
// decoder 3x3 convolutions at 256 px, batch 4). Each figure is a median over repeats after a warm-up;
// comparisons against PyTorch are made by bench/*.sh scripts that run both in one go.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/check.h"
#include "tensor/cuda_runtime.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"
#include "tools/pneumo/command.h"

namespace {

using namespace pneumo;

double median_seconds(const std::function<void()>& fn, int repeats, const std::function<void()>& sync) {
  fn();  // warm-up
  sync();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    sync();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string name;
  double seconds, gflops;
};

void bench_gemm(Device dev, int repeats, std::vector<Row>& rows) {
  // Square GEMMs, and the im2col GEMM of a 3x3 conv 256->256 at 64x64 (M=4096, N=256, K=2304).
  struct Case {
    const char* name;
    int64_t m, n, k;
  };
  std::vector<Case> cases = {{"gemm 1024^3", 1024, 1024, 1024},
                             {"gemm 2048^3", 2048, 2048, 2048},
                             {"conv3x3 256->256 64x64 as gemm", 4096, 256, 2304}};
  for (const Case& c : cases) {
    Tensor a = Tensor::uniform({c.m, c.k}, -1, 1, 1, 0, DType::F32, dev);
    Tensor b = Tensor::uniform({c.k, c.n}, -1, 1, 2, 0, DType::F32, dev);
    auto sync = [&] {
      if (dev.is_cuda()) cuda::synchronize(dev.index);
    };
    double s = median_seconds([&] { ops::matmul(a, b); }, repeats, sync);
    rows.push_back({std::string(c.name) + " f32 " + dev.str(), s, 2.0 * c.m * c.n * c.k / s / 1e9});
  }
}

// unet_se50's decoder 3x3 convolutions (each block's first conv, input = upsampled x + skip) at 256 px,
// batch 4, padding 1: forward, backward data and backward weight, named "conv3x3 PASS NxHxWxC->K".
void bench_conv(Device dev, int repeats, std::vector<Row>& rows) {
  struct Case {
    int64_t hw, c, k;
  };
  const Case cases[] = {{16, 3072, 256}, {32, 768, 128}, {64, 384, 64}, {128, 128, 32}, {256, 32, 16}, {256, 16, 16}};
  layer_ops::Conv2dGeometry geo;
  geo.pad_top = geo.pad_bottom = geo.pad_left = geo.pad_right = 1;
  auto sync = [&] {
    if (dev.is_cuda()) cuda::synchronize(dev.index);
  };
  for (const Case& c : cases) {
    const int64_t n = 4;
    Tensor x = Tensor::uniform({n, c.hw, c.hw, c.c}, -1, 1, 1, 0, DType::F32, dev);
    Tensor w = Tensor::uniform({c.k, 3, 3, c.c}, -1, 1, 2, 0, DType::F32, dev);
    Tensor dy = Tensor::uniform({n, c.hw, c.hw, c.k}, -1, 1, 3, 0, DType::F32, dev);
    const double flop = 2.0 * n * c.hw * c.hw * 9.0 * c.c * c.k;
    char shape[64];
    std::snprintf(shape, sizeof(shape), "%lldx%lldx%lldx%lld->%lld", static_cast<long long>(n),
                  static_cast<long long>(c.hw), static_cast<long long>(c.hw), static_cast<long long>(c.c),
                  static_cast<long long>(c.k));
    const std::pair<const char*, std::function<void()>> passes[] = {
        {"fwd", [&] { layer_ops::conv2d_forward(x, w, geo); }},
        {"dgrad", [&] { layer_ops::conv2d_backward_data(dy, w, x.shape(), geo); }},
        {"wgrad", [&] { layer_ops::conv2d_backward_weight(dy, x, w.shape(), geo); }}};
    for (const auto& [pass, fn] : passes) {
      const double s = median_seconds(fn, repeats, sync);
      rows.push_back({std::string("conv3x3 ") + pass + " " + shape + " f32 " + dev.str(), s, flop / s / 1e9});
    }
  }
}

struct BenchOptions {
  std::string suite = "gemm", device, json;
  int iters = 5;
};

int run_bench(const BenchOptions& o) {
  const Device dev = cli::resolve_device(o.device);
  std::vector<Row> rows;
  if (o.suite != "conv") {
    bench_gemm(Device::cpu(), o.iters, rows);
    if (dev.is_cuda()) bench_gemm(dev, o.iters * 4, rows);
  }
  if (o.suite != "gemm") {
    bench_conv(Device::cpu(), o.iters, rows);
    if (dev.is_cuda()) bench_conv(dev, o.iters * 4, rows);
  }
  std::printf("%-44s %12s %12s\n", "benchmark", "median ms", "GFLOP/s");
  for (const Row& r : rows) std::printf("%-44s %12.3f %12.1f\n", r.name.c_str(), r.seconds * 1e3, r.gflops);
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    if (!f.good()) cli::user_error("cannot write ", o.json);
    f << "[\n";
    for (size_t i = 0; i < rows.size(); ++i)
      f << "  {\"name\": \"" << rows[i].name << "\", \"seconds\": " << rows[i].seconds
        << ", \"gflops\": " << rows[i].gflops << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
    f << "]\n";
    if (!f.good()) cli::user_error("cannot write ", o.json);
  }
  return 0;
}

PNEUMO_COMMAND("bench", "timed benchmarks (GEMM, the decoder's 3x3 convolutions)", [](CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  cli::choice(app, "--suite", o->suite, "gemm, conv or all", {"gemm", "conv", "all"});
  cli::device_option(app, o->device);
  cli::iters_option(app, o->iters, 5);
  cli::option(app, "--json", o->json, "also write the rows as JSON to this file");
  cli::footer(app,
              "Medians over --iters runs after a warm-up (x4 on the GPU). The CPU rows always run; with a GPU,\n"
              "the same rows on it too.");
  return [o] { return run_bench(*o); };
});

}  // namespace
