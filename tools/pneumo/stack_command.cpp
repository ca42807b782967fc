// `pneumo stack`: the reference's stacker over several classifiers' out-of-fold probabilities.
#include <cstdio>
#include <sstream>

#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/rle_csv.h"
#include "train/stack.h"
#include "train/submission.h"

namespace {

using pneumo::cli::Args;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Rows of several per-classifier CSVs aligned on the first file's ids.
std::vector<std::vector<double>> aligned(const std::vector<std::string>& files, std::vector<std::string>* ids) {
  using namespace pneumo;
  const auto first = train::read_probability_rows(files[0]);
  ids->clear();
  std::vector<std::vector<double>> rows;
  for (const auto& [id, p] : first) {
    ids->push_back(id);
    rows.push_back({p});
  }
  for (size_t k = 1; k < files.size(); ++k) {
    const auto m = train::read_probability_csv(files[k]);
    PNEUMO_CHECK(m.size() == ids->size(), "stack: '", files[k], "' has ", m.size(), " images, '", files[0], "' ",
                 ids->size());
    for (size_t r = 0; r < ids->size(); ++r) {
      auto it = m.find((*ids)[r]);
      PNEUMO_CHECK(it != m.end(), "stack: image '", (*ids)[r], "' of '", files[0], "' is missing from '", files[k], "'");
      rows[r].push_back(it->second);
    }
  }
  return rows;
}

int run_stack(const Args& args) {
  using namespace pneumo;
  const std::vector<std::string> oof_files = split_list(args.require("oof"));
  const std::vector<std::string> test_files = split_list(args.get("test", ""));
  const std::string labels_rle = args.get("labels-rle", "");
  const std::string labels_csv = args.get("labels", "");
  const std::string out = args.get("out", "");
  const std::string oof_out = args.get("oof-out", "");
  train::StackerOptions opt;
  opt.epochs = static_cast<int>(args.get_int("epochs", 50));
  opt.batch = static_cast<int>(args.get_int("batch", 128));
  opt.lr = args.get_double("lr", 5e-4);
  opt.seed = static_cast<uint64_t>(args.get_int("seed", 48));
  opt.shuffle = !args.flag("no-shuffle");
  const int folds = static_cast<int>(args.get_int("folds", 5));
  args.finish();
  PNEUMO_CHECK(labels_rle.empty() != labels_csv.empty(),
               "stack: give exactly one of --labels-rle train-rle.csv or --labels image,label CSV");
  PNEUMO_CHECK(test_files.empty() || test_files.size() == oof_files.size(), "stack: ", oof_files.size(),
               " out-of-fold files but ", test_files.size(), " test files (one per classifier, same order)");
  PNEUMO_CHECK(!test_files.empty() || !oof_out.empty(), "stack: nothing to write: give --test ... --out, or --oof-out");
  PNEUMO_CHECK(test_files.empty() || !out.empty(), "stack: give --out for the stacked test probabilities");
  std::vector<std::string> ids, test_ids;
  const auto x = aligned(oof_files, &ids);
  std::vector<double> y;
  if (!labels_rle.empty()) {
    const train::RleCsv labels = train::read_rle_csv(labels_rle);
    for (const std::string& id : ids) {
      PNEUMO_CHECK(labels.contains(id), "stack: image '", id, "' has no row in '", labels_rle, "'");
      y.push_back(labels.positive(id) ? 1.0 : 0.0);
    }
  } else {
    const auto labels = train::read_probability_csv(labels_csv);
    for (const std::string& id : ids) {
      auto it = labels.find(id);
      PNEUMO_CHECK(it != labels.end(), "stack: image '", id, "' has no label in '", labels_csv, "'");
      PNEUMO_CHECK(it->second == 0 || it->second == 1, "stack: label of '", id, "' in '", labels_csv, "' is ",
                   it->second, ", not 0 or 1");
      y.push_back(it->second);
    }
  }
  std::vector<std::vector<double>> xt;
  if (!test_files.empty()) xt = aligned(test_files, &test_ids);
  const train::StackResult res = train::stack_classifiers(x, y, xt, opt, folds, 48);
  double pos = 0;
  for (double v : y) pos += v;
  std::printf("stack: %zu classifiers, %zu training images (%.0f positive), %d-fold, %d epochs; out-of-fold log loss "
              "%.4f\n",
              oof_files.size(), ids.size(), pos, folds, opt.epochs, res.oof_log_loss);
  if (!oof_out.empty()) {
    std::vector<std::pair<std::string, double>> rows;
    for (size_t i = 0; i < ids.size(); ++i) rows.emplace_back(ids[i], res.oof[i]);
    train::write_probability_csv(oof_out, rows);
    std::printf("stack: wrote %s\n", oof_out.c_str());
  }
  if (!test_files.empty()) {
    std::vector<std::pair<std::string, double>> rows;
    for (size_t i = 0; i < test_ids.size(); ++i) rows.emplace_back(test_ids[i], res.test[i]);
    train::write_probability_csv(out, rows);
    std::printf("stack: wrote %s (%zu images, mean of %d fold models)\n", out.c_str(), test_ids.size(), folds);
  }
  return 0;
}

PNEUMO_COMMAND("stack", "stack classifiers' probabilities (the reference's linear meta-model)",
               "usage: pneumo stack --oof A.csv,B.csv,... (--labels-rle train-rle.csv | --labels LABELS.csv)\n"
               "                    [--test TA.csv,TB.csv,... --out STACKED.csv] [--oof-out STACKED_OOF.csv]\n"
               "                    [--epochs 50] [--batch 128] [--lr 5e-4] [--folds 5] [--seed 48] [--no-shuffle]\n"
               "Inputs are image,probability CSVs, one per classifier (out-of-fold for training, test in the same\n"
               "classifier order). Features [x_1..x_N, mean, (x_i - x_{i+1 mod N})/2]; meta-model\n"
               "Conv(1->16, (2N+1)x1) -> Linear(16,1), BCE-with-logits, Adam, MultiStep 20/30/40 x0.1, on\n"
               "KFold(5, shuffle, random_state=48) splits (numpy's permutation reproduced); the test output is\n"
               "the mean of the fold models. Batches are shuffled each epoch (seeded) unless --no-shuffle.",
               run_stack);

}  // namespace
