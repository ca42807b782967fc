// `pneumo stack`: the reference's stacker over several classifiers' out-of-fold probabilities.
#include <cstdio>
#include <memory>

#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"
#include "train/rle_csv.h"
#include "train/stack.h"
#include "train/submission.h"

namespace {

using namespace pneumo;

struct StackCmd {
  std::string oof, test, labels_rle, labels, out, oof_out;
  int epochs = 50, batch = 128, folds = 5;
  double lr = 5e-4;
  int64_t seed = 48;
  bool no_shuffle = false;
};

// Rows of several per-classifier CSVs aligned on the first file's ids.
std::vector<std::vector<double>> aligned(const std::vector<std::string>& files, std::vector<std::string>* ids) {
  const auto first = train::read_probability_rows(files[0]);
  ids->clear();
  std::vector<std::vector<double>> rows;
  for (const auto& [id, p] : first) {
    ids->push_back(id);
    rows.push_back({p});
  }
  for (size_t k = 1; k < files.size(); ++k) {
    const auto m = train::read_probability_csv(files[k]);
    if (m.size() != ids->size())
      cli::user_error("'", files[k], "' has ", m.size(), " images, '", files[0], "' ", ids->size());
    for (size_t r = 0; r < ids->size(); ++r) {
      auto it = m.find((*ids)[r]);
      if (it == m.end()) cli::user_error("image '", (*ids)[r], "' of '", files[0], "' is missing from '", files[k], "'");
      rows[r].push_back(it->second);
    }
  }
  return rows;
}

int run_stack(const StackCmd& c) {
  const std::vector<std::string> oof_files = cli::split_list(c.oof), test_files = cli::split_list(c.test);
  if (oof_files.empty()) cli::usage_error("--oof needs at least one file");
  if (c.labels_rle.empty() == c.labels.empty())
    cli::usage_error("give exactly one of --labels-rle train-rle.csv or --labels image,label CSV");
  if (!test_files.empty() && test_files.size() != oof_files.size())
    cli::usage_error("", oof_files.size(), " out-of-fold files but ", test_files.size(),
                     " test files (one per classifier, same order)");
  if (test_files.empty() && c.oof_out.empty()) cli::usage_error("nothing to write: give --test ... --out, or --oof-out");
  if (!test_files.empty() && c.out.empty()) cli::usage_error("give --out for the stacked test probabilities");
  train::StackerOptions opt;
  opt.epochs = c.epochs;
  opt.batch = c.batch;
  opt.lr = c.lr;
  opt.seed = static_cast<uint64_t>(c.seed);
  opt.shuffle = !c.no_shuffle;
  std::vector<std::string> ids, test_ids;
  const auto x = aligned(oof_files, &ids);
  std::vector<double> y;
  if (!c.labels_rle.empty()) {
    const train::RleCsv labels = train::read_rle_csv(c.labels_rle);
    for (const std::string& id : ids) {
      if (!labels.contains(id)) cli::user_error("image '", id, "' has no row in '", c.labels_rle, "'");
      y.push_back(labels.positive(id) ? 1.0 : 0.0);
    }
  } else {
    const auto labels = train::read_probability_csv(c.labels);
    for (const std::string& id : ids) {
      auto it = labels.find(id);
      if (it == labels.end()) cli::user_error("image '", id, "' has no label in '", c.labels, "'");
      if (it->second != 0 && it->second != 1)
        cli::user_error("the label of '", id, "' in '", c.labels, "' is ", it->second, ", not 0 or 1");
      y.push_back(it->second);
    }
  }
  std::vector<std::vector<double>> xt;
  if (!test_files.empty()) xt = aligned(test_files, &test_ids);
  const train::StackResult res = train::stack_classifiers(x, y, xt, opt, c.folds, 48);
  double pos = 0;
  for (double v : y) pos += v;
  std::printf("%zu classifiers, %zu training images (%.0f positive), %d-fold, %d epochs; out-of-fold log loss "
              "%.4f\n",
              oof_files.size(), ids.size(), pos, c.folds, opt.epochs, res.oof_log_loss);
  if (!c.oof_out.empty()) {
    std::vector<std::pair<std::string, double>> rows;
    for (size_t i = 0; i < ids.size(); ++i) rows.emplace_back(ids[i], res.oof[i]);
    train::write_probability_csv(c.oof_out, rows);
    std::printf("wrote %s\n", c.oof_out.c_str());
  }
  if (!test_files.empty()) {
    std::vector<std::pair<std::string, double>> rows;
    for (size_t i = 0; i < test_ids.size(); ++i) rows.emplace_back(test_ids[i], res.test[i]);
    train::write_probability_csv(c.out, rows);
    std::printf("wrote %s (%zu images, mean of %d fold models)\n", c.out.c_str(), test_ids.size(), c.folds);
  }
  return 0;
}

PNEUMO_COMMAND("stack", "stack classifiers' probabilities (the reference's linear meta-model)", [](CLI::App& app) {
  auto o = std::make_shared<StackCmd>();
  cli::option(app, "--oof", o->oof, "out-of-fold image,probability CSVs, one per classifier: A.csv,B.csv,...").required();
  cli::option(app, "--test", o->test, "test image,probability CSVs in the same classifier order");
  cli::option(app, "--labels-rle", o->labels_rle, "labels: competition RLE CSV (positive = has a mask)").existing_file();
  cli::option(app, "--labels", o->labels, "labels: image,label CSV (0 or 1)").existing_file();
  cli::out_option(app, o->out, "stacked test probabilities (image,probability)");
  cli::option(app, "--oof-out", o->oof_out, "also write the stacked out-of-fold probabilities");
  cli::option(app, "--epochs", o->epochs, "epochs per fold model", 1, 100000);
  cli::option(app, "--batch", o->batch, "batch size", 1, 1 << 20);
  cli::option(app, "--lr", o->lr, "Adam learning rate", 1e-12, 10.0);
  cli::option(app, "--folds", o->folds, "KFold splits", 2, 1000);
  cli::option(app, "--seed", o->seed, "initial weights and batch shuffles (the KFold seed is the reference's 48)", 0,
              int64_t{1} << 62);
  cli::flag(app, "--no-shuffle", o->no_shuffle, "fixed batch order (as the PyTorch parity test)");
  cli::footer(app,
              "Features [x_1..x_N, mean, (x_i - x_{i+1 mod N})/2]; meta-model Conv(1->16, (2N+1)x1) -> Linear(16,1),\n"
              "BCE-with-logits, Adam, MultiStep 20/30/40 x0.1, on KFold(5, shuffle, random_state=48) splits\n"
              "(numpy's permutation reproduced); the test output is the mean of the fold models.");
  return [o] { return run_stack(*o); };
});

}  // namespace
