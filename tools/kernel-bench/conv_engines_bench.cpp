// Kernel-bench case "conv_engines": the legacy cuDNN convolution path against the backend (graph) API path
// (kernels/cuda/conv_cudnn.h, conv_graph.h) on unet_se50's convolution shapes at 1024x1024, batch 4, bf16
// (encoder stem, grouped 3x3 of each stage, a 1x1 pair, the decoder's 3x3 at every scale, the final 1x1):
// forward, dgrad and wgrad, each once per engine, then one line per shape and direction with graph/legacy.
// The first call of each (timed neither) chooses the algorithm / autotunes the plan. GB/s is over the minimal
// bytes (inputs read once, output written once): convolutions are compute-bound, read the ms column.
// GPU only, and opt-in (PNEUMO_KBENCH_CONV=1: ~80 rows, longer than the rest together); tools/gpu-check.sh
// runs it as its own step.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/layer_shapes.h"
#include "tensor/allocator.h"
#include "tensor/layer_ops.h"
#include "tools/kernel-bench/bench.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/conv_graph.h"
#endif

namespace pneumo::kbench {
namespace {

struct ConvRow {
  const char* where;
  int64_t h, c, k, kernel, stride, groups;
};

// unet_se50 (SE-ResNeXt50 32x4d encoder, UNet decoder 256/128/64/32/16) at 1024x1024, batch 4.
const ConvRow kRows[] = {
    {"stem 7x7 s2", 1024, 3, 64, 7, 2, 1},
    {"layer1 3x3 g32", 256, 128, 128, 3, 1, 32},
    {"layer1 1x1 128-256", 256, 128, 256, 1, 1, 1},
    {"layer2.0 1x1 256-256", 256, 256, 256, 1, 1, 1},
    {"layer2.0 3x3 g32 s2", 256, 256, 256, 3, 2, 32},
    {"layer3 3x3 g32", 64, 512, 512, 3, 1, 32},
    {"layer4 3x3 g32", 32, 1024, 1024, 3, 1, 32},
    {"dec1 3x3 3072-256", 64, 3072, 256, 3, 1, 1},
    {"dec3 3x3 384-64", 256, 384, 64, 3, 1, 1},
    {"dec4 3x3 128-32", 512, 128, 32, 3, 1, 1},
    {"dec5 3x3 32-16", 1024, 32, 16, 3, 1, 1},
    {"dec5 3x3 16-16", 1024, 16, 16, 3, 1, 1},
    {"final 1x1 16-1", 1024, 16, 1, 1, 1, 1},
};

void bench_conv_engines(Context& ctx) {
  const char* on = std::getenv("PNEUMO_KBENCH_CONV");
  if (!ctx.gpu || !on || std::strcmp(on, "1") != 0) {
    std::printf("  conv_engines: skipped (GPU only, opt-in: PNEUMO_KBENCH_CONV=1 --filter conv_engines)\n");
    return;
  }
#if PNEUMO_WITH_CUDA
  namespace kc = kernels::cuda;
  const DType dt = DType::BF16;
  const double es = 2;
  const int saved_warmup = ctx.warmup, saved_repeats = ctx.repeats;
  ctx.warmup = 1;  // the first call chooses / autotunes; the rest are steady state
  ctx.repeats = std::min(ctx.repeats, 5);
  kc::WorkspaceAllocator alloc;
  alloc.allocate = &cuda_memory::allocate;
  alloc.release = &cuda_memory::release;
  std::map<std::string, double> legacy_ms;
  std::vector<std::string> ratios;
  for (const ConvRow& r : kRows) {
    layer_ops::Conv2dGeometry g;
    g.stride_h = g.stride_w = r.stride;
    g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = (r.kernel - 1) / 2;
    g.groups = r.groups;
    const kernels::ConvShape cs = layer_ops::conv2d_shape({4, r.h, r.h, r.c}, {r.k, r.kernel, r.kernel, r.c / r.groups}, g);
    const double nx = double(cs.n * cs.h * cs.w * cs.c), nw = double(cs.k * cs.r * cs.s * cs.c_per_group()),
                 ny = double(cs.n * cs.oh * cs.ow * cs.k);
    Buffer x = ctx.alloc(size_t(nx * es)), w = ctx.alloc(size_t(nw * es)), y = ctx.alloc(size_t(ny * es));
    Buffer dx = ctx.alloc(size_t(nx * es)), dw = ctx.alloc(size_t(nw * es));
    x.fill_random(dt, -1, 1, 1);
    w.fill_random(dt, -0.1f, 0.1f, 2);
    y.fill_random(dt, -1, 1, 3);  // doubles as dy
    const std::string shape = std::string(r.where) + " " + std::to_string(cs.n) + "x" + std::to_string(cs.h) + "x" +
                              std::to_string(cs.w) + "x" + std::to_string(cs.c);
    for (kc::ConvEngine e : {kc::ConvEngine::Legacy, kc::ConvEngine::Graph}) {
      kc::set_conv_engine(e);
      const std::string sfx = std::string("_") + kc::conv_engine_name(e);
      auto row = [&](const char* dir, double bytes, const std::function<void()>& fn) {
        ctx.run(std::string("conv_") + dir + sfx, shape, dt, bytes * es, fn);
        const std::string key = shape + " " + dir;
        if (e == kc::ConvEngine::Legacy) {
          legacy_ms[key] = ctx.results.back().ms;
        } else {
          char line[256];
          std::snprintf(line, sizeof line, "  %-42s %-6s graph/legacy %.3f (%s)", shape.c_str(), dir,
                        ctx.results.back().ms / legacy_ms[key],
                        kc::conv_graph_choice(dir[0] == 'f'   ? kc::ConvDirection::Forward
                                              : dir[0] == 'd' ? kc::ConvDirection::BackwardData
                                                              : kc::ConvDirection::BackwardWeight,
                                              dt, cs, 0)
                            .c_str());
          ratios.push_back(line);
        }
      };
      row("fwd", nx + nw + ny, [&] { kc::conv2d_forward_cudnn(dt, cs, x.data(), w.data(), y.data(), 0, ctx.stream, alloc); });
      if (r.c > 3)  // the stem's input gradient is never needed
        row("dgrad", ny + nw + nx,
            [&] { kc::conv2d_backward_data_cudnn(dt, cs, y.data(), w.data(), dx.data(), 0, ctx.stream, alloc); });
      row("wgrad", ny + nx + nw,
          [&] { kc::conv2d_backward_weight_cudnn(dt, cs, y.data(), x.data(), dw.data(), 0, ctx.stream, alloc); });
    }
    kc::clear_conv_engine_override();
  }
  std::printf("  conv_engines: graph time / legacy time (below 1: the graph path is faster), graph engine chosen\n");
  for (const std::string& l : ratios) std::printf("%s\n", l.c_str());
  const auto s = kc::conv_graph_stats();
  std::printf("  conv_engines: graph plans built %llu, timed %llu, failed shapes %llu (legacy ran them)\n",
              static_cast<unsigned long long>(s.plans_built), static_cast<unsigned long long>(s.plans_timed),
              static_cast<unsigned long long>(s.failed_keys));
  ctx.warmup = saved_warmup;
  ctx.repeats = saved_repeats;
#endif
}

PNEUMO_KERNEL_BENCH("conv_engines", bench_conv_engines);

}  // namespace
}  // namespace pneumo::kbench
