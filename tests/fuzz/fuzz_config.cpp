// libFuzzer target: the project's config JSON. The same text goes to both readers: a recipe file
// (train/recipe.h parse_plan, then the --dry-run description of its plan) and a training run's
// RUN/config.json as --resume reads it (train/trainer.h parse_run_config, then the range checks).
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "train/recipe.h"
#include "train/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace tr = pneumo::train;
  const std::string text(reinterpret_cast<const char*>(data), size);
  pneumo::fuzz::expect_clean([&] {
    const tr::recipe::Plan plan = tr::recipe::parse_plan(text, "fuzz.json", {});
    for (const tr::recipe::Step& s : plan.steps)
      if (s.id.empty() || s.argv.empty()) std::abort();  // parse_plan promises named steps with a command
    (void)tr::recipe::describe(plan, "pneumo");
  });
  pneumo::fuzz::expect_clean([&] {
    tr::TrainConfig c = tr::parse_run_config(text, "config.json");
    tr::resolve_config(c);
  });
  return 0;
}
