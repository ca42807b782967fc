// `pneumo ensemble`: mean of several models' probability folders, thresholded into masks.
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "augment/image.h"
#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/ensemble.h"

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

int run_ensemble(const Args& args) {
  using namespace pneumo;
  std::vector<std::string> inputs = split_list(args.get("inputs", ""));
  for (const std::string& p : args.positionals()) inputs.push_back(p);
  const std::string out = args.require("out");
  const std::string probs_out = args.get("probs-out", "");
  const train::MaskRule rule = train::MaskRule::parse(args.get("mask-rule", args.get("threshold", "0.4")));
  std::vector<double> weights;
  for (const std::string& w : split_list(args.get("weights", ""))) weights.push_back(std::stod(w));
  args.finish();
  PNEUMO_CHECK(!inputs.empty(), "ensemble: give the probability folders (--inputs A,B,... or as arguments)");
  const std::vector<std::string> stems = train::probability_stems(inputs[0]);
  const std::set<std::string> stem_set(stems.begin(), stems.end());
  for (size_t k = 1; k < inputs.size(); ++k)
    for (const std::string& s : train::probability_stems(inputs[k]))
      PNEUMO_CHECK(stem_set.count(s), "ensemble: '", inputs[k], "/", s, ".png' has no counterpart in '", inputs[0],
                   "'");
  std::filesystem::create_directories(out);
  if (!probs_out.empty()) std::filesystem::create_directories(probs_out);
  int64_t positive = 0;
  for (const std::string& stem : stems) {
    int h = 0, w = 0;
    const std::vector<float> p = train::mean_probability(inputs, stem, &h, &w, weights);
    const aug::Image m = train::apply_mask_rule(p.data(), h, w, rule);
    for (uint8_t v : m.pixels)
      if (v) {
        ++positive;
        break;
      }
    aug::write_png(out + "/" + stem + ".png", m);
    if (!probs_out.empty()) {
      aug::Image prob(h, w, 1);
      for (size_t i = 0; i < prob.size(); ++i) prob.pixels[i] = train::probability_to_u8(p[i]);
      aug::write_png(probs_out + "/" + stem + ".png", prob);
    }
  }
  std::printf("ensemble: %zu folders, %zu images, %s: %lld non-empty masks -> %s\n", inputs.size(), stems.size(),
              rule.str().c_str(), static_cast<long long>(positive), out.c_str());
  return 0;
}

PNEUMO_COMMAND("ensemble", "mean of models' probability folders, thresholded into 0/255 masks",
               "usage: pneumo ensemble --inputs DIR1,DIR2,... --out MASK_DIR [--mask-rule 0.4 | top,area,bottom]\n"
               "                       [--weights w1,w2,...] [--probs-out DIR]\n"
               "Each folder holds <stem>.png probability images (pneumo predict). The mean probability of every\n"
               "image (equal weights unless --weights) is thresholded per pixel (the reference: p > 0.4) or by\n"
               "the triplet rule; masks are 0/255 PNGs. --probs-out also writes the mean probabilities.",
               run_ensemble);

}  // namespace
