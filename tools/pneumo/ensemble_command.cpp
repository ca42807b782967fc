// `pneumo ensemble`: mean of several models' probability folders, thresholded into masks.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "augment/image.h"
#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"
#include "train/ensemble.h"

namespace {

using namespace pneumo;

struct EnsembleCmd {
  std::string inputs, out, probs_out, rule = "0.4", weights;
  std::vector<std::string> positional;
};

int run_ensemble(const EnsembleCmd& c) {
  std::vector<std::string> inputs = cli::split_list(c.inputs);
  inputs.insert(inputs.end(), c.positional.begin(), c.positional.end());
  if (inputs.empty()) cli::usage_error("give the probability folders (--inputs A,B,... or as arguments)");
  std::vector<double> weights;
  for (const std::string& w : cli::split_list(c.weights)) {
    char* end = nullptr;
    weights.push_back(std::strtod(w.c_str(), &end));
    if (!end || *end || !(weights.back() >= 0)) cli::usage_error("--weights: '", w, "' is not a weight >= 0");
  }
  const train::MaskRule rule = train::MaskRule::parse(c.rule);
  const std::vector<std::string> stems = train::probability_stems(inputs[0]);
  const std::set<std::string> stem_set(stems.begin(), stems.end());
  for (size_t k = 1; k < inputs.size(); ++k)
    for (const std::string& s : train::probability_stems(inputs[k]))
      if (!stem_set.count(s))
        cli::user_error("'", inputs[k], "/", s, ".png' has no counterpart in '", inputs[0], "'");
  std::filesystem::create_directories(c.out);
  if (!c.probs_out.empty()) std::filesystem::create_directories(c.probs_out);
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
    aug::write_png(c.out + "/" + stem + ".png", m);
    if (!c.probs_out.empty()) {
      aug::Image prob(h, w, 1);
      for (size_t i = 0; i < prob.size(); ++i) prob.pixels[i] = train::probability_to_u8(p[i]);
      aug::write_png(c.probs_out + "/" + stem + ".png", prob);
    }
  }
  std::printf("%zu folders, %zu images, %s: %lld non-empty masks -> %s\n", inputs.size(), stems.size(),
              rule.str().c_str(), static_cast<long long>(positive), c.out.c_str());
  return 0;
}

PNEUMO_COMMAND("ensemble", "mean of models' probability folders, thresholded into 0/255 masks", [](CLI::App& app) {
  auto o = std::make_shared<EnsembleCmd>();
  cli::option(app, "--inputs", o->inputs, "probability folders A,B,... (pneumo predict outputs)");
  cli::positionals(app, "folders", o->positional, "more probability folders");
  cli::out_option(app, o->out, "folder for the 0/255 masks").required();
  cli::option(app, "--mask-rule,--threshold", o->rule, "a threshold (0.4) or a triplet top,min_area,bottom");
  cli::option(app, "--weights", o->weights, "weights w1,w2,... of the folders (default equal)");
  cli::option(app, "--probs-out", o->probs_out, "also write the mean probabilities (8-bit PNGs) here");
  cli::footer(app,
              "The mean probability of every image (p = value/255 of each folder's PNG) is thresholded per pixel\n"
              "(the reference: p > 0.4) or by the 1st place's triplet rule. Every folder must hold every image.");
  return [o] { return run_ensemble(*o); };
});

}  // namespace
