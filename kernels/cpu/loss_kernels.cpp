// CPU reference of BCE-with-logits, focal and soft dice (see loss_kernels.h). Element math in double,
// sums in double (a fixed OpenMP reduction order per thread count is fine for the oracle).
#include "kernels/cpu/loss_kernels.h"

#include <algorithm>
#include <cmath>

#include "kernels/check.h"
#include "kernels/cpu/profile.h"

namespace pneumo::kernels::cpu {
namespace {

double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }
// log(1 + exp(z)) without overflow.
double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::fabs(z))); }

// Elementwise loss and its derivative d loss / d x for one logit x and target t.
void binary_loss_element(int kind, double gamma, double x, double t, double* value, double* grad) {
  const double bce = softplus(x) - x * t;  // = max(x,0) - x t + log(1 + exp(-|x|))
  const double dbce = sigmoid(x) - t;
  if (kind == 0) {
    if (value) *value = bce;
    if (grad) *grad = dbce;
    return;
  }
  // focal: w = exp(gamma * logsigmoid(z)), z = -x (2t - 1); d logsigmoid(z)/dz = sigmoid(-z).
  const double sign = 2.0 * t - 1.0;
  const double z = -x * sign;
  const double log_sig = -softplus(-z);
  const double w = std::exp(gamma * log_sig);
  if (value) *value = bce * w;
  if (grad) *grad = dbce * w + bce * w * gamma * sigmoid(-z) * (-sign);
}

template <typename T, typename Acc>
void binary_forward_impl(int kind, double gamma, const T* x, const T* t, int64_t n, Acc* loss) {
  double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double v;
    binary_loss_element(kind, gamma, static_cast<double>(x[i]), static_cast<double>(t[i]), &v, nullptr);
    total += v;
  }
  *loss = static_cast<Acc>(total / static_cast<double>(n));
}

template <typename T, typename Acc>
void binary_backward_impl(int kind, double gamma, const T* x, const T* t, int64_t n, const Acc* grad_loss, T* dx) {
  const double scale = static_cast<double>(*grad_loss) / static_cast<double>(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double g;
    binary_loss_element(kind, gamma, static_cast<double>(x[i]), static_cast<double>(t[i]), nullptr, &g);
    dx[i] = static_cast<T>(g * scale);
  }
}

constexpr double kDiceClampMax = 1.0 - 1e-7;

template <typename T, typename Acc>
void dice_forward_impl(const T* x, const T* t, int64_t B, int64_t M, double smooth, Acc* stats, Acc* loss) {
  double score = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    double pt = 0.0, pp = 0.0, tt = 0.0;
#pragma omp parallel for reduction(+ : pt, pp, tt) schedule(static)
    for (int64_t i = 0; i < M; ++i) {
      const double p = sigmoid(static_cast<double>(x[b * M + i]));
      const double tv = static_cast<double>(t[b * M + i]);
      pt += p * tv;
      pp += p * p;
      tt += tv * tv;
    }
    const double num = pt + smooth, den = pp + tt + smooth;
    stats[2 * b] = static_cast<Acc>(num);
    stats[2 * b + 1] = static_cast<Acc>(den);
    score += 2.0 * (num / den);
  }
  score /= static_cast<double>(B);
  stats[2 * B] = static_cast<Acc>(score);
  const double clamped = std::min(std::max(score, 0.0), kDiceClampMax);
  *loss = static_cast<Acc>(1.0 - clamped);
}

template <typename T, typename Acc>
void dice_backward_impl(const T* x, const T* t, int64_t B, int64_t M, const Acc* stats, const Acc* grad_loss, T* dx) {
  const double score = static_cast<double>(stats[2 * B]);
  const bool passes = score >= 0.0 && score <= kDiceClampMax;
  // d loss / d dice_i = -2 / B (inside the clamp), d dice_i / d p = (t den - 2 p num) / den^2.
  const double outer = passes ? -2.0 * static_cast<double>(*grad_loss) / static_cast<double>(B) : 0.0;
  for (int64_t b = 0; b < B; ++b) {
    const double num = static_cast<double>(stats[2 * b]), den = static_cast<double>(stats[2 * b + 1]);
    const double coef = outer / (den * den);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; ++i) {
      const double p = sigmoid(static_cast<double>(x[b * M + i]));
      const double tv = static_cast<double>(t[b * M + i]);
      dx[b * M + i] = static_cast<T>(coef * (tv * den - 2.0 * p * num) * p * (1.0 - p));
    }
  }
}

void check_kind(int kind) { PNEUMO_CHECK(kind == 0 || kind == 1, "binary loss kind ", kind, " (0 BCE, 1 focal)"); }

}  // namespace

void binary_loss_forward(DType dt, BinaryLoss kind_code, double gamma, const void* logits, const void* targets, int64_t n,
                         void* loss) {
  PNEUMO_CPU_SCOPE("binary_loss_forward");
  const int kind = static_cast<int>(kind_code);
  check_kind(kind);
  PNEUMO_CHECK(n > 0, "binary loss: empty input");
  if (dt == DType::F32)
    binary_forward_impl(kind, gamma, static_cast<const float*>(logits), static_cast<const float*>(targets), n,
                        static_cast<float*>(loss));
  else if (dt == DType::F64)
    binary_forward_impl(kind, gamma, static_cast<const double*>(logits), static_cast<const double*>(targets), n,
                        static_cast<double*>(loss));
  else
    PNEUMO_FAIL("binary loss (CPU): dtype ", dtype_name(dt), " not supported (F32, F64)");
}

void binary_loss_backward(DType dt, BinaryLoss kind_code, double gamma, const void* logits, const void* targets, int64_t n,
                          const void* grad_loss, void* dlogits) {
  PNEUMO_CPU_SCOPE("binary_loss_backward");
  const int kind = static_cast<int>(kind_code);
  check_kind(kind);
  if (dt == DType::F32)
    binary_backward_impl(kind, gamma, static_cast<const float*>(logits), static_cast<const float*>(targets), n,
                         static_cast<const float*>(grad_loss), static_cast<float*>(dlogits));
  else if (dt == DType::F64)
    binary_backward_impl(kind, gamma, static_cast<const double*>(logits), static_cast<const double*>(targets), n,
                         static_cast<const double*>(grad_loss), static_cast<double*>(dlogits));
  else
    PNEUMO_FAIL("binary loss (CPU): dtype ", dtype_name(dt), " not supported (F32, F64)");
}

void soft_dice_forward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                       double smooth, void* stats, void* loss) {
  PNEUMO_CPU_SCOPE("soft_dice_forward");
  PNEUMO_CHECK(batch > 0 && per_sample > 0, "soft dice: empty input (batch ", batch, ", per sample ", per_sample, ")");
  if (dt == DType::F32)
    dice_forward_impl(static_cast<const float*>(logits), static_cast<const float*>(targets), batch, per_sample, smooth,
                      static_cast<float*>(stats), static_cast<float*>(loss));
  else if (dt == DType::F64)
    dice_forward_impl(static_cast<const double*>(logits), static_cast<const double*>(targets), batch, per_sample,
                      smooth, static_cast<double*>(stats), static_cast<double*>(loss));
  else
    PNEUMO_FAIL("soft dice (CPU): dtype ", dtype_name(dt), " not supported (F32, F64)");
}

void soft_dice_backward(DType dt, const void* logits, const void* targets, int64_t batch, int64_t per_sample,
                        const void* stats, const void* grad_loss, void* dlogits) {
  PNEUMO_CPU_SCOPE("soft_dice_backward");
  if (dt == DType::F32)
    dice_backward_impl(static_cast<const float*>(logits), static_cast<const float*>(targets), batch, per_sample,
                       static_cast<const float*>(stats), static_cast<const float*>(grad_loss),
                       static_cast<float*>(dlogits));
  else if (dt == DType::F64)
    dice_backward_impl(static_cast<const double*>(logits), static_cast<const double*>(targets), batch, per_sample,
                       static_cast<const double*>(stats), static_cast<const double*>(grad_loss),
                       static_cast<double*>(dlogits));
  else
    PNEUMO_FAIL("soft dice (CPU): dtype ", dtype_name(dt), " not supported (F32, F64)");
}

}  // namespace pneumo::kernels::cpu
