#include "train/swa.h"

#include <cstdio>
#include <map>

#include "augment/pipeline.h"
#include "autograd/variable.h"
#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "train/dataset.h"
#include "train/loader.h"

namespace pneumo::train {

std::vector<int> default_swa_epochs(bool classification) {
  if (classification) return {24, 29, 30, 31, 32, 33};
  return {34, 39, 43};
}

std::string epoch_checkpoint_path(const std::string& run, int epoch) {
  char name[64];
  std::snprintf(name, sizeof(name), "epoch-%03d.safetensors", epoch);
  return run + "/checkpoints/" + name;
}

AverageReport average_checkpoints(nn::Module& model, const std::vector<std::string>& files,
                                  const std::string& expected_model) {
  PNEUMO_CHECK(!files.empty(), "no checkpoints to average");
  const std::vector<std::pair<std::string, Tensor>> state = model.state_dict();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < state.size(); ++i) index[state[i].first] = i;
  std::vector<std::vector<double>> sums(state.size());
  std::vector<Tensor> firsts(state.size());
  AverageReport report;
  report.files = files;
  for (const std::string& file : files) {
    nn::SafetensorsContents c = nn::load_safetensors(file);  // errors name the file (missing, truncated, ...)
    auto meta = c.metadata.find("model");
    PNEUMO_CHECK(expected_model.empty() || meta == c.metadata.end() || meta->second == expected_model,
                 "checkpoint '", file, "' was written by network '", meta->second, "', not '", expected_model,
                 "'");
    std::vector<bool> seen(state.size(), false);
    std::string problems;
    int n_problems = 0;
    auto problem = [&](const std::string& p) {
      if (++n_problems <= 8) problems += (problems.empty() ? "" : "; ") + p;
    };
    for (auto& [name, t] : c.tensors) {
      auto it = index.find(name);
      if (it == index.end()) {
        if (&file == &files.front()) report.ignored.push_back(name);
        continue;
      }
      const Tensor& target = state[it->second].second;
      if (t.shape() != target.shape()) {
        problem(name + " is " + shape_str(t.shape()) + ", the network's " + shape_str(target.shape()));
        continue;
      }
      seen[it->second] = true;
      if (!is_floating(target.dtype())) {
        if (!firsts[it->second].defined()) firsts[it->second] = t;
        continue;
      }
      std::vector<double>& s = sums[it->second];
      const Tensor v = t.to(DType::F64);
      const double* p = v.data<double>();
      if (s.empty()) s.assign(static_cast<size_t>(v.numel()), 0.0);
      for (size_t k = 0; k < s.size(); ++k) s[k] += p[k];
    }
    for (size_t i = 0; i < state.size(); ++i)
      if (!seen[i]) problem(state[i].first + " missing");
    if (n_problems > 8) problems += "; ... (" + std::to_string(n_problems - 8) + " more)";
    PNEUMO_CHECK(n_problems == 0, "checkpoint '", file, "' does not fit the network",
                 expected_model.empty() ? "" : " '" + expected_model + "'", " (", n_problems, " problems: ", problems,
                 ")");
  }
  const double inv = 1.0 / static_cast<double>(files.size());
  for (size_t i = 0; i < state.size(); ++i) {
    const Tensor& target = state[i].second;
    Tensor value;
    if (is_floating(target.dtype())) {
      std::vector<double> mean(sums[i]);
      for (double& v : mean) v *= inv;
      value = Tensor::from_vector_f64(mean, target.shape()).to(target.dtype());
    } else {
      value = firsts[i].to(target.dtype());
    }
    model.set_tensor(state[i].first, value);
    ++report.tensors;
  }
  return report;
}

int64_t recalibrate_batchnorm(nn::Module& model, const std::function<bool(Tensor& input)>& next_batch) {
  std::vector<nn::BatchNorm2d*> bns;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) bns.push_back(bn);
  if (bns.empty()) return 0;
  const bool was_training = model.is_training();
  for (nn::BatchNorm2d* bn : bns) {
    bn->reset_running_stats();
    bn->set_cumulative_average(true);
  }
  model.train();
  int64_t samples = 0;
  try {
    ag::NoGradGuard no_grad;
    Tensor input;
    while (next_batch(input)) {
      PNEUMO_CHECK(input.defined() && input.dim() == 4, "BatchNorm recalibration needs NHWC batches");
      model.forward(ag::Variable(input));
      samples += input.shape()[0];
    }
  } catch (...) {
    for (nn::BatchNorm2d* bn : bns) bn->set_cumulative_average(false);
    model.train(was_training);
    throw;
  }
  for (nn::BatchNorm2d* bn : bns) bn->set_cumulative_average(false);
  model.train(was_training);
  return samples;
}

int64_t recalibrate_batchnorm_on(nn::Module& model, std::shared_ptr<const Dataset> dataset, const BnPassOptions& o) {
  PNEUMO_CHECK(o.size > 0 && o.batch > 0, "BatchNorm pass needs a size and a batch size");
  const aug::Pipeline pipe = aug::reference_train_pipeline(o.size);
  LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.workers = o.workers;
  lo.shuffle = true;
  lo.drop_last = true;
  lo.seed = o.seed;
  lo.height = lo.width = o.size;
  const size_t n_images = dataset->size();
  Loader loader(std::move(dataset),
                [&pipe](aug::Image& im, aug::Image& m, uint64_t s, uint64_t i) { pipe.apply(im, m, s, i); }, lo);
  PNEUMO_CHECK(loader.batches_per_epoch() > 0, "", n_images, " training images make no full batch of ", o.batch);
  const int64_t total = o.max_batches > 0 ? std::min(o.max_batches, loader.batches_per_epoch()) : loader.batches_per_epoch();
  loader.start_epoch(0);
  int64_t done = 0;
  return recalibrate_batchnorm(model, [&](Tensor& input) {
    if (done >= total) return false;
    const Batch* b = loader.next();
    if (!b) return false;
    input = b->images_tensor(o.device);
    ++done;
    if (o.progress && (done % 50 == 0 || done == total))
      std::fprintf(stderr, "BatchNorm update %lld/%lld batches\n", static_cast<long long>(done),
                   static_cast<long long>(total));
    return true;
  });
}

}  // namespace pneumo::train
