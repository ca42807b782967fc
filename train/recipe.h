// `pneumo recipe`: a whole solution as data. A recipe file (JSON) lists steps; each step is a `pneumo
// <subcommand> ...` command line with its declared outputs and the steps it runs after. Steps are expanded
// over lists (models x folds), ordered by their dependencies, run as child processes of the same binary, and
// recorded: after a step succeeds, STATE/<id>.done (JSON: command line, outputs, seconds) is written
// atomically; a step whose marker has the same command line and whose outputs all exist is complete and
// skipped, so re-running after a crash continues where it stopped. The format is described in docs/recipe.md.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/check.h"

namespace pneumo::train::recipe {

// A recipe file that does not make sense: the message names the file and the key.
class RecipeError : public Error {
 public:
  using Error::Error;
};

// The cost of a step for the --dry-run estimate: `epochs` passes over `images` in batches of `batch` at
// `size`, each batch costing `units` times the network's measured forward+backward step time.
struct Cost {
  std::string model;
  int size = 0, batch = 1;
  int64_t images = 0;
  double epochs = 1, units = 1;  // units: 1 a training step (fwd+bwd), 1/3 a forward-only pass
};

struct Step {
  std::string id;
  std::vector<std::string> argv;         // arguments after `pneumo`
  std::vector<std::string> resume_argv;  // used instead when resume_if exists and the step is not complete
  std::string resume_if;
  std::vector<std::string> outputs;
  std::vector<std::string> after;  // ids of the steps this one needs (expanded)
  bool gpu = false;
  bool report = false;  // its log's metric lines go into the summary (evaluate steps)
  std::string label;    // the report's label
  bool has_cost = false;
  Cost cost;
  int level = 0;  // longest chain of dependencies before it (one Slurm array per level)
};

// A measured step time: `ms` for one forward+backward step at size x size, batch `batch`.
struct StepTime {
  int size = 0, batch = 1;
  double ms = 0;
  std::string source;
};

struct Plan {
  std::string file, description;
  std::string state;                         // folder of the .done markers and logs
  std::map<std::string, std::string> vars;   // after --set
  std::map<std::string, std::string> env;    // set in every step's environment
  std::vector<Step> steps;                   // in a valid execution order
  std::map<std::string, StepTime> times;     // by network name; "*" = any other
  std::string times_source;
};

// Reads and expands a recipe. `sets` are NAME=VALUE overrides of its "vars"; a variable whose value is
// null in the file must be set. Errors (RecipeError) name the file and the key.
Plan load_plan(const std::string& path, const std::vector<std::string>& sets);
Plan parse_plan(const std::string& json_text, const std::string& file, const std::vector<std::string>& sets);

// The step's marker file and log file.
std::string marker_path(const Plan& plan, const Step& step);
std::string log_path(const Plan& plan, const Step& step);
// Complete: the marker exists, records the same command line, and every declared output exists.
bool is_complete(const Plan& plan, const Step& step);
// Writes the marker atomically (temporary file + rename).
void write_marker(const Plan& plan, const Step& step, double seconds);
// The command line this step would run now (resume_argv when resume_if exists).
const std::vector<std::string>& command_for(const Step& step);

// GPU hours of a step from the plan's step-time table (scaled by pixels x batch from the measured size and
// batch); -1 when the step has no cost. `source` receives where the figure came from.
double estimate_hours(const Plan& plan, const Step& step, std::string* source = nullptr);

// A shell-quoted command line.
std::string shell_join(const std::vector<std::string>& argv);

// The --dry-run text: every step in order with its state, dependencies, command line and estimate.
std::string describe(const Plan& plan, const std::string& exe);

struct RunOptions {
  std::string exe;                // the pneumo binary the children run
  std::vector<std::string> gpus;  // empty: one step at a time, environment untouched
  std::string only;               // run just this step (its dependencies must be complete)
  bool verbose = true;
};
struct RunResult {
  int ran = 0, skipped = 0, failed = 0, not_run = 0;
  std::vector<std::string> ran_ids;
  std::string first_failure;  // "<id> (exit N), log <path>"
  int interrupted = 0;        // the signal (SIGINT/SIGTERM) that stopped the run, passed on to the children
};
// Runs every incomplete step whose dependencies are complete, up to one per GPU at a time.
RunResult run_plan(const Plan& plan, const RunOptions& o);
// The metric lines of the report steps' logs, as a table.
std::string report(const Plan& plan);

// Writes DIR/stage-L.sbatch (one array job per dependency level; each task runs
// `EXE recipe CONFIG --set ... --only ID`) and DIR/submit.sh (sbatch with --dependency=afterok chaining).
void emit_slurm(const Plan& plan, const std::string& dir, const std::string& exe, const std::string& config,
                const std::vector<std::string>& sets, const std::string& sbatch_extra);

// Helper commands of recipes (`pneumo recipe-split`, `pneumo recipe-concat`).
struct SplitOptions {
  std::string images, masks, out;
  int64_t n = 0;              // 0: all images; else a stratified subset of n
  double test_fraction = 0.2;  // held out from the folds
  int k = 5;
  uint64_t seed = 1992;
};
// Writes OUT/train-ids.txt, OUT/test.txt (image paths), OUT/test-ids.csv (a sample submission),
// OUT/labels.csv (image,label of the training images), OUT/folds-seg and OUT/folds-cls
// (fold{k}/{train,val}.txt) and OUT/folds-cls/fold{k}/val-images.txt (paths, for out-of-fold prediction).
// Returns a one-line summary.
std::string split_dataset(const SplitOptions& o);
// Writes image-path lists OUT/fold{k}/val-images.txt for existing fold lists (ids or <id>.png) of `folds`.
void fold_image_lists(const std::string& folds, const std::string& images, const std::string& out);
// Concatenates CSVs with the same header (kept once), atomically.
void concat_csv(const std::vector<std::string>& inputs, const std::string& out);

}  // namespace pneumo::train::recipe
