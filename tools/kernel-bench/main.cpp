// pneumo-kernel-bench: measures the device's copy bandwidth, then every registered custom kernel
// (bench.h) in GB/s over its minimal bytes and as a fraction of that copy bandwidth, in one run.
// Usage: pneumo-kernel-bench [--device cpu|cuda] [--repeats N] [--warmup N] [--filter SUBSTRING]
//                            [--full] [--json FILE]
// Without a GPU (or with --device cpu) the CPU reference kernels run on smaller shapes (--full: GPU shapes).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "kernels/check.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"
#include "tools/kernel-bench/bench.h"
#if PNEUMO_WITH_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"
#endif

namespace pneumo::kbench {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

Buffer::Buffer(size_t bytes, bool gpu) : bytes_(bytes), gpu_(gpu) {
  if (bytes == 0) return;
  if (gpu) {
#if PNEUMO_WITH_CUDA
    PNEUMO_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
#else
    PNEUMO_FAIL("kernel bench: GPU buffer in a build without CUDA");
#endif
  } else {
    ptr_ = cpu_alloc(bytes);
  }
}
Buffer::~Buffer() {
  if (!ptr_) return;
#if PNEUMO_WITH_CUDA
  if (gpu_) {
    cudaFree(ptr_);
    return;
  }
#endif
  cpu_free(ptr_, bytes_);
}
Buffer::Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_), gpu_(o.gpu_) { o.ptr_ = nullptr; }
Buffer& Buffer::operator=(Buffer&& o) noexcept {
  std::swap(ptr_, o.ptr_);
  std::swap(bytes_, o.bytes_);
  std::swap(gpu_, o.gpu_);
  return *this;
}

void Buffer::fill_random(DType dt, float lo, float hi, uint64_t seed, bool mask) {
  const size_t n = bytes_ / dtype_size(dt);
  std::vector<uint8_t> host(bytes_);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    float u = static_cast<float>((s >> 40) & 0xffffff) / 16777216.0f;
    float v = mask ? (u < 0.3f ? 1.0f : 0.0f) : lo + (hi - lo) * u;
    if (dt == DType::F32) std::memcpy(&host[i * 4], &v, 4);
    else if (dt == DType::BF16) {
      uint16_t b = float_to_bf16_bits(v);
      std::memcpy(&host[i * 2], &b, 2);
    } else PNEUMO_FAIL("fill_random: dtype ", dtype_name(dt));
  }
#if PNEUMO_WITH_CUDA
  if (gpu_) {
    // On the legacy default stream, which the kernels' non-blocking stream does not wait for: finish here.
    PNEUMO_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice));
    PNEUMO_CUDA_CHECK(cudaDeviceSynchronize());
    return;
  }
#endif
  std::memcpy(ptr_, host.data(), bytes_);
}

void Buffer::fill_zero() {
#if PNEUMO_WITH_CUDA
  if (gpu_) {
    PNEUMO_CUDA_CHECK(cudaMemset(ptr_, 0, bytes_));
    PNEUMO_CUDA_CHECK(cudaDeviceSynchronize());  // as above
    return;
  }
#endif
  std::memset(ptr_, 0, bytes_);
}

void Context::synchronize() const {
#if PNEUMO_WITH_CUDA
  if (gpu) PNEUMO_CUDA_CHECK(cudaStreamSynchronize(stream));
#endif
}

void Context::run(const std::string& name, const std::string& shape, DType dt, double bytes,
                  const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int i = 0; i < warmup; ++i) fn();
  synchronize();
#if PNEUMO_WITH_CUDA
  if (gpu) {
    cudaEvent_t a, b;
    PNEUMO_CUDA_CHECK(cudaEventCreate(&a));
    PNEUMO_CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < repeats; ++i) {
      PNEUMO_CUDA_CHECK(cudaEventRecord(a, stream));
      fn();
      PNEUMO_CUDA_CHECK(cudaEventRecord(b, stream));
      PNEUMO_CUDA_CHECK(cudaEventSynchronize(b));
      float t = 0;
      PNEUMO_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
#endif
  if (!gpu) {
    for (int i = 0; i < repeats; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(ms.begin(), ms.end());
  Result r{name, shape, dtype_name(dt), ms[ms.size() / 2], bytes};
  results.push_back(r);
  const double percent = copy_gbps > 0 ? 100.0 * r.gbps() / copy_gbps : 100.0;  // the copy itself: 100%
  std::printf("  %-26s %-26s %-8s %10.4f ms %10.1f MB %9.1f GB/s %6.1f%%\n", r.name.c_str(), r.shape.c_str(),
              r.dtype.c_str(), r.ms, r.bytes / 1e6, r.gbps(), percent);
  std::fflush(stdout);
}

namespace {

double measure_copy(Context& ctx) {
  const size_t bytes = ctx.gpu || ctx.full ? (size_t(1) << 30) : (size_t(256) << 20);
  Buffer src = ctx.alloc(bytes), dst = ctx.alloc(bytes);
  src.fill_zero();
  dst.fill_zero();
  ctx.copy_gbps = 0;
  std::function<void()> copy;
#if PNEUMO_WITH_CUDA
  if (ctx.gpu)
    copy = [&] { PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, ctx.stream)); };
#endif
  if (!ctx.gpu) {
    copy = [&] {
      const int64_t chunks = 64;
      const size_t chunk = bytes / chunks;
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < chunks; ++c)
        std::memcpy(static_cast<char*>(dst.data()) + c * chunk, static_cast<const char*>(src.data()) + c * chunk, chunk);
    };
  }
  std::printf("  (copy bandwidth: the reference for the %% column)\n");
  ctx.run("copy (memcpy d2d)", std::to_string(bytes >> 20) + " MiB", DType::U8, 2.0 * bytes, copy);
  ctx.copy_gbps = ctx.results.back().gbps();
  return ctx.copy_gbps;
}

void write_json(const Context& ctx, const std::string& path, const std::string& device) {
  std::ofstream f(path);
  PNEUMO_CHECK(f.good(), "kernel bench: cannot write ", path);
  f << "{\n  \"device\": \"" << device << "\",\n  \"copy_gbps\": " << ctx.copy_gbps << ",\n  \"results\": [\n";
  for (size_t i = 0; i < ctx.results.size(); ++i) {
    const Result& r = ctx.results[i];
    f << "    {\"name\": \"" << r.name << "\", \"shape\": \"" << r.shape << "\", \"dtype\": \"" << r.dtype
      << "\", \"ms\": " << r.ms << ", \"bytes\": " << r.bytes << ", \"gbps\": " << r.gbps()
      << ", \"fraction_of_copy\": " << r.gbps() / ctx.copy_gbps << "}" << (i + 1 < ctx.results.size() ? "," : "")
      << "\n";
  }
  f << "  ]\n}\n";
}

int usage() {
  std::fprintf(stderr,
               "usage: pneumo-kernel-bench [--device cpu|cuda] [--repeats N] [--warmup N] [--filter S] [--full] "
               "[--json FILE]\n");
  return 2;
}

}  // namespace
}  // namespace pneumo::kbench

int main(int argc, char** argv) {
  using namespace pneumo;
  using namespace pneumo::kbench;
  try {
    Context ctx;
    std::string device = cuda::available() ? "cuda" : "cpu", json, filter;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("option " + a + " needs a value");
        return argv[++i];
      };
      if (a == "--device") device = value();
      else if (a == "--repeats") ctx.repeats = std::max(1, std::atoi(value().c_str()));
      else if (a == "--warmup") ctx.warmup = std::max(0, std::atoi(value().c_str()));
      else if (a == "--json") json = value();
      else if (a == "--filter") filter = value();
      else if (a == "--full") ctx.full = true;
      else if (a == "--help" || a == "-h") return usage();
      else {
        std::fprintf(stderr, "pneumo-kernel-bench: unknown option %s\n", a.c_str());
        return usage();
      }
    }
    PNEUMO_CHECK(device == "cpu" || device == "cuda", "--device must be cpu or cuda, got ", device);
    ctx.gpu = device == "cuda";
    std::string device_name = "cpu";
    if (ctx.gpu) {
      PNEUMO_CHECK(cuda::available(), "--device cuda: no CUDA device");
      ctx.stream = cuda::current_stream(0);
      device_name = cuda::devices().at(0).name;
    } else {
      if (ctx.repeats > 5) ctx.repeats = 5;
      if (ctx.warmup > 1) ctx.warmup = 1;
    }
    std::printf("pneumo-kernel-bench on %s (%s), median of %d after %d warm-up; GB/s over minimal bytes\n",
                device_name.c_str(), device.c_str(), ctx.repeats, ctx.warmup);
    std::printf("  %-26s %-26s %-8s %13s %13s %14s %7s\n", "kernel", "shape", "dtype", "time", "bytes", "bandwidth",
                "%copy");
    measure_copy(ctx);
    // A case that throws is reported and the others still run; the JSON holds every row measured.
    int failed = 0;
    for (const Case& c : registry()) {
      if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
      try {
        c.run(ctx);
      } catch (const std::exception& e) {
        ++failed;
        std::printf("  %s: FAILED: %s\n", c.name.c_str(), e.what());
        std::fflush(stdout);
#if PNEUMO_WITH_CUDA
        // A sticky CUDA error poisons every later launch: stop there.
        if (ctx.gpu && cudaDeviceSynchronize() != cudaSuccess) {
          std::printf("  the CUDA context is unusable after that error: the remaining cases are not run\n");
          break;
        }
#endif
      }
    }
    if (!json.empty()) {
      write_json(ctx, json, device_name);
      std::printf("wrote %s\n", json.c_str());
    }
    if (failed > 0) std::fprintf(stderr, "pneumo-kernel-bench: %d case(s) failed (see FAILED above)\n", failed);
    return failed > 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pneumo-kernel-bench: %s\n", e.what());
    return 1;
  }
}
