// `pneumo bench-models`: forward + backward time of each full network (train mode) at a given size, for the
// CPU-vs-PyTorch comparison in bench/cpu_models_vs_torch.sh and for CUDA timings. Prints one line per model:
// "bench-models NAME SECONDS" (median over --iters runs after one warm-up), so scripts can parse it, then
// "bench-models-detail NAME ..." with the host enqueue time (until backward() returns, before the device
// sync), the peak memory of the caching allocator over the timed steps (CUDA), and with --profile the
// per-op table of one more (profiled) step, its op sum set against that step's wall time. --optimizer adam
// adds a (capturable) Adam step to each step, so --cuda-graph captures the whole training step. The detail line
// also counts how the last step's backward summed the gradients of tensors used twice (ag::BackwardSums).
// --mode infer times inference instead (eval mode, no gradients, forward only, as `pneumo predict` runs a
// network): "bench-models-infer NAME images_per_s X batch_ms Y" and on CUDA the peak memory; with
// --cuda-graph also the forward captured once and replayed ("bench-models-infer-graph").
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <memory>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "kernels/cpu/host_memory.h"
#include "kernels/math_mode.h"
#include "nn/models/registry.h"
#include "nn/weight_cast.h"
#include "tensor/allocator.h"
#include "tensor/cuda_graph.h"
#include "tensor/cuda_runtime.h"
#include "tensor/profile.h"
#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"
#include "train/optim.h"

namespace {

struct BenchModelsOptions {
  std::string models = "unet_se50,unet_se101,unet_ef3,unet_ef5,deeplab_se50", device, dtype = "f32";
  std::string optimizer = "none", mode = "train";
  int size = 256, batch = 1, iters = 2, threads = 0, profile_top = 40;
  bool profile = false, tf32 = false, cast_once = false, cuda_graph = false, dgrad_accumulate = false;
  bool engine_sums = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The peak memory figures restart from what is in use now: the caching allocator's on CUDA, the host
// cache's live large blocks on the CPU.
void reset_peak_memory(pneumo::Device device) {
  if (device.is_cuda())
    pneumo::cuda_memory::reset_peak(device.index);
  else
    pneumo::kernels::cpu::host_cache_reset_peak();
}

// Captures asked for (--cuda-graph) that failed: the other rows are still timed, then the command fails.
int g_capture_failures = 0;

// Median seconds of `iters` runs of fn after one warm-up, each ended by a device sync; the peak memory
// counts from the first timed run.
double time_runs(const std::function<void()>& fn, int64_t iters, pneumo::Device device) {
  using namespace pneumo;
  std::vector<double> times;
  for (int64_t it = 0; it <= iters; ++it) {
    if (device.is_cuda()) cuda::synchronize(device.index);
    if (it == 1) reset_peak_memory(device);
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    if (device.is_cuda()) cuda::synchronize(device.index);
    if (it > 0) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(times);
}

// --mode infer: one network's inference (eval, no gradients), eager and, with `graph`, replayed.
void bench_inference(pneumo::nn::models::Network& m, const pneumo::Tensor& input, const std::string& name,
                     int64_t iters, bool cast_once, bool graph) {
  using namespace pneumo;
  const Device device = input.device();
  const double batch = static_cast<double>(input.size(0)), mib = 1.0 / (1 << 20);
  m.eval();
  auto forward = [&] {
    ag::NoGradGuard no_grad;
    nn::WeightCastScope scope(m, input.dtype(), cast_once);
    m.run(ag::Variable(input));
  };
  const double s = time_runs(forward, iters, device);
  std::printf("bench-models-infer %s images_per_s %.2f batch_ms %.2f", name.c_str(), batch / s, 1e3 * s);
  if (device.is_cuda()) {
    const CudaMemoryStats st = cuda_memory::stats(device.index);
    std::printf(" peak_allocated_mib %.1f peak_reserved_mib %.1f", st.peak_allocated_bytes * mib,
                st.peak_reserved_bytes * mib);
  }
  std::printf("\n");
  std::fflush(stdout);
  if (!graph) return;
  cuda::Graph g(device.index);
  try {
    g.capture(forward);
  } catch (const Error& e) {
    std::printf("bench-models-infer-graph %s not captured: %s\n", name.c_str(), e.what());
    ++g_capture_failures;
    return;
  }
  const double r = time_runs([&] { g.replay(); }, iters, device);
  std::printf("bench-models-infer-graph %s images_per_s %.2f batch_ms %.2f eager_batch_ms %.2f graph_nodes %zu\n",
              name.c_str(), batch / r, 1e3 * r, 1e3 * s, g.nodes());
  std::fflush(stdout);
}

int capture_status() {
  if (g_capture_failures == 0) return 0;
  std::fflush(stdout);
  std::fprintf(stderr, "pneumo bench-models: %d CUDA Graph capture(s) failed (the 'not captured' lines above)\n",
               g_capture_failures);
  return 1;
}

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
  if (o.tf32) kernels::set_allow_tf32(true);
  if (o.dgrad_accumulate) kernels::set_dgrad_accumulate(true);
  if (o.engine_sums) ag::set_lend_gradient_sums(false);
  const bool cast_once = o.cast_once || nn::cast_once_enabled();
  const bool graph = o.cuda_graph || cuda::graphs_enabled();
  if (graph && !device.is_cuda()) cli::usage_error("--cuda-graph needs --device cuda");
  const bool with_adam = o.optimizer == "adam";
  if (o.mode == "infer") {
    if (with_adam) cli::usage_error("--optimizer adam times a training step: not with --mode infer");
    std::printf("bench-models: inference (eval mode, no gradients, forward only), batch %lld, %lldx%lld, %s %s, "
                "%d threads%s\n",
                static_cast<long long>(batch), static_cast<long long>(size), static_cast<long long>(size),
                device.str().c_str(), dtype_name.c_str(), omp_get_max_threads(),
                cast_once && dtype == DType::BF16 ? ", weights cast once per batch (one launch)" : "");
    for (const auto& name : names) {
      auto m = nn::models::create_model(name);
      m->to(device);
      bench_inference(*m, Tensor::normal({batch, size, size, 3}, 0, 1, 7).to(device).to(dtype), name, iters,
                      cast_once, graph);
    }
    return capture_status();
  }
  std::printf("bench-models: forward+backward%s, train mode, batch %lld, %lldx%lld, %s %s, %d threads%s%s%s\n",
              with_adam ? "+Adam" : "", static_cast<long long>(batch), static_cast<long long>(size),
              static_cast<long long>(size),
              device.str().c_str(), dtype_name.c_str(), omp_get_max_threads(),
              kernels::allow_tf32() && device.is_cuda() ? ", TF32 allowed for float32" : "",
              cast_once && dtype == DType::BF16 ? ", weights cast once per step (one launch)" : "",
              kernels::dgrad_accumulate() ? ", data gradients summed in the convolution's pass" : "");
  const double mib = 1.0 / (1 << 20);
  for (const auto& name : names) {
    auto m = nn::models::create_model(name);
    m->to(device);
    m->train();
    Tensor input = Tensor::normal({batch, size, size, 3}, 0, 1, 7).to(device).to(dtype);
    double weight_bytes = 0;
    for (const auto& p : m->parameters()) weight_bytes += static_cast<double>(p.value().nbytes());
    std::unique_ptr<train::Adam> adam;
    if (with_adam) {
      adam = std::make_unique<train::Adam>(train::name_parameters(m->parameters()), train::AdamOptions{1e-5});
      adam->set_capturable(true);  // the same kernels eager and captured
    }
    auto step = [&]() {
      {
        nn::WeightCastScope scope(*m, dtype, cast_once);
        nn::models::NetworkOutput out = m->run(ag::Variable(input));
        ag::Variable loss = ag::mean(ag::cast(out.seg, DType::F32));
        if (out.cls.defined()) loss = ag::add(loss, ag::mean(ag::cast(out.cls, DType::F32)));
        loss.backward();
      }
      if (adam) adam->step();
    };
    std::vector<double> times, enqueue;
    for (int64_t it = 0; it <= iters; ++it) {
      m->zero_grad();
      if (device.is_cuda()) cuda::synchronize(device.index);
      // Peak over the timed steps: weights, gradients (freed by zero_grad above: allocated anew each step,
      // as PyTorch's zero_grad(set_to_none=True)), activations, workspaces.
      if (it == 1) reset_peak_memory(device);
      auto t0 = std::chrono::steady_clock::now();
      step();
      auto t1 = std::chrono::steady_clock::now();
      if (device.is_cuda()) cuda::synchronize(device.index);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (it > 0) {  // the first run warms caches and allocators
        times.push_back(s);
        enqueue.push_back(std::chrono::duration<double>(t1 - t0).count());
      }
    }
    const ag::BackwardSums sums = ag::last_backward_sums();
    std::printf("bench-models %s %.4f\n", name.c_str(), median(times));
    std::printf("bench-models-detail %s step_ms %.2f enqueue_ms %.2f grad_sums_in_conv %lld grad_sums_in_place %lld "
                "grad_sums_new %lld",
                name.c_str(), 1e3 * median(times), 1e3 * median(enqueue), static_cast<long long>(sums.in_node),
                static_cast<long long>(sums.in_place), static_cast<long long>(sums.new_buffer));
    if (device.is_cuda()) {
      const CudaMemoryStats st = cuda_memory::stats(device.index);
      std::printf(" peak_allocated_mib %.1f peak_reserved_mib %.1f weights_mib %.1f", st.peak_allocated_bytes * mib,
                  st.peak_reserved_bytes * mib, weight_bytes * mib);
    } else {  // blocks of 1 MiB and more (activations, gradients, large weights) live at once
      std::printf(" peak_host_mib %.1f weights_mib %.1f", kernels::cpu::host_cache_stats().peak_live_large_bytes * mib,
                  weight_bytes * mib);
    }
    std::printf("\n");
    std::fflush(stdout);
    if (graph) {
      // The same step captured once (after the warm-up above) and replayed: the host enqueues one launch.
      m->zero_grad();
      cuda::synchronize(device.index);
      cuda::Graph g(device.index);
      try {
        g.capture(step);
      } catch (const Error& e) {  // e.g. a host sync inside the step
        std::printf("bench-models-graph %s not captured: %s\n", name.c_str(), e.what());
        ++g_capture_failures;
      }
      if (g.captured()) {
        const double replay = time_runs([&] { g.replay(); }, iters, device);
        // (cudaFree happens only on an out-of-memory retry, so the reserved peak holds the eager and graph
        // pools together.)
        std::printf("bench-models-graph %s step_ms %.2f eager_step_ms %.2f graph_nodes %zu peak_reserved_mib %.1f\n",
                    name.c_str(), 1e3 * replay, 1e3 * median(times), g.nodes(),
                    cuda_memory::stats(device.index).peak_reserved_bytes * mib);
      }
      std::fflush(stdout);
    }
    if (o.profile) {
      m->zero_grad();
      if (device.is_cuda()) cuda::synchronize(device.index);
      const bool was = profile::timing();
      profile::set_timing(true);
      profile::reset();
      auto t0 = std::chrono::steady_clock::now();
      step();
      if (device.is_cuda()) cuda::synchronize(device.index);
      const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const std::string title = "bench-models profile " + name + " (one step, " + dtype_name + ", self time per op; " +
                                (device.is_cuda() ? "device time from cudaEvents" : "host time") + ")";
      std::printf("%s", profile::table(o.profile_top, wall, title).c_str());
      profile::set_timing(was);
      profile::reset();
      std::fflush(stdout);
    }
  }
  return capture_status();
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
  pneumo::cli::flag(app, "--profile", o->profile, "print the per-op table of one more step (as PNEUMO_PROFILE=1)");
  pneumo::cli::option(app, "--profile-top", o->profile_top, "rows of the --profile table", 1, 100000);
  pneumo::cli::flag(app, "--tf32", o->tf32, "allow TF32 for float32 convolutions and GEMMs (as PNEUMO_TF32=1)");
  pneumo::cli::flag(app, "--cuda-graph", o->cuda_graph,
               "also time the step captured once as a CUDA Graph and replayed (as PNEUMO_CUDA_GRAPH=1)");
  pneumo::cli::choice(app, "--optimizer", o->optimizer,
                      "add an optimiser step to each step (capturable Adam: --cuda-graph then captures it too)",
                      {"none", "adam"});
  pneumo::cli::flag(app, "--cast-once", o->cast_once,
               "bf16: cast the weights once per step in one launch (as PNEUMO_CAST_ONCE=1)");
  pneumo::cli::flag(app, "--engine-sums", o->engine_sums,
                    "sum the gradients of tensors used twice in the backward engine only, lending none to the "
                    "convolutions (the A/B of the lent sums)");
  pneumo::cli::choice(app, "--mode", o->mode,
                      "train: forward + backward in train mode; infer: inference (eval, forward only, images/s)",
                      {"train", "infer"});
  pneumo::cli::flag(app, "--dgrad-accumulate", o->dgrad_accumulate,
                    "sum a convolution's data gradient into the gradient already summed for its input in the "
                    "convolution's pass (cuDNN beta = 1; as PNEUMO_DGRAD_ACCUMULATE=1)");
  pneumo::cli::footer(app,
                      "Times one training-mode forward + backward of each network (median of --iters after a "
                      "warm-up).\nPrints 'bench-models NAME SECONDS' per network, then 'bench-models-detail NAME "
                      "step_ms X enqueue_ms Y' (host time to enqueue the step), how the backward summed the gradients of tensors "
                      "used twice (grad_sums_in_conv, grad_sums_in_place, grad_sums_new), on the CPU peak_host_mib (live blocks "
                      "of 1 MiB and more) and on CUDA peak_allocated_mib, "
                      "peak_reserved_mib (caching allocator, over the timed steps) and weights_mib; --size must be "
                      "a multiple of 32.\n--mode infer prints 'bench-models-infer NAME images_per_s X batch_ms Y' "
                      "(eval mode, no gradients) and on CUDA the peak memory.");
  return [o] { return run_bench_models(*o); };
});

}  // namespace
