#include "train/stack.h"

#include <algorithm>
#include <cmath>

#include "kernels/check.h"
#include "kernels/philox.h"
#include "train/folds.h"

namespace pneumo::train {

Mt19937::Mt19937(uint32_t seed) {
  state_[0] = seed;
  for (int i = 1; i < 624; ++i) state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
}

uint32_t Mt19937::next_u32() {
  if (pos_ >= 624) {
    for (int i = 0; i < 624; ++i) {
      const uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % 624] & 0x7fffffffu);
      state_[i] = state_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    pos_ = 0;
  }
  uint32_t y = state_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t Mt19937::interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
  PNEUMO_CHECK(max <= 0xffffffffull, "Mt19937::interval: max ", max, " needs 64-bit draws (not implemented)");
  uint64_t v;
  while ((v = (next_u32() & mask)) > max) {
  }
  return v;
}

std::vector<int64_t> numpy_permutation(int64_t n, uint32_t seed) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  Mt19937 rng(seed);
  for (int64_t i = n - 1; i >= 1; --i) std::swap(idx[static_cast<size_t>(i)], idx[rng.interval(static_cast<uint64_t>(i))]);
  return idx;
}

std::vector<KFoldSplit> kfold_shuffled(int64_t n, int k, uint32_t seed) {
  PNEUMO_CHECK(k >= 2 && n >= k, "KFold: need at least ", k, " samples for ", k, " folds, got ", n);
  const std::vector<int64_t> perm = numpy_permutation(n, seed);
  std::vector<KFoldSplit> out(static_cast<size_t>(k));
  int64_t cur = 0;
  for (int f = 0; f < k; ++f) {
    const int64_t size = n / k + (f < n % k ? 1 : 0);
    std::vector<bool> in_test(static_cast<size_t>(n), false);
    for (int64_t j = cur; j < cur + size; ++j) {
      out[static_cast<size_t>(f)].test.push_back(perm[static_cast<size_t>(j)]);
      in_test[static_cast<size_t>(perm[static_cast<size_t>(j)])] = true;
    }
    for (int64_t i = 0; i < n; ++i)
      if (!in_test[static_cast<size_t>(i)]) out[static_cast<size_t>(f)].train.push_back(i);
    cur += size;
  }
  return out;
}

std::vector<std::vector<double>> stack_features(const std::vector<std::vector<double>>& p) {
  std::vector<std::vector<double>> out;
  out.reserve(p.size());
  for (const auto& x : p) {
    const size_t n = x.size();
    PNEUMO_CHECK(n >= 1, "an image has no classifier probabilities");
    std::vector<double> f(x);
    double mean = 0;
    for (double v : x) mean += v;
    f.push_back(mean / static_cast<double>(n));
    for (size_t i = 0; i < n; ++i) f.push_back((x[i] - x[(i + 1) % n]) / 2);
    out.push_back(std::move(f));
  }
  return out;
}

StackerWeights init_stacker(int features, uint64_t seed) {
  StackerWeights w;
  w.features = features;
  uint64_t k = 0;
  auto uni = [&](double bound) { return (2.0 * philox_uniform_at(seed, 0x57AC4ull, k++) - 1.0) * bound; };
  const double b1 = 1.0 / std::sqrt(static_cast<double>(features)), b2 = 1.0 / 4.0;
  for (int i = 0; i < 16 * features; ++i) w.conv_w.push_back(uni(b1));
  for (int i = 0; i < 16; ++i) w.conv_b.push_back(uni(b1));
  for (int i = 0; i < 16; ++i) w.fc_w.push_back(uni(b2));
  w.fc_b = uni(b2);
  return w;
}

double stacker_logit(const StackerWeights& w, const double* f) {
  double z = w.fc_b;
  for (int c = 0; c < 16; ++c) {
    double h = w.conv_b[static_cast<size_t>(c)];
    for (int j = 0; j < w.features; ++j) h += w.conv_w[static_cast<size_t>(c * w.features + j)] * f[j];
    z += w.fc_w[static_cast<size_t>(c)] * h;
  }
  return z;
}

namespace {

double sigmoid(double z) { return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z)); }
// BCEWithLogits, numerically stable: max(z, 0) - z y + log(1 + exp(-|z|)).
double bce(double z, double y) { return std::max(z, 0.0) - z * y + std::log1p(std::exp(-std::abs(z))); }

}  // namespace

double train_stacker(StackerWeights& w, const std::vector<std::vector<double>>& features,
                     const std::vector<double>& labels, const std::vector<int64_t>& rows, const StackerOptions& opt,
                     int fold) {
  const int F = w.features;
  const size_t P = static_cast<size_t>(16 * F + 16 + 16 + 1);
  // Flat parameter view: conv_w, conv_b, fc_w, fc_b (PyTorch's Adam works per element; order is irrelevant).
  std::vector<double> m(P, 0.0), v(P, 0.0), g(P);
  auto params = [&](size_t i) -> double& {
    if (i < w.conv_w.size()) return w.conv_w[i];
    i -= w.conv_w.size();
    if (i < 16) return w.conv_b[i];
    i -= 16;
    if (i < 16) return w.fc_w[i];
    return w.fc_b;
  };
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t step = 0;
  double last_loss = 0;
  std::vector<int64_t> order(rows);
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    double lr = opt.lr;
    for (int ms : opt.milestones)
      if (epoch >= ms) lr *= opt.gamma;
    if (opt.shuffle) {
      const std::vector<int64_t> perm =
          philox_permutation(static_cast<int64_t>(rows.size()), opt.seed, (static_cast<uint64_t>(fold) << 32) | epoch);
      for (size_t i = 0; i < rows.size(); ++i) order[i] = rows[static_cast<size_t>(perm[i])];
    }
    for (size_t s = 0; s < order.size(); s += static_cast<size_t>(opt.batch)) {
      const size_t e = std::min(order.size(), s + static_cast<size_t>(opt.batch));
      const double inv_b = 1.0 / static_cast<double>(e - s);
      std::fill(g.begin(), g.end(), 0.0);
      double loss = 0;
      for (size_t r = s; r < e; ++r) {
        const size_t row = static_cast<size_t>(order[r]);
        const double* f = features[row].data();
        double h[16];
        double z = w.fc_b;
        for (int c = 0; c < 16; ++c) {
          h[c] = w.conv_b[static_cast<size_t>(c)];
          for (int j = 0; j < F; ++j) h[c] += w.conv_w[static_cast<size_t>(c * F + j)] * f[j];
          z += w.fc_w[static_cast<size_t>(c)] * h[c];
        }
        loss += bce(z, labels[row]) * inv_b;
        const double dz = (sigmoid(z) - labels[row]) * inv_b;
        for (int c = 0; c < 16; ++c) {
          const double dh = dz * w.fc_w[static_cast<size_t>(c)];
          for (int j = 0; j < F; ++j) g[static_cast<size_t>(c * F + j)] += dh * f[j];
          g[static_cast<size_t>(16 * F + c)] += dh;
          g[static_cast<size_t>(16 * F + 16 + c)] += dz * h[c];
        }
        g[P - 1] += dz;
      }
      last_loss = loss;
      ++step;  // torch.optim.Adam (amsgrad off, weight decay 0)
      const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
      const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
      for (size_t i = 0; i < P; ++i) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
        params(i) -= (lr / bc1) * m[i] / denom;
      }
    }
  }
  return last_loss;
}

StackResult stack_classifiers(const std::vector<std::vector<double>>& oof, const std::vector<double>& labels,
                              const std::vector<std::vector<double>>& test, const StackerOptions& opt, int folds,
                              uint32_t kfold_seed, const std::vector<StackerWeights>* initial) {
  PNEUMO_CHECK(oof.size() == labels.size(), "", oof.size(), " out-of-fold rows but ", labels.size(), " labels");
  PNEUMO_CHECK(!oof.empty(), "no training rows");
  const size_t n = oof.front().size();
  for (const auto& r : oof) PNEUMO_CHECK(r.size() == n, "rows with different numbers of classifiers");
  for (const auto& r : test)
    PNEUMO_CHECK(r.size() == n, "test rows have ", r.size(), " classifiers, training rows ", n);
  const auto f = stack_features(oof), ft = stack_features(test);
  const int F = static_cast<int>(2 * n + 1);
  StackResult res;
  res.oof.assign(oof.size(), 0.0);
  res.test.assign(test.size(), 0.0);
  const auto splits = kfold_shuffled(static_cast<int64_t>(oof.size()), folds, kfold_seed);
  for (int k = 0; k < folds; ++k) {
    StackerWeights w = initial ? initial->at(static_cast<size_t>(k)) : init_stacker(F, opt.seed + static_cast<uint64_t>(k));
    PNEUMO_CHECK(w.features == F, "initial weights for ", w.features, " features, data has ", F);
    train_stacker(w, f, labels, splits[static_cast<size_t>(k)].train, opt, k);
    for (int64_t r : splits[static_cast<size_t>(k)].test)
      res.oof[static_cast<size_t>(r)] = sigmoid(stacker_logit(w, f[static_cast<size_t>(r)].data()));
    for (size_t r = 0; r < ft.size(); ++r) res.test[r] += sigmoid(stacker_logit(w, ft[r].data())) / folds;
    res.models.push_back(std::move(w));
  }
  double ll = 0;
  for (size_t r = 0; r < oof.size(); ++r) {
    const double p = std::clamp(res.oof[r], 1e-15, 1 - 1e-15);
    ll -= labels[r] * std::log(p) + (1 - labels[r]) * std::log(1 - p);
  }
  res.oof_log_loss = ll / static_cast<double>(oof.size());
  return res;
}

}  // namespace pneumo::train
