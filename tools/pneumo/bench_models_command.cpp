// `pneumo bench-models`: forward + backward time of each full network (train mode) at a given size, for the
// CPU-vs-PyTorch comparison in bench/cpu_models_vs_torch.sh and for CUDA timings. Prints one line per model:
// "bench-models NAME SECONDS" (median over --iters runs after one warm-up), so scripts can parse it.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "nn/models/registry.h"
#include "tensor/cuda_runtime.h"
#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"

namespace {

struct BenchModelsOptions {
  std::string models = "unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50", device, dtype = "f32";
  int size = 256, batch = 1, iters = 2, threads = 0;
};

int run_bench_models(const BenchModelsOptions& o) {
  using namespace pneumo;
  const auto names = pneumo::cli::split_list(o.models);
  if (names.empty()) cli::usage_error("--models names no network");
  const int64_t size = o.size, batch = o.batch, iters = o.iters, threads = o.threads;
  const Device device = cli::resolve_device(o.device);
  const std::string& dtype_name = o.dtype;
  const DType dtype = dtype_name == "bf16" ? DType::BF16 : DType::F32;
  if (size % 32 != 0) cli::usage_error("--size must be a multiple of 32, got ", size);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  std::printf("bench-models: forward+backward, train mode, batch %lld, %lldx%lld, %s %s, %d threads\n",
              static_cast<long long>(batch), static_cast<long long>(size), static_cast<long long>(size),
              device.str().c_str(), dtype_name.c_str(), omp_get_max_threads());
  for (const auto& name : names) {
    auto m = nn::models::create_model(name);
    m->to(device);
    m->train();
    Tensor input = Tensor::normal({batch, size, size, 3}, 0, 1, 7).to(device).to(dtype);
    std::vector<double> times;
    for (int64_t it = 0; it <= iters; ++it) {
      m->zero_grad();
      if (device.is_cuda()) cuda::synchronize();
      auto t0 = std::chrono::steady_clock::now();
      nn::models::NetworkOutput out = m->run(ag::Variable(input));
      ag::Variable loss = ag::mean(ag::cast(out.seg, DType::F32));
      if (out.cls.defined()) loss = ag::add(loss, ag::mean(ag::cast(out.cls, DType::F32)));
      loss.backward();
      if (device.is_cuda()) cuda::synchronize();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (it > 0) times.push_back(s);  // the first run warms caches and allocators
    }
    std::sort(times.begin(), times.end());
    std::printf("bench-models %s %.4f\n", name.c_str(), times[times.size() / 2]);
    std::fflush(stdout);
  }
  return 0;
}

PNEUMO_COMMAND("bench-models", "forward+backward time of the full networks", [](CLI::App& app) {
  auto o = std::make_shared<BenchModelsOptions>();
  pneumo::cli::option(app, "--models", o->models, "comma-separated network names (pneumo info --model NAME)");
  pneumo::cli::size_option(app, o->size, 256, 32, 4096);
  pneumo::cli::option(app, "--batch", o->batch, "images per step", 1, 1024);
  pneumo::cli::iters_option(app, o->iters, 2);
  pneumo::cli::option(app, "--threads", o->threads, "OpenMP threads (0: the default)", 0, 1024);
  pneumo::cli::device_option(app, o->device);
  pneumo::cli::choice(app, "--dtype", o->dtype, "activation type", {"f32", "bf16"});
  pneumo::cli::footer(app,
                      "Times one training-mode forward + backward of each network (median of --iters after a "
                      "warm-up).\nPrints 'bench-models NAME SECONDS' per network; --size must be a multiple of 32.");
  return [o] { return run_bench_models(*o); };
});

}  // namespace
