// `pneumo bench`: timed benchmarks of the engine, printed as a table and optionally written as JSON.
// Suites: gemm (CPU GEMM, and cuBLAS when a GPU is present). Each figure is a median over repeats after
// a warm-up; comparisons against PyTorch are made by bench/*.sh scripts that run both in one go.
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

struct BenchOptions {
  std::string suite = "gemm", device, json;
  int iters = 5;
};

int run_bench(const BenchOptions& o) {
  const Device dev = cli::resolve_device(o.device);
  std::vector<Row> rows;
  bench_gemm(Device::cpu(), o.iters, rows);  // suites: gemm (= all, for now)
  if (dev.is_cuda()) bench_gemm(dev, o.iters * 4, rows);
  std::printf("%-44s %12s %12s\n", "benchmark", "median ms", "GFLOP/s");
  for (const Row& r : rows) std::printf("%-44s %12.3f %12.1f\n", r.name.c_str(), r.seconds * 1e3, r.gflops);
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    if (!f.good()) cli::user_error("cannot write ", o.json);
    f << "[\n";
    for (size_t i = 0; i < rows.size(); ++i)
      f << "  {\"name\": \"" << rows[i].name << "\", \"seconds\": " << rows[i].seconds << ", \"gflops\": " << rows[i].gflops
        << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
    f << "]\n";
    if (!f.good()) cli::user_error("cannot write ", o.json);
  }
  return 0;
}

PNEUMO_COMMAND("bench", "timed benchmarks (GEMM; more suites as the engine grows)", [](CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  cli::choice(app, "--suite", o->suite, "gemm or all (the same for now)", {"gemm", "all"});
  cli::device_option(app, o->device);
  cli::iters_option(app, o->iters, 5);
  cli::option(app, "--json", o->json, "also write the rows as JSON to this file");
  cli::footer(app, "Medians over --iters runs after a warm-up (x4 on the GPU). The CPU GEMM always runs; with a GPU,\n"
                   "cuBLAS too.");
  return [o] { return run_bench(*o); };
});

}  // namespace
