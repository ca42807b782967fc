// The host-only half of the cuDNN graph-API convolution path (kernels/cuda/conv_graph.h): which engine runs
// convolutions, the options read from the environment, the plan-cache key, the NHWC layouts handed to
// cuDNN, which engines are acceptable (from their numerical and behaviour notes) and the on-disk cache
// format. Plain C++ with no CUDA or cuDNN types, compiled in every build, so the CPU tests cover it.
//
// Environment (read once per process; a bad value is an error naming the variable):
//   PNEUMO_CONV_ENGINE=legacy|graph    legacy (default): cudnnFind*AlgorithmEx (conv_cudnn.h); graph: cuDNN 9's
//                                      backend API, falling back to legacy for a shape whose plan fails
//   PNEUMO_CONV_NONDETERMINISTIC=0|1   graph: allow engines with CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC
//                                      (default 0: bitwise-repeatable gradients; a shape with no
//                                      deterministic engine then falls back to legacy, which says so)
//   PNEUMO_CONV_WORKSPACE_MB=N         graph: largest workspace a plan may use (default 1024 = 1 GiB)
//   PNEUMO_CONV_AUTOTUNE=K             graph: time the K best usable plans once per shape and keep the
//                                      fastest (default 4; 1 = the heuristics' first usable plan, untimed)
//   PNEUMO_CONV_PLAN_CACHE=FILE        graph: remember each shape's chosen engine (tag) across processes
//   PNEUMO_CUDNN_ALGOS=no-transform    both: no FFT/Winograd (graph: CUDNN_NUMERICAL_NOTE_FFT/WINOGRAD*)
//   PNEUMO_CUDNN_LOG=1                 both: one stderr line per shape and direction with the choice
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/layer_shapes.h"

namespace pneumo::kernels::cuda {

enum class ConvEngine { Legacy, Graph };
enum class ConvDirection { Forward = 0, BackwardData = 1, BackwardWeight = 2 };
const char* conv_engine_name(ConvEngine e);
const char* conv_direction_name(ConvDirection d);  // "fwd", "dgrad", "wgrad"

struct ConvGraphOptions {
  ConvEngine engine = ConvEngine::Legacy;
  bool allow_nondeterministic = false;
  bool allow_transform = true;  // FFT / Winograd engines
  int64_t workspace_limit = int64_t{1} << 30;
  int autotune_top_k = 4;
  std::string cache_file;
  bool log = false;
};

// `env(name)` returns the variable's value or nullptr. Throws pneumo::Error on a malformed value.
using EnvLookup = std::function<const char*(const char*)>;
ConvGraphOptions parse_conv_graph_options(const EnvLookup& env);
// The process's options (parsed once from the real environment; the first call throws on a bad value).
const ConvGraphOptions& conv_graph_options();

// The engine of conv2d_*_cudnn (conv_cudnn.h): the override set by set_conv_engine (tests, benchmarks), else
// conv_graph_options().engine. clear_conv_engine_override returns to the environment's choice.
ConvEngine conv_engine();
void set_conv_engine(ConvEngine e);
void clear_conv_engine_override();

// One plan per (device, dtype, direction, geometry, pointer alignment, determinism policy).
struct ConvPlanKey {
  static constexpr size_t kFields = 21;
  std::array<int64_t, kFields> v{};
  bool operator<(const ConvPlanKey& o) const { return v < o.v; }
  bool operator==(const ConvPlanKey& o) const { return v == o.v; }
  // "dev0 bf16 dgrad x4x1024x1024x16 w16x3x3x16 y4x1024x1024x16 pad1,1,1,1 stride1,1 dil1,1 g1 align16 det"
  std::string str() const;
};
ConvPlanKey make_conv_plan_key(int device, DType dt, ConvDirection dir, const ConvShape& cs, int64_t alignment,
                               bool allow_nondeterministic);

// The largest of 16, 8, 4, 2 that divides every address (cuDNN's CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT).
int64_t common_alignment(std::initializer_list<const void*> pointers);

// cuDNN backend tensors are described in logical NCHW order with NHWC strides; the filter is [K, C/g, R, S]
// with KRSC strides (the group count is implied by C_x / C_w).
struct GraphTensorLayout {
  std::array<int64_t, 4> dims, strides;
};
GraphTensorLayout graph_x_layout(const ConvShape& cs);
GraphTensorLayout graph_w_layout(const ConvShape& cs);
GraphTensorLayout graph_y_layout(const ConvShape& cs);

// An engine's notes, as cuDNN reports them (CUDNN_ATTR_ENGINE_NUMERICAL_NOTE / _BEHAVIOR_NOTE).
struct EngineNotes {
  bool tensor_core = false, down_convert_inputs = false, reduced_precision_reduction = false;
  bool fft = false, winograd = false, nondeterministic = false;
  bool runtime_compilation = false;
};
// nullptr when the engine may run convolutions of dtype `dt` under `o`, else why not:
//  - non-deterministic, unless allow_nondeterministic;
//  - float32 on tensor cores or with down-converted inputs (TF32): float32 keeps FMA math, like legacy;
//  - reduced-precision reduction (bf16 accumulation): accumulation is float32;
//  - FFT/Winograd when allow_transform is off;
//  - runtime compilation (NVRTC at plan time, seconds per shape; fusion engines, not needed here).
const char* engine_rejection(const EngineNotes& notes, DType dt, const ConvGraphOptions& o);

// An engine configuration's identity: "eng<global index>" then "_k<knob type>=<value>" in knob order.
std::string engine_tag(int64_t global_index, const std::vector<std::pair<int64_t, int64_t>>& knobs);

// The on-disk plan cache: a header line, then "<key>\t<engine tag>" per line. parse returns false (and
// leaves `out` empty) for a file of another header (cuDNN version, device) or a malformed line, with the
// reason in *why.
std::string format_plan_cache(const std::string& header, const std::map<std::string, std::string>& entries);
bool parse_plan_cache(const std::string& text, const std::string& header, std::map<std::string, std::string>* out,
                      std::string* why);

}  // namespace pneumo::kernels::cuda
