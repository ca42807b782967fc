// cuDNN backend-API convolution (see conv_graph.h). Compiled only in CUDA builds.
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/conv_graph.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "kernels/atomic_file.h"
#include "kernels/cuda/cuda_util.h"

namespace pneumo::kernels::cuda {
namespace {

struct CaptureUnderway : Error {  // a plan build asked for inside a CUDA Graph capture: rethrown, not cached
  using Error::Error;
};
// A failure while building a plan: caught by conv2d_graph, which then falls back to legacy for the key.
struct BuildError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void ok(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  char detail[256] = {0};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw BuildError(std::string(what) + ": " + cudnnGetErrorString(s) + (detail[0] ? std::string(" (") + detail + ")" : ""));
}

// An owned backend descriptor.
class Desc {
 public:
  Desc() = default;
  explicit Desc(cudnnBackendDescriptorType_t type) { ok(cudnnBackendCreateDescriptor(type, &d_), "create descriptor"); }
  ~Desc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  Desc(Desc&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  Desc& operator=(Desc&& o) noexcept {
    std::swap(d_, o.d_);
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return d_; }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* value,
           const char* what) {
    ok(cudnnBackendSetAttribute(d_, name, type, count, value), what);
  }
  void set_desc(cudnnBackendAttributeName_t name, const Desc& other, const char* what) {
    cudnnBackendDescriptor_t o = other.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &o, what);
  }
  void finalize(const char* what) { ok(cudnnBackendFinalize(d_), what); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// Every descriptor a plan was built from, kept alive as long as the plan (as cudnn-frontend does: the plan's
// engine configuration refers to its engine, operation graph, operation and tensors).
struct Parts {
  std::vector<std::unique_ptr<Desc>> all;
  Desc& add(cudnnBackendDescriptorType_t type) {
    all.push_back(std::make_unique<Desc>(type));
    return *all.back();
  }
};

// One cuDNN handle per device for the graph path; `mu` serialises setting its stream and executing.
struct DeviceHandle {
  cudnnHandle_t h = nullptr;
  std::mutex mu;
};
DeviceHandle& handle_for(int device) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<DeviceHandle>> handles;  // for the life of the process
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = handles[device];
  if (!slot) {
    auto d = std::make_unique<DeviceHandle>();
    DeviceGuard guard(device);
    PNEUMO_CUDNN_CHECK(cudnnCreate(&d->h));
    slot = std::move(d);
  }
  return *slot;
}

cudnnDataType_t data_type(DType dt) {
  if (dt == DType::F32) return CUDNN_DATA_FLOAT;
  if (dt == DType::BF16) return CUDNN_DATA_BFLOAT16;
  throw BuildError(std::string("dtype ") + dtype_name(dt) + " (the graph path takes F32 and BF16)");
}

constexpr int64_t kUidA = 1, kUidB = 2, kUidOut = 3;

Desc& tensor(Parts& parts, const GraphTensorLayout& l, cudnnDataType_t t, int64_t uid, int64_t alignment) {
  Desc& d = parts.add(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t, "tensor data type");
  d.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, l.dims.data(), "tensor dimensions");
  d.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, l.strides.data(), "tensor strides");
  d.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor unique id");
  d.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, "tensor alignment");
  d.finalize("finalize tensor");
  return d;
}

Desc& convolution(Parts& parts, const ConvShape& cs) {
  Desc& d = parts.add(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t dims = 2;
  const int64_t dilation[2] = {cs.dilation_h, cs.dilation_w}, stride[2] = {cs.stride_h, cs.stride_w};
  const int64_t pre[2] = {cs.pad_top, cs.pad_left}, post[2] = {cs.pad_bottom, cs.pad_right};
  d.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute, "convolution compute type");
  d.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, "convolution mode");
  d.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims, "convolution spatial dims");
  d.set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation, "convolution dilations");
  d.set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride, "convolution strides");
  d.set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pre, "convolution pre-paddings");
  d.set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, post, "convolution post-paddings");
  d.finalize("finalize convolution");
  return d;
}

// The operation of one direction. Variant-pack uids: a (x or dy) = 1, b (w or x) = 2, out (y, dx or dw) = 3.
Desc& operation(Parts& parts, ConvDirection dir, DType dt, const ConvShape& cs, int64_t alignment) {
  const cudnnDataType_t t = data_type(dt);
  const Desc& conv = convolution(parts, cs);
  const float alpha = 1.f, beta = 0.f;
  if (dir == ConvDirection::Forward) {
    const Desc &x = tensor(parts, graph_x_layout(cs), t, kUidA, alignment), &w = tensor(parts, graph_w_layout(cs), t, kUidB, alignment),
               &y = tensor(parts, graph_y_layout(cs), t, kUidOut, alignment);
    Desc& op = parts.add(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x, "forward x");
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w, "forward w");
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y, "forward y");
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv, "forward conv");
    op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha, "forward alpha");
    op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta, "forward beta");
    op.finalize("finalize forward operation");
    return op;
  }
  if (dir == ConvDirection::BackwardData) {
    const Desc &dy = tensor(parts, graph_y_layout(cs), t, kUidA, alignment), &w = tensor(parts, graph_w_layout(cs), t, kUidB, alignment),
               &dx = tensor(parts, graph_x_layout(cs), t, kUidOut, alignment);
    Desc& op = parts.add(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR);
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, dy, "dgrad dy");
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, w, "dgrad w");
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, dx, "dgrad dx");
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, conv, "dgrad conv");
    op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha, "dgrad alpha");
    op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, 1, &beta, "dgrad beta");
    op.finalize("finalize dgrad operation");
    return op;
  }
  const Desc &dy = tensor(parts, graph_y_layout(cs), t, kUidA, alignment), &x = tensor(parts, graph_x_layout(cs), t, kUidB, alignment),
             &dw = tensor(parts, graph_w_layout(cs), t, kUidOut, alignment);
  Desc& op = parts.add(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR);
  op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, dy, "wgrad dy");
  op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, x, "wgrad x");
  op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, dw, "wgrad dw");
  op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, conv, "wgrad conv");
  op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha, "wgrad alpha");
  op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, 1, &beta, "wgrad beta");
  op.finalize("finalize wgrad operation");
  return op;
}

// What the heuristics propose for one engine configuration.
struct Candidate {
  std::shared_ptr<Parts> parts;   // what the plan was built from
  std::shared_ptr<Desc> config;   // its engine configuration
  std::shared_ptr<Desc> plan;
  std::string tag;  // "" when the knobs could not be read (then never written to the disk cache)
  int64_t workspace = 0;
  float ms = 0;
};

EngineNotes notes_of(const Desc& engine) {
  EngineNotes n;
  // Room for every note type, as cudnn-frontend asks.
  constexpr int64_t kNum = CUDNN_NUMERICAL_NOTE_TYPE_COUNT, kBeh = CUDNN_BEHAVIOR_NOTE_TYPE_COUNT;
  cudnnBackendNumericalNote_t num[kNum];
  int64_t count = 0;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, kNum, &count,
                               num) == CUDNN_STATUS_SUCCESS)
    for (int64_t i = 0; i < std::min(count, kNum); ++i) switch (num[i]) {
        case CUDNN_NUMERICAL_NOTE_TENSOR_CORE: n.tensor_core = true; break;
        case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS: n.down_convert_inputs = true; break;
        case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION: n.reduced_precision_reduction = true; break;
        case CUDNN_NUMERICAL_NOTE_FFT: n.fft = true; break;
        case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC: n.nondeterministic = true; break;
        case CUDNN_NUMERICAL_NOTE_WINOGRAD:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13: n.winograd = true; break;
        default: break;
      }
  else
    throw BuildError("engine numerical notes unreadable");  // unknown notes: never run an engine blind
  cudnnBackendBehaviorNote_t beh[kBeh];
  count = 0;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE, kBeh, &count,
                               beh) == CUDNN_STATUS_SUCCESS)
    for (int64_t i = 0; i < std::min(count, kBeh); ++i)
      if (beh[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) n.runtime_compilation = true;
  return n;
}

std::string tag_of(const Desc& cfg, const Desc& engine) {
  int64_t index = -1, count = 0;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &count, &index) !=
      CUDNN_STATUS_SUCCESS)
    return "";
  // At most one choice per knob type: room for all of them (as cudnn-frontend asks).
  const int64_t knobs = CUDNN_KNOB_TYPE_COUNTS;
  std::vector<Desc> choices;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < knobs; ++i) {
    choices.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    raw.push_back(choices.back().get());
  }
  int64_t got = 0;
  if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR, knobs, &got,
                               raw.data()) != CUDNN_STATUS_SUCCESS)
    return "";
  std::vector<std::pair<int64_t, int64_t>> kv;
  for (int64_t i = 0; i < std::min(got, knobs); ++i) {
    cudnnBackendKnobType_t type;
    int64_t value = 0, n = 0;
    if (cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &n, &type) !=
            CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &n, &value) !=
            CUDNN_STATUS_SUCCESS)
      return "";
    kv.emplace_back(static_cast<int64_t>(type), value);
  }
  return engine_tag(index, kv);
}

// ---- the plan cache --------------------------------------------------------------------------------
struct Entry {
  bool failed = false;
  std::atomic<bool> ran{false};  // executed successfully once (a first failure still falls back)
  std::string why;  // failed: the reason
  Candidate chosen;
};

std::mutex g_mu;  // guards everything below; builds happen under it (rare: once per key)
std::map<ConvPlanKey, std::unique_ptr<Entry>> g_entries;
ConvGraphStats g_stats;
std::atomic<bool> g_inject{false};
bool g_disk_loaded = false;
std::map<std::string, std::string> g_disk;  // key string -> engine tag
std::string g_disk_header;

std::string disk_header(int device) {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return "";
  return "pneumo-conv-plan-cache v1 cudnn " + std::to_string(cudnnGetVersion()) + " " + p.name + " sm" +
         std::to_string(p.major) + std::to_string(p.minor);
}

void load_disk_cache(const ConvGraphOptions& o, int device) {
  if (g_disk_loaded || o.cache_file.empty()) return;
  g_disk_loaded = true;
  g_disk_header = disk_header(device);
  std::ifstream f(o.cache_file, std::ios::binary);
  if (!f) return;  // not yet written
  std::stringstream text;
  text << f.rdbuf();
  std::string why;
  if (!parse_plan_cache(text.str(), g_disk_header, &g_disk, &why))
    std::fprintf(stderr, "pneumo: conv plan cache %s ignored: %s\n", o.cache_file.c_str(), why.c_str());
}

void save_disk_cache(const ConvGraphOptions& o) {
  if (o.cache_file.empty() || g_disk_header.empty()) return;
  try {
    write_file_atomic(o.cache_file, format_plan_cache(g_disk_header, g_disk));
  } catch (const std::exception& e) {
    static bool said = false;
    if (!said) std::fprintf(stderr, "pneumo: conv plan cache not written: %s\n", e.what());
    said = true;
  }
}

struct Scratch {  // workspace from the caller's allocator, released on scope exit
  void* ptr = nullptr;
  int device;
  const WorkspaceAllocator& alloc;
  Scratch(int64_t bytes, int dev, const WorkspaceAllocator& a) : device(dev), alloc(a) {
    if (bytes > 0) ptr = alloc.allocate(static_cast<size_t>(bytes), device);
  }
  ~Scratch() {
    if (ptr) alloc.release(ptr, device);
  }
};

cudnnStatus_t execute(DeviceHandle& dh, cudaStream_t stream, const Desc& plan, const void* a, const void* b, void* out,
                      void* workspace) {
  const int64_t uids[3] = {kUidA, kUidB, kUidOut};
  void* ptrs[3] = {const_cast<void*>(a), const_cast<void*>(b), out};
  cudnnBackendDescriptor_t pack = nullptr;
  cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(pack);
  if (s == CUDNN_STATUS_SUCCESS) {
    std::lock_guard<std::mutex> lock(dh.mu);
    s = cudnnSetStream(dh.h, stream);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(dh.h, plan.get(), pack);
  }
  cudnnBackendDestroyDescriptor(pack);
  return s;
}

// Times one candidate on the real buffers (they are overwritten by the caller's call right after): one
// warm-up, then the mean of 3. A candidate that cannot allocate its workspace or fails to run is dropped.
bool time_candidate(Candidate& c, DeviceHandle& dh, cudaStream_t stream, const void* a, const void* b, void* out,
                    int device, const WorkspaceAllocator& alloc) {
  std::unique_ptr<Scratch> ws;
  try {
    ws = std::make_unique<Scratch>(c.workspace, device, alloc);
  } catch (const Error&) {  // its workspace does not fit: dropped (a CUDA fault below is not swallowed)
    return false;
  }
  if (execute(dh, stream, *c.plan, a, b, out, ws->ptr) != CUDNN_STATUS_SUCCESS) return false;
  struct Events {
    cudaEvent_t e[2] = {nullptr, nullptr};
    ~Events() {
      for (cudaEvent_t x : e)
        if (x) cudaEventDestroy(x);
    }
  } ev;
  PNEUMO_CUDA_CHECK(cudaEventCreate(&ev.e[0]));
  PNEUMO_CUDA_CHECK(cudaEventCreate(&ev.e[1]));
  PNEUMO_CUDA_CHECK(cudaEventRecord(ev.e[0], stream));
  bool good = true;
  for (int i = 0; i < 3 && good; ++i) good = execute(dh, stream, *c.plan, a, b, out, ws->ptr) == CUDNN_STATUS_SUCCESS;
  PNEUMO_CUDA_CHECK(cudaEventRecord(ev.e[1], stream));
  PNEUMO_CUDA_CHECK(cudaEventSynchronize(ev.e[1]));
  float ms = 0;
  PNEUMO_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.e[0], ev.e[1]));
  c.ms = ms / 3;
  return good;
}

Candidate build(const ConvPlanKey& key, ConvDirection dir, DType dt, const ConvShape& cs, int64_t alignment,
                const void* a, const void* b, void* out, int device, cudaStream_t stream,
                const WorkspaceAllocator& alloc, const ConvGraphOptions& o) {
  if (g_inject.load()) throw BuildError("injected failure (conv_graph_inject_build_failures)");
  // Autotuning under capture would fail and mark the key failed for the process: refused, nothing cached.
  try {
    require_not_capturing(stream, "conv2d (cuDNN graph) plan build");
  } catch (const Error& e) {
    throw CaptureUnderway(e.what());
  }
  DeviceGuard guard(device);
  DeviceHandle& dh = handle_for(device);
  auto parts = std::make_shared<Parts>();
  const Desc& op = operation(*parts, dir, dt, cs, alignment);
  Desc& graph = parts->add(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnBackendDescriptor_t ops[1] = {op.get()};
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, ops, "graph ops");
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &dh.h, "graph handle");
  graph.finalize("finalize operation graph");

  const std::string key_str = key.str();
  const size_t want = static_cast<size_t>(o.autotune_top_k);
  std::map<std::string, int> rejected;  // reason -> count, for the failure message
  int proposed = 0;
  // The usable plans in heuristics order (mode A, then B, then FALLBACK, each engine configuration once),
  // up to `want`; with a remembered tag, only that configuration.
  auto collect = [&](const std::string& wanted) {
    std::vector<Candidate> usable;
    std::set<std::string> seen;
    rejected.clear();
    proposed = 0;
    auto done = [&] { return usable.size() >= (wanted.empty() ? want : 1); };
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_B, CUDNN_HEUR_MODE_FALLBACK}) {
      if (done()) break;
      Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, "heuristics graph");
      heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
      if (cudnnBackendFinalize(heur.get()) != CUDNN_STATUS_SUCCESS) continue;
      int64_t count = 0;
      if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                   nullptr) != CUDNN_STATUS_SUCCESS ||
          count <= 0)
        continue;
      std::vector<std::shared_ptr<Desc>> cfgs;
      std::vector<cudnnBackendDescriptor_t> raw;
      for (int64_t i = 0; i < count; ++i) {
        cfgs.push_back(std::make_shared<Desc>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
        raw.push_back(cfgs.back()->get());
      }
      int64_t got = 0;
      if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                   &got, raw.data()) != CUDNN_STATUS_SUCCESS)
        continue;
      for (int64_t i = 0; i < std::min(got, count) && !done(); ++i) {
        Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
        cudnnBackendDescriptor_t e = engine.get();
        int64_t n = 0;
        if (cudnnBackendGetAttribute(cfgs[i]->get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                     &e) != CUDNN_STATUS_SUCCESS)
          continue;
        const std::string tag = tag_of(*cfgs[i], engine);
        if (!tag.empty() && !seen.insert(tag).second) continue;  // proposed again by a later mode
        ++proposed;
        if (!wanted.empty() && tag != wanted) continue;
        EngineNotes notes;
        try {
          notes = notes_of(engine);
        } catch (const BuildError& err) {
          ++rejected[err.what()];
          continue;
        }
        if (const char* why = engine_rejection(notes, dt, o)) {
          ++rejected[why];
          if (o.log)
            std::fprintf(stderr, "pneumo: conv2d graph %s: %s rejected: %s\n", key_str.c_str(), tag.c_str(), why);
          continue;
        }
        Candidate c;
        c.parts = parts;
        c.config = cfgs[i];
        c.plan = std::make_shared<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        c.tag = tag;
        c.plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &dh.h, "plan handle");
        c.plan->set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, *cfgs[i], "plan engine config");
        if (cudnnBackendFinalize(c.plan->get()) != CUDNN_STATUS_SUCCESS) {
          ++rejected["plan does not finalize"];
          continue;
        }
        if (cudnnBackendGetAttribute(c.plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                     &c.workspace) != CUDNN_STATUS_SUCCESS) {
          ++rejected["workspace size unreadable"];
          continue;
        }
        if (c.workspace > o.workspace_limit) {
          ++rejected["workspace over PNEUMO_CONV_WORKSPACE_MB"];
          continue;
        }
        usable.push_back(std::move(c));
      }
    }
    return usable;
  };

  auto disk = g_disk.find(key_str);
  if (disk != g_disk.end()) {
    std::vector<Candidate> remembered = collect(disk->second);
    if (!remembered.empty()) {
      ++g_stats.disk_hits;
      return remembered.front();
    }
  }
  std::vector<Candidate> usable = collect("");
  if (usable.empty()) {
    std::string why = "no usable engine among " + std::to_string(proposed) + " proposed";
    for (const auto& r : rejected) why += "; " + std::to_string(r.second) + " " + r.first;
    throw BuildError(why);
  }
  size_t best = 0;
  if (usable.size() > 1) {
    std::vector<Candidate> timed;
    for (Candidate& c : usable) {
      ++g_stats.plans_timed;
      if (time_candidate(c, dh, stream, a, b, out, device, alloc)) timed.push_back(c);
    }
    if (timed.empty()) throw BuildError("no candidate plan ran (" + std::to_string(usable.size()) + " timed)");
    usable = std::move(timed);
    for (size_t i = 1; i < usable.size(); ++i)
      if (usable[i].ms < usable[best].ms) best = i;
  }
  return usable[best];
}

}  // namespace

bool conv2d_graph(ConvDirection dir, DType dt, const ConvShape& cs, const void* a, const void* b, void* out, int device,
                  cudaStream_t stream, const WorkspaceAllocator& alloc) {
  const ConvGraphOptions& o = conv_graph_options();
  const int64_t alignment = common_alignment({a, b, out});
  const ConvPlanKey key = make_conv_plan_key(device, dt, dir, cs, alignment, o.allow_nondeterministic);
  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_entries.find(key);
    if (it == g_entries.end()) {
      load_disk_cache(o, device);
      auto e = std::make_unique<Entry>();
      try {
        e->chosen = build(key, dir, dt, cs, alignment, a, b, out, device, stream, alloc, o);
        ++g_stats.plans_built;
        if (!e->chosen.tag.empty() && !o.cache_file.empty() && g_disk[key.str()] != e->chosen.tag) {
          g_disk[key.str()] = e->chosen.tag;
          save_disk_cache(o);
        }
        if (o.log)
          std::fprintf(stderr, "pneumo: conv2d graph %s: %s, workspace %.1f MiB%s\n", key.str().c_str(),
                       e->chosen.tag.c_str(), e->chosen.workspace / 1048576.0,
                       e->chosen.ms > 0 ? (", " + std::to_string(e->chosen.ms) + " ms (fastest timed)").c_str() : "");
      } catch (const CaptureUnderway&) {
        throw;
      } catch (const std::exception& err) {  // BuildError, or a CUDA/allocator error while building
        e->failed = true;
        e->why = err.what();
        ++g_stats.failed_keys;
        std::fprintf(stderr, "pneumo: conv2d graph plan for %s failed (%s); using the legacy cuDNN path for it\n",
                     key.str().c_str(), e->why.c_str());
      }
      it = g_entries.emplace(key, std::move(e)).first;
    } else if (!it->second->failed) {
      ++g_stats.cache_hits;
    }
    entry = it->second.get();
    if (entry->failed) {
      ++g_stats.fallback_calls;
      return false;
    }
  }
  DeviceGuard guard(device);
  Scratch ws(entry->chosen.workspace, device, alloc);
  const cudnnStatus_t s = execute(handle_for(device), stream, *entry->chosen.plan, a, b, out, ws.ptr);
  if (s == CUDNN_STATUS_SUCCESS) {
    entry->ran.store(true);
    return true;
  }
  // A plan that never ran is treated like one that did not build; one that has run is a real error.
  PNEUMO_CHECK(!entry->ran.load(), "conv2d (cuDNN graph ", key.str(), ", ", entry->chosen.tag,
               "): execution failed: ", cudnnGetErrorString(s));
  std::lock_guard<std::mutex> lock(g_mu);
  if (!entry->failed) {
    entry->failed = true;
    entry->why = std::string("first execution failed: ") + cudnnGetErrorString(s);
    ++g_stats.failed_keys;
    std::fprintf(stderr, "pneumo: conv2d graph plan for %s failed (%s); using the legacy cuDNN path for it\n",
                 key.str().c_str(), entry->why.c_str());
  }
  ++g_stats.fallback_calls;
  return false;
}

ConvGraphStats conv_graph_stats() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_stats;
}

size_t conv_graph_cache_size() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_entries.size();
}

std::string conv_graph_choice(ConvDirection dir, DType dt, const ConvShape& cs, int device, int64_t alignment) {
  const ConvPlanKey key =
      make_conv_plan_key(device, dt, dir, cs, alignment, conv_graph_options().allow_nondeterministic);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_entries.find(key);
  if (it == g_entries.end()) return "";
  return it->second->failed ? "failed: " + it->second->why : it->second->chosen.tag;
}

std::string conv_graph_validate(ConvDirection dir, DType dt, const ConvShape& cs, int64_t alignment) {
  try {
    Parts parts;
    operation(parts, dir, dt, cs, alignment);
    return "";
  } catch (const BuildError& e) {
    return e.what();
  }
}

void conv_graph_inject_build_failures(bool on) { g_inject.store(on); }

}  // namespace pneumo::kernels::cuda
#endif  // PNEUMO_WITH_CUDA
