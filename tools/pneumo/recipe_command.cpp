// `pneumo recipe CONFIG.json`: a whole solution as resumable steps (train/recipe.h), run as child processes of
// this binary, one per GPU at a time, or written out as Slurm array jobs. `pneumo recipe-split`,
// `recipe-lists` and `recipe-concat` are the small data-preparation steps recipes use.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"
#include "train/recipe.h"

namespace {

using namespace pneumo;
namespace fs = std::filesystem;
namespace rc = pneumo::train::recipe;

struct RecipeOptions {
  std::string config, gpus, slurm, only, sbatch;
  std::vector<std::string> sets;
  bool dry_run = false, report = false;
};

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) cli::user_error("cannot find this executable (/proc/self/exe): ", ec.message());
  return p.string();
}

int run_recipe(const RecipeOptions& o) {
  rc::Plan plan;
  try {
    plan = rc::load_plan(o.config, o.sets);
  } catch (const rc::RecipeError& e) {
    cli::user_error(e.what());
  }
  const std::string exe = self_exe();
  if (o.dry_run) {
    std::printf("%s", rc::describe(plan, "pneumo").c_str());
    return 0;
  }
  if (!o.slurm.empty()) {
    rc::emit_slurm(plan, o.slurm, exe, o.config, o.sets, o.sbatch);
    std::printf("wrote %s/submit.sh and one stage-L.sbatch per dependency level; run %s/submit.sh on the cluster\n",
                o.slurm.c_str(), o.slurm.c_str());
    return 0;
  }
  if (o.report) {
    std::printf("%s", rc::report(plan).c_str());
    return 0;
  }
  rc::RunOptions ro;
  ro.exe = exe;
  ro.only = o.only;
  if (!o.gpus.empty()) ro.gpus = cli::split_list(o.gpus);
  rc::RunResult r;
  try {
    r = rc::run_plan(plan, ro);
  } catch (const rc::RecipeError& e) {
    cli::user_error(e.what());
  }
  std::printf("recipe %s: %d steps ran, %d were complete, %d failed, %d not run\n", o.config.c_str(), r.ran,
              r.skipped, r.failed, r.not_run);
  const std::string table = rc::report(plan);
  if (!table.empty() && r.failed == 0 && o.only.empty()) std::printf("%s", table.c_str());
  if (r.interrupted) {
    std::fprintf(stderr, "pneumo recipe: interrupted (signal %d); run the same command again to continue\n",
                 r.interrupted);
    return 128 + r.interrupted;
  }
  if (r.failed) {
    std::fprintf(stderr, "pneumo recipe: step %s; fix it and run the same command again to continue\n",
                 r.first_failure.c_str());
    return 1;
  }
  return 0;
}

PNEUMO_COMMAND("recipe", "run a whole solution from a recipe file (resumable steps, GPUs, Slurm)", [](CLI::App& app) {
  auto o = std::make_shared<RecipeOptions>();
  cli::positional(app, "CONFIG", o->config, "recipe file (JSON), e.g. configs/tiny-lesions.json").required().existing_file();
  // One value per --set, so a CONFIG after it stays the positional.
  cli::option(app, "--set", o->sets, "NAME=VALUE: a variable of the recipe's vars (repeatable)")
      .get()
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cli::flag(app, "--dry-run", o->dry_run, "print the plan: steps in order, state, command lines, GPU hours; run nothing");
  cli::option(app, "--gpus", o->gpus, "GPU ids 0,1,...: run independent steps at once, one per GPU (CUDA_VISIBLE_DEVICES)");
  cli::option(app, "--emit-slurm", o->slurm, "write DIR/submit.sh and one Slurm array job per dependency level; run nothing");
  cli::option(app, "--sbatch-options", o->sbatch, "extra #SBATCH line for --emit-slurm, e.g. '--partition=gpu --time=48:00:00'");
  cli::option(app, "--only", o->only, "run only this step (its dependencies must be complete; what Slurm tasks run)");
  cli::flag(app, "--report", o->report, "print the evaluate steps' metric table from their logs; run nothing");
  cli::footer(app,
              "Each step runs as a child process of this binary, its output in STATE/<id>.log; after success\n"
              "STATE/<id>.done records its command line and outputs. A step whose marker matches and whose\n"
              "outputs exist is skipped, so the same command continues after a crash; an interrupted training\n"
              "resumes with `pneumo train --resume`. Format and examples: docs/recipe.md.");
  return [o] { return run_recipe(*o); };
});

struct SplitCmd {
  rc::SplitOptions s;
};

PNEUMO_COMMAND("recipe-split", "a seeded stratified subset, held-out test list and k folds of an images+masks set",
               [](CLI::App& app) {
  auto o = std::make_shared<SplitCmd>();
  cli::option(app, "--images", o->s.images, "images folder").required().existing_dir();
  cli::option(app, "--masks", o->s.masks, "masks folder (0/255 PNGs, same stems)").required().existing_dir();
  cli::out_option(app, o->s.out, "output folder").required();
  cli::option(app, "--n", o->s.n, "a stratified subset of N images (0: all)", 0, int64_t(1) << 40);
  cli::option(app, "--test-fraction", o->s.test_fraction, "fraction held out as the test set", 0.01, 0.5);
  cli::option(app, "--k", o->s.k, "number of folds", 2, 1000);
  cli::seed_option(app, o->s.seed);
  cli::footer(app,
              "Writes OUT/train.txt, OUT/test.txt (image paths), OUT/test-ids.csv (a sample submission of the test\n"
              "ids), OUT/labels.csv (image,label of the training images), OUT/folds-seg (positives only) and\n"
              "OUT/folds-cls (all images) with fold{k}/val-images.txt for out-of-fold prediction.");
  return [o] {
    std::printf("%s\n", rc::split_dataset(o->s).c_str());
    return 0;
  };
});

struct ListsCmd {
  std::string folds, images, out;
};
PNEUMO_COMMAND("recipe-lists", "image-path lists fold{k}/val-images.txt for existing fold files", [](CLI::App& app) {
  auto o = std::make_shared<ListsCmd>();
  cli::option(app, "--folds", o->folds, "folds folder fold{k}/{train,val}.txt").required().existing_dir();
  cli::option(app, "--images", o->images, "the images folder the fold entries name").required().existing_dir();
  cli::out_option(app, o->out, "output folder (fold{k}/val-images.txt)").required();
  return [o] {
    rc::fold_image_lists(o->folds, o->images, o->out);
    std::printf("wrote %s/fold*/val-images.txt\n", o->out.c_str());
    return 0;
  };
});

struct ConcatCmd {
  std::string inputs, out;
};
PNEUMO_COMMAND("recipe-concat", "concatenate CSVs with one header (e.g. out-of-fold cls.csv of each fold)",
               [](CLI::App& app) {
  auto o = std::make_shared<ConcatCmd>();
  cli::option(app, "--inputs", o->inputs, "A.csv,B.csv,... with the same header").required();
  cli::out_option(app, o->out, "output CSV").required();
  return [o] {
    rc::concat_csv(cli::split_list(o->inputs), o->out);
    std::printf("wrote %s\n", o->out.c_str());
    return 0;
  };
});

}  // namespace
