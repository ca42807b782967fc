// Finite-difference gradient checker (float64, central differences) and its input helper.
// The scalar checked is L = <fn(x), R> for a fixed random R, so every output element contributes; the
// analytic side seeds backward with R directly, so the check does not rely on mul/sum being right.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kernels/check.h"
#include "kernels/philox.h"

namespace pneumo::ag {
namespace {

double dot_with(const Tensor& out, const std::vector<double>& r) {
  std::vector<double> v = out.to_vector_f64();
  double acc = 0;
  for (size_t i = 0; i < v.size(); ++i) acc += v[i] * r[i];
  return acc;
}

std::vector<Variable> make_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t, is_floating(t.dtype()));
  return vars;
}

}  // namespace

Tensor random_away_from(const Shape& shape, double lo, double hi, const std::vector<double>& kinks, double margin,
                        uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::F64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    for (uint64_t attempt = 0;; ++attempt) {
      double u = philox_uniform01(philox4x32_10(static_cast<uint64_t>(i), attempt, seed).v[0]);
      double x = lo + (hi - lo) * u;
      bool ok = true;
      for (double k : kinks) ok = ok && std::fabs(x - k) >= margin;
      if (ok || attempt > 1000) {
        p[i] = x;
        break;
      }
    }
  }
  return t;
}

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Tensor>& inputs_in, const GradcheckOptions& o) {
  GradcheckResult result;
  std::vector<Tensor> inputs;
  for (const Tensor& t : inputs_in) {
    PNEUMO_CHECK(t.device().is_cpu() && (t.dtype() == DType::F64 || !is_floating(t.dtype())),
                 "gradcheck needs float64 CPU inputs, got ", dtype_name(t.dtype()), " on ", t.device().str());
    inputs.push_back(t.clone());
  }
  // Analytic gradients.
  std::vector<Variable> vars = make_leaves(inputs);
  Variable out = fn(vars);
  PNEUMO_CHECK(out.dtype() == DType::F64, "gradcheck: the function returned ", dtype_name(out.dtype()), ", not float64");
  Tensor r = Tensor::normal(out.shape(), 0.f, 1.f, o.seed, 7, DType::F64);
  std::vector<double> rv = r.to_vector_f64();
  if (!out.requires_grad()) {
    result.ok = false;
    result.message = "output does not require grad: no input reaches it through recorded ops";
    return result;
  }
  out.backward(r);
  std::vector<Tensor> analytic;
  for (const Variable& v : vars) analytic.push_back(v.grad());

  for (size_t i = 0; i < inputs.size() && result.ok; ++i) {
    if (!is_floating(inputs[i].dtype())) continue;
    Tensor& x = inputs[i];
    double* xp = x.data<double>();
    std::vector<double> ga = analytic[i].defined() ? analytic[i].to_vector_f64() : std::vector<double>(x.numel(), 0.0);
    // Which elements: all, or a fixed random subset of large inputs.
    std::vector<int64_t> elems;
    if (x.numel() <= o.max_elements_per_input) {
      for (int64_t j = 0; j < x.numel(); ++j) elems.push_back(j);
    } else {
      for (int j = 0; j < o.max_elements_per_input; ++j)
        elems.push_back(static_cast<int64_t>(philox4x32_10(j, i, o.seed).v[0] % static_cast<uint64_t>(x.numel())));
    }
    NoGradGuard no_grad;
    for (int64_t j : elems) {
      double orig = xp[j];
      double h = o.step * std::max(1.0, std::fabs(orig));
      auto eval = [&](double v) {
        xp[j] = v;
        std::vector<Variable> vs = make_leaves(inputs);
        return dot_with(fn(vs).value(), rv);
      };
      double lp = eval(orig + h), lm = eval(orig - h), l0 = eval(orig);
      xp[j] = orig;
      double num = (lp - lm) / (2 * h);
      double ana = ga[static_cast<size_t>(j)];
      if (!(std::fabs(ana - num) <= o.atol + o.rtol * std::fabs(num))) {
        std::ostringstream os;
        os << "gradient mismatch: input " << i << " " << shape_str(x.shape()) << " element " << j << " (value " << orig
           << "): analytic " << ana << ", numeric " << num;
        double right = (lp - l0) / h, left = (l0 - lm) / h;
        if (std::fabs(right - left) > 1e3 * (o.atol + o.rtol * std::fabs(num)) + 1e-4 * (1 + std::fabs(num)))
          os << " -- one-sided slopes " << left << " / " << right
             << " disagree: the point sits on a kink; draw inputs with random_away_from";
        result.ok = false;
        result.message = os.str();
        break;
      }
    }
  }
  if (!result.ok || !o.check_accumulation) return result;

  // Accumulation: with a pre-existing gradient G0, backward must leave G0 + g.
  std::vector<Variable> vars2 = make_leaves(inputs);
  std::vector<Tensor> g0;
  for (size_t i = 0; i < vars2.size(); ++i) {
    if (!vars2[i].requires_grad()) {
      g0.emplace_back();
      continue;
    }
    g0.push_back(Tensor::normal(inputs[i].shape(), 0.f, 1.f, o.seed + 1, i, DType::F64));
    vars2[i].mutable_grad() = g0.back().clone();
  }
  fn(vars2).backward(r);
  for (size_t i = 0; i < vars2.size(); ++i) {
    if (!g0[i].defined() || !analytic[i].defined()) continue;
    std::vector<double> got = vars2[i].grad().to_vector_f64(), base = g0[i].to_vector_f64(),
                        g = analytic[i].to_vector_f64();
    for (size_t j = 0; j < got.size(); ++j) {
      double want = base[j] + g[j];
      if (std::fabs(got[j] - want) > 1e-9 * (1 + std::fabs(want))) {
        std::ostringstream os;
        os << "backward does not accumulate into input " << i << " element " << j << ": had " << base[j]
           << ", gradient " << g[j] << ", got " << got[j];
        result.ok = false;
        result.message = os.str();
        return result;
      }
    }
  }
  return result;
}

}  // namespace pneumo::ag
