// The shared test checkers (see checkers.h).
#include "support/checkers.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <sys/stat.h>

#include "tensor/ops.h"

namespace pneumo::test {

uint64_t fresh_seed() {
  static uint64_t base = [] {
    const char* env = std::getenv("PNEUMO_TEST_SEED");
    if (env && *env) return static_cast<uint64_t>(std::strtoull(env, nullptr, 10));
    return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }();
  static uint64_t counter = 0;
  return base * 6364136223846793005ULL + (++counter) * 1442695040888963407ULL;
}

Tolerance tolerance_for(DType dt) {
  switch (dt) {
    case DType::BF16: return {1e-2, 2e-2};
    case DType::F16: return {2e-3, 4e-3};
    case DType::F64: return {1e-10, 1e-10};
    default: return {1e-5, 1e-5};
  }
}

std::string close_message(const Tensor& actual, const Tensor& reference, Tolerance tol) {
  std::ostringstream os;
  if (!actual.defined() || !reference.defined()) return "undefined tensor in comparison";
  if (actual.numel() != reference.numel()) {
    os << "shape " << shape_str(actual.shape()) << " vs reference " << shape_str(reference.shape());
    return os.str();
  }
  std::vector<double> a = actual.to_vector_f64(), r = reference.to_vector_f64();
  // The absolute part scales with the reference's RMS so the tolerance means the same for any magnitude.
  double rms = 0;
  for (double v : r) rms += v * v;
  rms = r.empty() ? 0 : std::sqrt(rms / static_cast<double>(r.size()));
  double atol = tol.atol * std::max(1.0, rms);
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = std::fabs(a[i] - r[i]);
    bool ok = !std::isnan(a[i]) && !std::isnan(r[i]) && d <= atol + tol.rtol * std::fabs(r[i]);
    if (!ok) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++bad;
      if (!std::isnan(d)) worst = std::max(worst, d);
    }
  }
  if (!bad) return "";
  os << bad << " of " << a.size() << " elements differ (shape " << shape_str(reference.shape()) << ", atol " << atol
     << ", rtol " << tol.rtol << "); first at " << first << ": got " << a[static_cast<size_t>(first)] << ", want "
     << r[static_cast<size_t>(first)] << "; worst |diff| " << worst;
  return os.str();
}

namespace {
struct PoisonScope {
  PoisonScope() { set_poison_allocations(true); }
  ~PoisonScope() { set_poison_allocations(false); }
};
}  // namespace

namespace {
// |a - r|_2 / |r|_2 (1e30 on a shape mismatch or a non-finite value).
double relative_l2(const Tensor& actual, const Tensor& reference) {
  if (actual.numel() != reference.numel()) return 1e30;
  std::vector<double> a = actual.to_vector_f64(), r = reference.to_vector_f64();
  double d = 0, q = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return 1e30;
    d += (a[i] - r[i]) * (a[i] - r[i]);
    q += r[i] * r[i];
  }
  return std::sqrt(d / std::max(q, 1e-300));
}
}  // namespace

void compare_gpu_cpu(const VarFn& fn, const std::vector<Tensor>& inputs, const GpuCheckOptions& o) {
  ASSERT_TRUE(cuda::available()) << "compare_gpu_cpu needs a CUDA device";
  Tolerance tol = o.tol.atol < 0 ? tolerance_for(o.gpu_dtype) : o.tol;
  Tolerance gtol = o.grad_tol.atol < 0 ? tol : o.grad_tol;
  uint64_t seed = fresh_seed();
  auto leaves = [&](Device dev, DType dt) {
    std::vector<ag::Variable> vs;
    for (const Tensor& t : inputs) {
      bool fl = is_floating(t.dtype());
      // Both backends see the same values: floating inputs are first rounded to the GPU dtype, so a
      // difference measures the computation, not the rounding of the inputs (which a sum can amplify).
      Tensor v = fl ? t.to(o.gpu_dtype).to(DType::F32).to(dev, dt) : t.to(dev);
      vs.emplace_back(v, fl && o.backward);
    }
    return vs;
  };
  std::vector<ag::Variable> cpu_in = leaves(Device::cpu(), DType::F32);
  ag::Variable cpu_out = fn(cpu_in);
  Tensor proj = Tensor::normal(cpu_out.shape(), 0.f, 1.f, seed, 0, o.gpu_dtype).to(DType::F32);
  if (o.backward && cpu_out.requires_grad()) cpu_out.backward(proj);

  PoisonScope poison;
  std::vector<ag::Variable> gpu_in = leaves(Device::cuda(), o.gpu_dtype);
  ag::Variable gpu_out = fn(gpu_in);
  if (o.backward && gpu_out.requires_grad()) gpu_out.backward(proj.to(Device::cuda(), gpu_out.dtype()));
  cuda::synchronize();
  // PNEUMO_TEST_ERROR_REPORT=1 (bench/gpu/models_bf16_diagnosis.sh): one "LAYERERR" line per comparison with
  // the relative L2 error of the output and of every input gradient. Both backends saw identical (pre-rounded)
  // values, so in bf16 a correct op is off by its output's rounding only (relative RMS about 2^-9/sqrt(3) =
  // 1.1e-3); an op that stores an intermediate in bf16 shows several times that.
  if (env_flag("PNEUMO_TEST_ERROR_REPORT")) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::ostringstream os;
    os << "LAYERERR " << (info ? std::string(info->test_suite_name()) + "." + info->name() : std::string("?")) << " "
       << dtype_name(o.gpu_dtype) << " " << shape_str(cpu_out.shape()) << " out " << relative_l2(gpu_out.value(), cpu_out.value());
    for (size_t i = 0; o.backward && i < inputs.size(); ++i)
      if (cpu_in[i].requires_grad() && cpu_in[i].grad().defined() && gpu_in[i].grad().defined())
        os << " grad" << i << " " << relative_l2(gpu_in[i].grad(), cpu_in[i].grad());
    std::printf("%s\n", os.str().c_str());
  }
  std::string m = close_message(gpu_out.value(), cpu_out.value(), tol);
  EXPECT_TRUE(m.empty()) << "forward output (" << dtype_name(o.gpu_dtype) << ", seed " << seed << "): " << m;
  if (!o.backward) return;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    ASSERT_EQ(cpu_in[i].grad().defined(), gpu_in[i].grad().defined()) << "gradient presence differs for input " << i;
    if (!cpu_in[i].grad().defined()) continue;
    std::string gm = close_message(gpu_in[i].grad(), cpu_in[i].grad(), gtol);
    EXPECT_TRUE(gm.empty()) << "gradient of input " << i << " (" << dtype_name(o.gpu_dtype) << ", seed " << seed
                            << "): " << gm;
  }
}

void expect_gradcheck(const VarFn& fn, const std::vector<Tensor>& inputs_f64, const ag::GradcheckOptions& options) {
  ag::GradcheckResult r = ag::gradcheck(fn, inputs_f64, options);
  EXPECT_TRUE(r.ok) << r.message;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && std::string(v) != "0";
}

std::string shared_data(const std::string& relative) {
  std::string path = std::string(PNEUMO_SHARED_DATA) + "/" + relative;
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? path : std::string();
}

}  // namespace pneumo::test
