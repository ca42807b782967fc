// The reference's learning-rate schedules (see schedule.h).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "kernels/check.h"

namespace pneumo::train {

WarmRestartCosine::WarmRestartCosine(double base_lr, double eta_min, int period, int cosine_epochs,
                                     std::vector<double> tail)
    : base_(base_lr), eta_min_(eta_min), period_(period), cosine_epochs_(cosine_epochs), tail_(std::move(tail)) {
  PNEUMO_CHECK(period > 0 && cosine_epochs >= 0 && base_lr >= 0 && eta_min >= 0,
               "WarmRestartCosine: base ", base_lr, " eta_min ", eta_min, " period ", period, " cosine epochs ",
               cosine_epochs);
}

double WarmRestartCosine::lr(int epoch) const {
  PNEUMO_CHECK(epoch >= 0, "WarmRestartCosine: negative epoch ", epoch);
  if (epoch < cosine_epochs_ || tail_.empty()) {
    const double k = static_cast<double>(epoch % period_);
    return eta_min_ + (base_ - eta_min_) * (1.0 + std::cos(M_PI * k / period_)) / 2.0;
  }
  const size_t i = std::min(static_cast<size_t>(epoch - cosine_epochs_), tail_.size() - 1);
  return tail_[i];
}

WarmRestartCosine WarmRestartCosine::segmentation() { return {5e-4, 1e-6, 5, 40, {1e-5, 1e-5, 5e-6, 5e-6}}; }
WarmRestartCosine WarmRestartCosine::classification() { return {5e-4, 1e-5, 5, 30, {1e-5, 1e-5, 5e-6, 5e-6}}; }

MultiStep::MultiStep(double base_lr, std::vector<int> milestones, double gamma)
    : base_(base_lr), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
}

double MultiStep::lr(int epoch) const {
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_ * std::pow(gamma_, static_cast<double>(passed));
}

MultiStep MultiStep::stacker() { return {5e-4, {20, 30, 40}, 0.1}; }

}  // namespace pneumo::train
