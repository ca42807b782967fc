// `pneumo bench-models`: forward + backward time of each full network (train mode) at a given size, for the
// CPU-vs-PyTorch comparison in bench/cpu_models_vs_torch.sh and for CUDA timings. Prints one line per model:
// "bench-models NAME SECONDS" (median over --iters runs after one warm-up), so scripts can parse it.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "nn/models/registry.h"
#include "tensor/cuda_runtime.h"
#include "tools/pneumo/command.h"

namespace {

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int run_bench_models(const pneumo::cli::Args& args) {
  using namespace pneumo;
  const auto names = split_names(args.get("models", "unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50"));
  const int64_t size = args.get_int("size", 256), batch = args.get_int("batch", 1);
  const int64_t iters = args.get_int("iters", 2), threads = args.get_int("threads", 0);
  const Device device = Device::parse(args.get("device", "cpu"));
  const std::string dtype_name = args.get("dtype", "f32");
  args.finish();
  PNEUMO_CHECK(dtype_name == "f32" || dtype_name == "bf16", "bench-models: --dtype must be f32 or bf16");
  const DType dtype = dtype_name == "bf16" ? DType::BF16 : DType::F32;
  PNEUMO_CHECK(iters >= 1 && size >= 32 && size % 32 == 0 && batch >= 1,
               "bench-models: need --iters >= 1, --batch >= 1 and --size a multiple of 32");
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

PNEUMO_COMMAND("bench-models", "forward+backward time of the full networks",
               "usage: pneumo bench-models [--models a,b,...] [--size 256] [--batch 1] [--iters 2] [--threads N]\n"
               "                           [--device cpu|cuda] [--dtype f32|bf16]\n"
               "  Times one training-mode forward + backward of each network (median of --iters after a warm-up).\n"
               "  Default models: unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50.",
               run_bench_models);

}  // namespace
