// `pneumo info`: version, build options, CUDA/cuDNN/cuBLAS versions and the devices found.
#include <cstdio>
#include <memory>

#include "nn/models/registry.h"
#include "tensor/cuda_runtime.h"
#include "tools/pneumo/command.h"

namespace {

int run_info(const std::string& model) {
  if (!model.empty()) {  // parameter count and per-stage summary of one network
    std::printf("%s", pneumo::nn::describe_model(model).c_str());
    return 0;
  }
  namespace cuda = pneumo::cuda;
  std::printf("pneumo %s (%s build)\n", PNEUMO_VERSION, PNEUMO_BUILD_TYPE);
  std::printf("  CUDA backend   %s\n", cuda::compiled_with_cuda() ? "compiled in" : "not built (CPU only)");
  if (cuda::compiled_with_cuda()) {
    std::printf("  architectures  %s\n", PNEUMO_CUDA_ARCHS);
    std::printf("  CUDA runtime   %s (driver %s)\n", cuda::runtime_version().c_str(),
                cuda::driver_version().empty() ? "none" : cuda::driver_version().c_str());
    std::printf("  cuDNN          %s\n", cuda::cudnn_version().c_str());
    std::printf("  cuBLAS         %s\n", cuda::cublas_version().c_str());
  }
  auto devs = cuda::devices();
  if (devs.empty()) {
    std::printf("  devices        no GPU found, using the CPU\n");
  } else {
    for (const auto& d : devs)
      std::printf("  cuda:%d         %s (sm_%d%d, %d SMs, %.1f GiB, L2 %.0f MiB)\n", d.index, d.name.c_str(), d.major,
                  d.minor, d.multiprocessors, static_cast<double>(d.total_memory) / (1 << 30),
                  static_cast<double>(d.l2_bytes) / (1 << 20));
  }
  return 0;
}

PNEUMO_COMMAND("info", "version, build options, CUDA/cuDNN/cuBLAS versions and devices", [](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  pneumo::cli::option(app, "--model", *model,
                      "parameter count and per-stage summary of a network (unet_se50, unet_se101, unet_ef3, "
                      "unet_ef5, deeplab_se50, cls_se50, cls_ef3, tiny_* ...)");
  return [model] { return run_info(*model); };
});

}  // namespace
