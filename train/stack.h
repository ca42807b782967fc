// The reference's stacking of classifier probabilities (stacking.py): for N classifiers the features of an
// image are [x_1..x_N, mean, (x_i - x_{(i+1) mod N}) / 2 for each i] (2N+1 values); the meta-model is
// Conv2d(1, 16, (2N+1, 1)) -> Linear(16, 1) with no nonlinearity between (so a linear model with a
// factorised weight), trained with BCE-with-logits, Adam(5e-4), MultiStepLR(20, 30, 40; 0.1), 50 epochs,
// batch 128, on KFold(5, shuffle=True, random_state=48) splits; the test prediction is the mean of the five
// fold models' sigmoid outputs. Everything is float64 on the host: the model has 177 parameters.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo::train {

// numpy's legacy np.random.RandomState(seed) (MT19937, init_genrand seeding) as far as shuffle needs it.
class Mt19937 {
 public:
  explicit Mt19937(uint32_t seed);
  uint32_t next_u32();
  // numpy's random_interval(max): masked rejection sampling, 32-bit draws for max < 2^32.
  uint64_t interval(uint64_t max);

 private:
  uint32_t state_[624];
  int pos_ = 624;
};

// RandomState(seed).shuffle(np.arange(n)).
std::vector<int64_t> numpy_permutation(int64_t n, uint32_t seed);

struct KFoldSplit {
  std::vector<int64_t> train;  // ascending (as sklearn returns them)
  std::vector<int64_t> test;   // in permutation order
};
// sklearn KFold(k, shuffle=True, random_state=seed).split(range(n)); sizes n//k, the first n%k one more.
std::vector<KFoldSplit> kfold_shuffled(int64_t n, int k, uint32_t seed);

// rows [M][N] -> [M][2N+1].
std::vector<std::vector<double>> stack_features(const std::vector<std::vector<double>>& probabilities);

struct StackerWeights {
  std::vector<double> conv_w;  // [16][F] (PyTorch conv.weight [16, 1, F, 1])
  std::vector<double> conv_b;  // [16]
  std::vector<double> fc_w;    // [16]   (fc.weight [1, 16])
  double fc_b = 0;
  int features = 0;
};

struct StackerOptions {
  int epochs = 50, batch = 128;
  double lr = 5e-4;
  std::vector<int> milestones = {20, 30, 40};
  double gamma = 0.1;
  bool shuffle = true;  // the reference's DataLoader(shuffle=True); off reproduces a fixed order
  uint64_t seed = 48;   // initial weights (PyTorch's default init bounds) and the per-epoch shuffles
};

// PyTorch-default initial weights (uniform +-1/sqrt(fan_in): fan_in F for the conv, 16 for the linear).
StackerWeights init_stacker(int features, uint64_t seed);
double stacker_logit(const StackerWeights& w, const double* f);
// Trains from `w` in place on rows `rows` of (features, labels); returns the mean loss of the last batch.
double train_stacker(StackerWeights& w, const std::vector<std::vector<double>>& features,
                     const std::vector<double>& labels, const std::vector<int64_t>& rows, const StackerOptions& opt,
                     int fold = 0);

struct StackResult {
  std::vector<double> oof;   // out-of-fold stacked probabilities of the training images
  std::vector<double> test;  // mean over the fold models
  std::vector<StackerWeights> models;
  double oof_log_loss = 0;
};
// The whole procedure. `initial` (optional, one per fold) replaces init_stacker (the parity test uses it).
StackResult stack_classifiers(const std::vector<std::vector<double>>& oof, const std::vector<double>& labels,
                              const std::vector<std::vector<double>>& test, const StackerOptions& opt, int folds = 5,
                              uint32_t kfold_seed = 48, const std::vector<StackerWeights>* initial = nullptr);

}  // namespace pneumo::train
