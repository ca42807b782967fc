// Learning-rate schedules of the reference, stepped once per epoch (epoch numbers start at 0).
//  - WarmRestartCosine: epoch e < cosine_epochs uses eta_min + (base - eta_min)(1 + cos(pi k / period)) / 2,
//    k = e mod period (a cosine restarted every `period` epochs); later epochs take the tail values in
//    order (the last one repeats). segmentation(): 5e-4 -> 1e-6, period 5, 40 cosine epochs, tail
//    1e-5, 1e-5, 5e-6, 5e-6 (44 epochs); classification(): eta_min 1e-5, 30 cosine epochs, same tail (34).
//  - MultiStep: base * gamma^(number of milestones <= e) (PyTorch MultiStepLR); stacker(): 5e-4,
//    milestones 20/30/40, gamma 0.1.
#pragma once
#include <vector>

namespace pneumo::train {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(int epoch) const = 0;
};

class WarmRestartCosine : public LrSchedule {
 public:
  WarmRestartCosine(double base_lr, double eta_min, int period, int cosine_epochs, std::vector<double> tail);
  double lr(int epoch) const override;
  int total_epochs() const { return cosine_epochs_ + static_cast<int>(tail_.size()); }
  static WarmRestartCosine segmentation();
  static WarmRestartCosine classification();

 private:
  double base_, eta_min_;
  int period_, cosine_epochs_;
  std::vector<double> tail_;
};

class MultiStep : public LrSchedule {
 public:
  MultiStep(double base_lr, std::vector<int> milestones, double gamma);
  double lr(int epoch) const override;
  static MultiStep stacker();

 private:
  double base_;
  std::vector<int> milestones_;
  double gamma_;
};

}  // namespace pneumo::train
