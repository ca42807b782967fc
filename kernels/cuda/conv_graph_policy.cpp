// Host-only pieces of the graph-API convolution path (see conv_graph_policy.h). No CUDA: built everywhere.
#include "kernels/cuda/conv_graph_policy.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "kernels/check.h"

namespace pneumo::kernels::cuda {

const char* conv_engine_name(ConvEngine e) { return e == ConvEngine::Graph ? "graph" : "legacy"; }

const char* conv_direction_name(ConvDirection d) {
  switch (d) {
    case ConvDirection::Forward: return "fwd";
    case ConvDirection::BackwardData: return "dgrad";
    case ConvDirection::BackwardWeight: return "wgrad";
  }
  return "?";
}

namespace {

[[noreturn]] void bad_value(const char* name, const char* value, const char* expected) {
  throw Error(std::string(name) + "='" + value + "': expected " + expected);
}

bool parse_flag(const EnvLookup& env, const char* name, bool fallback) {
  const char* v = env(name);
  if (!v || !*v) return fallback;
  if (!std::strcmp(v, "0")) return false;
  if (!std::strcmp(v, "1")) return true;
  bad_value(name, v, "0 or 1");
}

int64_t parse_int(const EnvLookup& env, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = env(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (errno || *end || x < lo || x > hi) {
    const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    bad_value(name, v, range.c_str());
  }
  return x;
}

}  // namespace

ConvGraphOptions parse_conv_graph_options(const EnvLookup& env) {
  ConvGraphOptions o;
  if (const char* e = env("PNEUMO_CONV_ENGINE"); e && *e) {
    if (!std::strcmp(e, "legacy")) o.engine = ConvEngine::Legacy;
    else if (!std::strcmp(e, "graph")) o.engine = ConvEngine::Graph;
    else bad_value("PNEUMO_CONV_ENGINE", e, "legacy or graph");
  }
  o.allow_nondeterministic = parse_flag(env, "PNEUMO_CONV_NONDETERMINISTIC", false);
  o.workspace_limit = parse_int(env, "PNEUMO_CONV_WORKSPACE_MB", 1024, 0, int64_t{1} << 20) << 20;
  o.autotune_top_k = static_cast<int>(parse_int(env, "PNEUMO_CONV_AUTOTUNE", 4, 1, 64));
  if (const char* f = env("PNEUMO_CONV_PLAN_CACHE"); f && *f) o.cache_file = f;
  if (const char* a = env("PNEUMO_CUDNN_ALGOS"); a && *a) {
    if (!std::strcmp(a, "no-transform")) o.allow_transform = false;
    else bad_value("PNEUMO_CUDNN_ALGOS", a, "no-transform or unset");
  }
  const char* log = env("PNEUMO_CUDNN_LOG");
  o.log = log && !std::strcmp(log, "1");
  return o;
}

const ConvGraphOptions& conv_graph_options() {
  static const ConvGraphOptions o = parse_conv_graph_options([](const char* n) { return std::getenv(n); });
  return o;
}

namespace {
std::atomic<int> g_engine_override{-1};  // -1: none
}  // namespace

ConvEngine conv_engine() {
  const int e = g_engine_override.load(std::memory_order_relaxed);
  return e < 0 ? conv_graph_options().engine : static_cast<ConvEngine>(e);
}
void set_conv_engine(ConvEngine e) { g_engine_override.store(static_cast<int>(e)); }
void clear_conv_engine_override() { g_engine_override.store(-1); }

ConvPlanKey make_conv_plan_key(int device, DType dt, ConvDirection dir, const ConvShape& cs, int64_t alignment,
                               bool allow_nondeterministic) {
  ConvPlanKey k;
  k.v = {device, static_cast<int64_t>(dt), static_cast<int64_t>(dir), cs.n, cs.h, cs.w, cs.c, cs.k, cs.r, cs.s,
         cs.pad_top, cs.pad_bottom, cs.pad_left, cs.pad_right, cs.stride_h, cs.stride_w, cs.dilation_h, cs.dilation_w,
         cs.groups, alignment, allow_nondeterministic ? 1 : 0};
  return k;
}

std::string ConvPlanKey::str() const {
  const auto& a = v;
  std::ostringstream os;
  os << "dev" << a[0] << ' ' << dtype_name(static_cast<DType>(a[1])) << ' '
     << conv_direction_name(static_cast<ConvDirection>(a[2])) << " x" << a[3] << 'x' << a[4] << 'x' << a[5] << 'x'
     << a[6] << " w" << a[7] << 'x' << a[8] << 'x' << a[9] << 'x' << (a[18] ? a[6] / a[18] : 0) << " pad" << a[10]
     << ',' << a[11] << ',' << a[12] << ',' << a[13] << " stride" << a[14] << ',' << a[15] << " dil" << a[16] << ','
     << a[17] << " g" << a[18] << " align" << a[19] << (a[20] ? " nondet" : " det");
  return os.str();
}

int64_t common_alignment(std::initializer_list<const void*> pointers) {
  uintptr_t bits = 0;
  for (const void* p : pointers) bits |= reinterpret_cast<uintptr_t>(p);
  for (int64_t a : {16, 8, 4, 2})
    if ((bits & static_cast<uintptr_t>(a - 1)) == 0) return a;
  return 1;
}

GraphTensorLayout graph_x_layout(const ConvShape& cs) {
  return {{cs.n, cs.c, cs.h, cs.w}, {cs.h * cs.w * cs.c, 1, cs.w * cs.c, cs.c}};
}
GraphTensorLayout graph_w_layout(const ConvShape& cs) {
  const int64_t cg = cs.c_per_group();
  return {{cs.k, cg, cs.r, cs.s}, {cs.r * cs.s * cg, 1, cs.s * cg, cg}};
}
GraphTensorLayout graph_y_layout(const ConvShape& cs) {
  return {{cs.n, cs.k, cs.oh, cs.ow}, {cs.oh * cs.ow * cs.k, 1, cs.ow * cs.k, cs.k}};
}

const char* engine_rejection(const EngineNotes& n, DType dt, const ConvGraphOptions& o) {
  if (n.nondeterministic && !o.allow_nondeterministic) return "non-deterministic";
  if (dt == DType::F32 && (n.tensor_core || n.down_convert_inputs))
    return "float32 on tensor cores (TF32): float32 keeps FMA math";
  if (n.down_convert_inputs) return "down-converts its inputs";
  if (n.reduced_precision_reduction) return "reduced-precision reduction (accumulation must be float32)";
  if (!o.allow_transform && (n.fft || n.winograd)) return "FFT/Winograd (PNEUMO_CUDNN_ALGOS=no-transform)";
  if (n.runtime_compilation) return "runtime compilation";
  return nullptr;
}

std::string engine_tag(int64_t global_index, const std::vector<std::pair<int64_t, int64_t>>& knobs) {
  std::string s = "eng" + std::to_string(global_index);
  for (const auto& k : knobs) s += "_k" + std::to_string(k.first) + "=" + std::to_string(k.second);
  return s;
}

std::string format_plan_cache(const std::string& header, const std::map<std::string, std::string>& entries) {
  std::string s = header + "\n";
  for (const auto& e : entries) s += e.first + "\t" + e.second + "\n";
  return s;
}

bool parse_plan_cache(const std::string& text, const std::string& header, std::map<std::string, std::string>* out,
                      std::string* why) {
  out->clear();
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != header) {
    *why = "its header '" + line.substr(0, 120) + "' is not '" + header + "'";
    return false;
  }
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 == line.size() || line.compare(tab + 1, 3, "eng") != 0 ||
        line.find('\t', tab + 1) != std::string::npos) {
      out->clear();
      *why = "line " + std::to_string(number) + " is not '<key>\\t<engine tag>'";
      return false;
    }
    (*out)[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return true;
}

}  // namespace pneumo::kernels::cuda
