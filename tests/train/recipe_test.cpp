// pneumo recipe: planning (expansion, dependency order, levels, errors naming the file and key), the skip and
// resume logic with real child processes (/bin/sh as the "binary"), GPUs run concurrently with their device,
// Slurm output, the dry-run estimate, and configs/tiny-lesions.json end to end through the pneumo binary on
// real lesion images to a submission checked by re-decoding every row, then re-run with nothing re-run.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "augment/image.h"
#include "tests/train/data_test_util.h"
#include "train/rle_csv.h"
#include "train/submission.h"
#include "train/recipe.h"

namespace pneumo {
namespace {

namespace fs = std::filesystem;
namespace rc = train::recipe;

size_t index_of(const rc::Plan& p, const std::string& id) {
  for (size_t i = 0; i < p.steps.size(); ++i)
    if (p.steps[i].id == id) return i;
  ADD_FAILURE() << "no step " << id;
  return 0;
}

const rc::Step& step_of(const rc::Plan& p, const std::string& id) { return p.steps[index_of(p, id)]; }

// The error message of parsing `text` (as file "bad.json"), or "" when it parsed.
std::string parse_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    rc::parse_plan(text, "bad.json", sets);
  } catch (const rc::RecipeError& e) {
    return e.what();
  }
  return "";
}

const char* kShape = R"({
  "vars": {"work": "W", "opt": "", "data": null},
  "lists": {"folds": {"range": 2}, "m": [{"name": "a", "model": "unet_se50"}, {"name": "b", "model": "unet_ef3"}]},
  "steps": [
    {"id": "submit", "after": ["ens"], "run": ["submit", "--in", "${work}/masks"]},
    {"id": "ens", "after": ["pred-*"], "run": ["ensemble", "--inputs", {"join": "m", "as": "x", "value": "${work}/p/${x.name}"}]},
    {"id": "pred-${m.name}", "foreach": {"m": "m"}, "after": ["train-${m.name}-f*"],
     "run": ["predict", "--weights", {"join": "folds", "as": "f", "value": "${work}/${m.name}/f${f}.st"}]},
    {"id": "train-${m.name}-f${fold}", "foreach": {"m": "m", "fold": "folds"}, "gpu": true,
     "run": ["train", "--model", "${m.model}", "--data", "${data}", "--fold", "${fold}", ["--extra-data", "${opt}"]],
     "outputs": ["${work}/${m.name}/f${fold}.st"]}
  ]})";

TEST(Recipe, ExpandsForeachOrdersByDependenciesAndLevels) {
  const rc::Plan p = rc::parse_plan(kShape, "shape.json", {"data=/d"});
  ASSERT_EQ(p.steps.size(), 1u + 1u + 2u + 4u);
  // Every step comes after all of its dependencies.
  for (size_t i = 0; i < p.steps.size(); ++i)
    for (const std::string& d : p.steps[i].after) EXPECT_LT(index_of(p, d), i) << p.steps[i].id << " after " << d;
  EXPECT_EQ(step_of(p, "train-b-f1").level, 0);
  EXPECT_EQ(step_of(p, "pred-a").level, 1);
  EXPECT_EQ(step_of(p, "ens").level, 2);
  EXPECT_EQ(step_of(p, "submit").level, 3);
  EXPECT_EQ(step_of(p, "pred-a").after, (std::vector<std::string>{"train-a-f0", "train-a-f1"}));
  EXPECT_EQ(step_of(p, "ens").after.size(), 2u);
  // The optional group is dropped when its variable is empty; joins expand over the list.
  EXPECT_EQ(step_of(p, "train-b-f1").argv,
            (std::vector<std::string>{"train", "--model", "unet_ef3", "--data", "/d", "--fold", "1"}));
  EXPECT_EQ(step_of(p, "pred-b").argv, (std::vector<std::string>{"predict", "--weights", "W/b/f0.st,W/b/f1.st"}));
  EXPECT_EQ(step_of(p, "ens").argv, (std::vector<std::string>{"ensemble", "--inputs", "W/p/a,W/p/b"}));
  EXPECT_TRUE(step_of(p, "train-a-f0").gpu);
  EXPECT_FALSE(step_of(p, "ens").gpu);
  EXPECT_EQ(p.state, "W/.recipe");
  // --set fills the optional group.
  const rc::Plan q = rc::parse_plan(kShape, "shape.json", {"data=/d", "opt=/chex"});
  EXPECT_EQ(step_of(q, "train-a-f0").argv.back(), "/chex");
}

TEST(Recipe, BadConfigsAreClearErrorsNamingTheFileAndKey) {
  auto expect = [](const std::string& msg, std::vector<std::string> needles) {
    EXPECT_FALSE(msg.empty()) << "expected an error containing " << needles.front();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << msg << "' lacks '" << n << "'";
  };
  expect(parse_error(kShape), {"bad.json", "vars.data", "--set data="});
  expect(parse_error(kShape, {"data=/d", "nope=1"}), {"--set nope", "no variable 'nope'"});
  expect(parse_error("{\"steps\": [ {\"id\": \"a\", "), {"bad.json", "not valid JSON"});
  expect(parse_error(R"({"steps": [{"id": "a", "run": ["x", "${missing}"]}]})"),
         {"bad.json", "steps[0]", ".run[1]", "unknown variable '${missing}'"});
  expect(parse_error(R"({"steps": [{"id": "a", "run": ["x"], "after": ["zz*"]}]})"),
         {"bad.json", "steps[0] (a).after", "'zz*' matches no step id"});
  expect(parse_error(R"({"steps": [{"id": "a", "run": ["x"], "after": ["b"]}, {"id": "b", "run": ["y"], "after": ["a"]}]})"),
         {"bad.json", "cycle", "a -> b -> a"});
  expect(parse_error(R"({"steps": [{"id": "a", "run": ["x"], "outptus": []}]})"), {"bad.json", "steps[0]", "unknown key 'outptus'"});
  expect(parse_error(R"({"steps": [{"id": "a", "run": ["x"]}, {"id": "a", "run": ["y"]}]})"), {"bad.json", "two steps have the id 'a'"});
  expect(parse_error(R"({"steps": [{"id": "a", "foreach": {"m": "nolist"}, "run": ["x"]}]})"),
         {"bad.json", "steps[0].foreach.m", "no list 'nolist'"});
  expect(parse_error(R"({"step": []})"), {"bad.json", "unknown key 'step'"});
  expect(parse_error(R"({"steps": [{"id": "a", "run": ["x"], "cost": {"model": "m", "size": "big", "batch": 1, "images": 1}}]})"),
         {"bad.json", "steps[0] (a).cost.size", "'big' is not a number"});
  expect(parse_error(R"({"step_times": {"m": {"size": 1}}, "steps": [{"id": "a", "run": ["x"]}]})"),
         {"bad.json", "step_times.m"});
  // A file that does not exist.
  try {
    rc::load_plan("/nonexistent/recipe.json", {});
    ADD_FAILURE() << "no error";
  } catch (const rc::RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/recipe.json"), std::string::npos);
  }
}

// A recipe of shell steps: `pneumo` replaced by /bin/sh, so each step is `sh -c SCRIPT`.
std::string shell_recipe(const std::string& work, const std::string& b_script) {
  return R"({"vars": {"work": ")" + work + R"(", "tag": "one"},
  "steps": [
    {"id": "a", "run": ["-c", "echo ${tag} >> ${work}/a.txt"], "outputs": ["${work}/a.txt"]},
    {"id": "b", "after": ["a"], "run": ["-c", ")" + b_script + R"("], "outputs": ["${work}/b.txt"],
     "resume": {"if": "${work}/b.partial", "run": ["-c", "echo resumed >> ${work}/b.txt"]}},
    {"id": "c", "after": ["b"], "run": ["-c", "cat ${work}/b.txt > ${work}/c.txt"], "outputs": ["${work}/c.txt"]}
  ]})";
}

TEST(Recipe, CompleteStepsAreSkippedFailuresStopAndTheSameCommandContinues) {
  test::TempDir dir;
  const std::string w = dir.path();
  rc::RunOptions o;
  o.exe = "/bin/sh";
  o.verbose = false;
  // b fails the first time (exit 3): c must not run, b gets no marker.
  test::write_text(dir.file("b-fails"), "");
  const std::string b = "if [ -e " + w + "/b-fails ]; then exit 3; fi; echo b >> " + w + "/b.txt";
  rc::Plan p = rc::parse_plan(shell_recipe(w, b), "shell.json", {});
  rc::RunResult r = rc::run_plan(p, o);
  EXPECT_EQ(r.ran, 1);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.not_run, 1);
  EXPECT_NE(r.first_failure.find("b (exit 3)"), std::string::npos) << r.first_failure;
  EXPECT_TRUE(rc::is_complete(p, step_of(p, "a")));
  EXPECT_FALSE(fs::exists(rc::marker_path(p, step_of(p, "b"))));
  EXPECT_FALSE(fs::exists(dir.file("c.txt")));
  // Fixed: the same command continues; a is not run again (a.txt has one line).
  fs::remove(dir.file("b-fails"));
  r = rc::run_plan(p, o);
  EXPECT_EQ(r.ran, 2);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.ran_ids, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(test::read_bytes(dir.file("a.txt")), "one\n");
  // Everything complete: nothing runs.
  r = rc::run_plan(p, o);
  EXPECT_EQ(r.ran, 0);
  EXPECT_EQ(r.skipped, 3);
  // A lost output makes its step incomplete again (only that step runs).
  fs::remove(dir.file("c.txt"));
  r = rc::run_plan(p, o);
  EXPECT_EQ(r.ran_ids, std::vector<std::string>{"c"});
  // A changed command line (another --set) runs the step again, and the steps after it (their inputs
  // changed), as make would.
  rc::Plan p2 = rc::parse_plan(shell_recipe(w, b), "shell.json", {"tag=two"});
  r = rc::run_plan(p2, o);
  EXPECT_EQ(r.ran_ids, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(test::read_bytes(dir.file("a.txt")), "one\ntwo\n");
  // The marker records the command line and outputs.
  const std::string marker = test::read_bytes(rc::marker_path(p2, step_of(p2, "a")));
  EXPECT_NE(marker.find("echo two >>"), std::string::npos) << marker;
  EXPECT_NE(marker.find("a.txt"), std::string::npos);
  // An interrupted step (its resume condition holds) runs its resume command instead.
  fs::remove(rc::marker_path(p2, step_of(p2, "b")));
  test::write_text(dir.file("b.partial"), "");
  EXPECT_EQ(&rc::command_for(step_of(p2, "b")), &step_of(p2, "b").resume_argv);
  r = rc::run_plan(p2, o);
  EXPECT_EQ(r.ran_ids, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(test::read_bytes(dir.file("b.txt")), "b\nb\nresumed\n");
  EXPECT_EQ(test::read_bytes(dir.file("c.txt")), "b\nb\nresumed\n");  // c saw the re-run b, not its old output
  // Nothing changed since: nothing runs.
  r = rc::run_plan(p2, o);
  EXPECT_EQ(r.ran, 0);
  // A step that exits 0 without writing its declared output has failed.
  const std::string no_out = R"({"vars": {"work": ")" + w + R"("}, "steps": [
    {"id": "x", "run": ["-c", "true"], "outputs": ["${work}/never.txt"]}]})";
  rc::Plan p3 = rc::parse_plan(no_out, "noout.json", {});
  r = rc::run_plan(p3, o);
  EXPECT_EQ(r.failed, 1);
  EXPECT_NE(r.first_failure.find("did not write"), std::string::npos) << r.first_failure;
  // --only: one step, its dependencies must be complete.
  o.only = "c";
  fs::remove(dir.file("c.txt"));
  r = rc::run_plan(p2, o);
  EXPECT_EQ(r.ran_ids, std::vector<std::string>{"c"});
}

TEST(Recipe, ASignalIsPassedOnToTheRunningStepAndNothingNewStarts) {
  test::TempDir dir;
  const std::string w = dir.path();
  // The step records the SIGTERM it receives; the recipe must pass it on, start nothing after, and record no
  // marker for the interrupted step.
  const std::string json = R"({"vars": {"work": ")" + w + R"("}, "steps": [
    {"id": "long", "run": ["-c", "trap 'echo got > ${work}/term; exit 143' TERM; touch ${work}/started; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done"]},
    {"id": "next", "after": ["long"], "run": ["-c", "touch ${work}/next"]}]})";
  const rc::Plan p = rc::parse_plan(json, "signal.json", {});
  rc::RunOptions o;
  o.exe = "/bin/sh";
  o.verbose = false;
  std::thread killer([&] {
    sigset_t set;  // this thread never takes SIGTERM: it goes to the recipe's thread, as in the real binary
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    for (int i = 0; i < 300 && !fs::exists(dir.file("started")); ++i) ::usleep(100000);
    ::kill(::getpid(), SIGTERM);
  });
  const rc::RunResult r = rc::run_plan(p, o);
  killer.join();
  EXPECT_EQ(r.interrupted, SIGTERM);
  EXPECT_EQ(test::read_bytes(dir.file("term")), "got\n");
  EXPECT_FALSE(fs::exists(dir.file("next")));
  EXPECT_FALSE(fs::exists(rc::marker_path(p, step_of(p, "long"))));
  EXPECT_EQ(r.not_run, 1);
}

TEST(Recipe, GpusRunIndependentStepsAtOnceEachWithItsDevice) {
  test::TempDir dir;
  const std::string w = dir.path();
  // Two independent steps, each waiting (up to 20 s) for the other to have started: they finish only when
  // both run at the same time; each records the CUDA_VISIBLE_DEVICES it was given.
  const std::string json = R"({"vars": {"work": ")" + w + R"("}, "env": {"RECIPE_TEST": "${work}"}, "lists": {"s": ["x", "y"]}, "steps": [
    {"id": "g-${s}", "foreach": {"s": "s"}, "gpu": true,
     "run": ["-c", "touch ${work}/start-${s}; echo $CUDA_VISIBLE_DEVICES > ${work}/dev-${s}; i=0; while [ $(ls ${work} | grep -c start-) -lt 2 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; [ $i -lt 200 ]"]},
    {"id": "after", "after": ["g-*"], "run": ["-c", "echo $CUDA_VISIBLE_DEVICES $RECIPE_TEST > ${work}/dev-after"]}]})";
  rc::Plan p = rc::parse_plan(json, "gpus.json", {});
  rc::RunOptions o;
  o.exe = "/bin/sh";
  o.verbose = false;
  o.gpus = {"3", "5"};
  const rc::RunResult r = rc::run_plan(p, o);
  EXPECT_EQ(r.ran, 3) << r.first_failure;
  EXPECT_EQ(r.failed, 0);
  std::set<std::string> devs = {test::read_bytes(dir.file("dev-x")), test::read_bytes(dir.file("dev-y"))};
  EXPECT_EQ(devs, (std::set<std::string>{"3\n", "5\n"}));
  // A later step gets a free GPU, and every step the recipe's env.
  const std::string after = test::read_bytes(dir.file("dev-after"));
  EXPECT_TRUE(after == "3 " + w + "\n" || after == "5 " + w + "\n") << after;
}

TEST(Recipe, SlurmGetsOneArrayPerLevelChainedByAfterok) {
  test::TempDir dir;
  const rc::Plan p = rc::parse_plan(kShape, "shape.json", {"data=/d", "work=" + dir.file("w")});
  rc::emit_slurm(p, dir.file("slurm"), "/opt/pneumo", "configs/x.json", {"data=/d"}, "--partition=gpu");
  for (int level = 0; level < 4; ++level) ASSERT_TRUE(fs::exists(dir.file("slurm/stage-" + std::to_string(level) + ".sbatch")));
  EXPECT_FALSE(fs::exists(dir.file("slurm/stage-4.sbatch")));
  const std::string s0 = test::read_bytes(dir.file("slurm/stage-0.sbatch"));
  EXPECT_NE(s0.find("#SBATCH --array=0-3\n"), std::string::npos) << s0;
  EXPECT_NE(s0.find("#SBATCH --gres=gpu:1"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(dir.file("w/.recipe")));  // the --output folder exists before the jobs start
  EXPECT_NE(s0.find("#SBATCH --partition=gpu"), std::string::npos);
  EXPECT_NE(s0.find("#SBATCH --chdir=" + fs::current_path().string() + "\n"), std::string::npos) << s0;
  EXPECT_NE(s0.find("--set data=/d --only train-a-f0"), std::string::npos) << s0;
  EXPECT_NE(s0.find("# pneumo train --model unet_se50 --data /d --fold 0"), std::string::npos) << s0;
  const std::string s3 = test::read_bytes(dir.file("slurm/stage-3.sbatch"));
  EXPECT_NE(s3.find("--array=0-0"), std::string::npos);
  EXPECT_EQ(s3.find("--gres"), std::string::npos);  // no GPU step at that level
  const std::string submit = test::read_bytes(dir.file("slurm/submit.sh"));
  EXPECT_NE(submit.find("j0=$(sbatch --parsable stage-0.sbatch)"), std::string::npos) << submit;
  EXPECT_NE(submit.find("j1=$(sbatch --parsable --dependency=afterok:$j0 stage-1.sbatch)"), std::string::npos);
  EXPECT_NE(submit.find("j3=$(sbatch --parsable --dependency=afterok:$j2 stage-3.sbatch)"), std::string::npos);
}

TEST(Recipe, DryRunEstimatesGpuHoursFromTheMeasuredStepTime) {
  const std::string json = R"({
    "step_times": {"source": "bench", "unet_se50": {"size": 1024, "batch": 4, "ms": 69.6, "source": "H200 measured"},
                   "*": {"size": 512, "batch": 2, "ms": 10, "source": "guess"}},
    "steps": [
      {"id": "t", "run": ["train"], "cost": {"model": "unet_se50", "size": 1024, "batch": 4, "images": 1903, "epochs": 44}},
      {"id": "p", "run": ["predict"], "cost": {"model": "unet_ef5", "size": 768, "batch": 4, "images": 3205, "units": 0.5}},
      {"id": "n", "run": ["ensemble"]}]})";
  const rc::Plan p = rc::parse_plan(json, "est.json", {});
  std::string src;
  // 44 epochs x ceil(1903 / 4) = 476 steps x 69.6 ms.
  EXPECT_NEAR(rc::estimate_hours(p, step_of(p, "t"), &src), 44 * 476 * 69.6 / 3.6e6, 1e-12);
  EXPECT_EQ(src, "H200 measured");
  // Fallback: 10 ms at 512/2 scaled by (768/512)^2 x 4/2, 802 steps, half units.
  EXPECT_NEAR(rc::estimate_hours(p, step_of(p, "p"), &src), 802 * 10 * 2.25 * 2 * 0.5 / 3.6e6, 1e-12);
  EXPECT_EQ(src, "as '*': guess");
  EXPECT_LT(rc::estimate_hours(p, step_of(p, "n")), 0);
  const std::string text = rc::describe(p, "pneumo");
  EXPECT_NE(text.find("3 steps, 0 complete, 3 to run"), std::string::npos) << text;
  EXPECT_NE(text.find("$ pneumo train"), std::string::npos);
  EXPECT_NE(text.find("unet_se50: H200 measured"), std::string::npos);
}

TEST(Recipe, TheShippedConfigsPlan) {
  const std::string root = std::string(PNEUMO_TEST_FIXTURES) + "/../../configs/";
  const rc::Plan siim = rc::load_plan(root + "siim-2nd-place.json", {"data=/data"});
  int seg = 0, cls = 0, swa = 0;
  for (const rc::Step& s : siim.steps) {
    seg += s.id.rfind("train-seg_", 0) == 0;
    cls += s.id.rfind("train-cls_", 0) == 0;
    swa += s.id.rfind("swa-", 0) == 0;
  }
  EXPECT_EQ(seg, 25);  // 5 networks x 5 folds
  EXPECT_EQ(cls, 20);  // 4 classifiers x 5 folds
  EXPECT_EQ(swa, 45);
  const rc::Step& last = siim.steps.back();
  EXPECT_EQ(last.id, "submit");  // no truth given: no evaluate step
  EXPECT_NE(rc::shell_join(last.argv).find("--threshold 0.65"), std::string::npos);
  // CheXpert pseudo labels are optional: absent by default, added to the se50/ef3/deeplab runs when set.
  EXPECT_EQ(rc::shell_join(step_of(siim, "train-seg_unet_se50_1024-f0").argv).find("--extra-data"), std::string::npos);
  const rc::Plan chex = rc::load_plan(root + "siim-2nd-place.json", {"data=/data", "chex=/chex"});
  EXPECT_NE(rc::shell_join(step_of(chex, "train-seg_unet_se50_1024-f0").argv).find("--extra-data /chex"), std::string::npos);
  EXPECT_EQ(rc::shell_join(step_of(chex, "train-seg_unet_se101_1024-f0").argv).find("--extra-data"), std::string::npos);
  const rc::Plan tiny = rc::load_plan(root + "tiny-lesions.json", {});
  EXPECT_EQ(tiny.steps.front().id, "split");
  EXPECT_EQ(step_of(tiny, "submit").argv[0], "submit");
}

// The pneumo binary beside this test binary's folder (build/tests/tests_cpu -> build/pneumo).
std::string run_command(const std::string& cmd, int* rc) {
  std::string out;
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return "";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *rc = ::pclose(f);
  return out;
}

TEST(RecipeTiny, LesionsEndToEndToAVerifiedSubmissionThenNothingReruns) {
  const std::string data = std::string(PNEUMO_SHARED_DATA) + "/lesions-covid-qu-ex";
  if (!fs::is_directory(data)) GTEST_SKIP() << "shared data absent: " << data;
  const std::string exe = test::pneumo_binary();
  if (exe.empty()) GTEST_SKIP() << "the pneumo binary was not found beside the tests (set PNEUMO_BIN)";
  test::TempDir dir;
  const std::string config = std::string(PNEUMO_TEST_FIXTURES) + "/../../configs/tiny-lesions.json";
  // A smaller subset and fewer epochs than the config's defaults, to keep the test about a minute of CPU.
  const std::vector<std::string> sets = {"data=" + data, "work=" + dir.path(), "n=90", "epochs=2", "swa_epochs=0,1"};
  std::string cmd = "OMP_NUM_THREADS=1 " + exe + " recipe " + config;
  for (const auto& s : sets) cmd += " --set " + s;
  int rc = 0;
  const std::string first = run_command(cmd, &rc);
  ASSERT_EQ(rc, 0) << first;
  const rc::Plan plan = rc::load_plan(config, sets);
  ASSERT_NE(first.find(std::to_string(plan.steps.size()) + " steps ran, 0 were complete, 0 failed"), std::string::npos)
      << first;
  EXPECT_NE(first.find("| 5. + stacking"), std::string::npos) << first;

  // The submission, checked independently of the encoder: every id of the ids file once, in order; each row
  // decodes to the ensemble's mask where the stacked probability passed 0.65, else -1.
  const std::vector<std::string> ids = train::read_ids_file(dir.file("split/test-ids.csv"));
  ASSERT_GE(ids.size(), 10u);
  std::map<std::string, double> stacked;
  {
    std::ifstream f(dir.file("stacked.csv"));
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line)) {
      const size_t comma = line.find(',');
      ASSERT_NE(comma, std::string::npos) << line;
      stacked[line.substr(0, comma)] = std::stod(line.substr(comma + 1));
    }
  }
  ASSERT_EQ(stacked.size(), ids.size());
  const train::RleCsv sub = train::read_rle_csv(dir.file("submission.csv"));
  ASSERT_EQ(sub.ids(), ids);
  for (const std::string& id : ids) {
    const aug::Image mask = aug::read_image(dir.file("masks/" + id + ".png"));
    const aug::Image decoded = sub.mask(id, mask.height, mask.width);
    if (stacked.at(id) > 0.65) {
      EXPECT_EQ(decoded.pixels, mask.pixels) << id;
    } else {
      EXPECT_FALSE(sub.positive(id)) << id;
    }
  }
  // Tiny classifiers may close the gate on every image, so the same masks also go through submit ungated:
  // every row must decode to its mask, and some masks are not empty.
  const std::string ungated = run_command(exe + " submit --masks " + dir.file("masks") + " --ids " +
                                          dir.file("split/test-ids.csv") + " --out " + dir.file("ungated.csv"), &rc);
  ASSERT_EQ(rc, 0) << ungated;
  const train::RleCsv all = train::read_rle_csv(dir.file("ungated.csv"));
  ASSERT_EQ(all.ids(), ids);
  size_t non_empty = 0;
  for (const std::string& id : ids) {
    const aug::Image mask = aug::read_image(dir.file("masks/" + id + ".png"));
    EXPECT_EQ(all.mask(id, mask.height, mask.width).pixels, mask.pixels) << id;
    non_empty += all.positive(id);
  }
  EXPECT_GT(non_empty, 0u);

  // Again: every step is complete, nothing runs, the submission is untouched.
  const auto stamp = fs::last_write_time(dir.file("submission.csv"));
  const std::string second = run_command(cmd, &rc);
  ASSERT_EQ(rc, 0) << second;
  EXPECT_NE(second.find("0 steps ran, " + std::to_string(plan.steps.size()) + " were complete"), std::string::npos)
      << second;
  EXPECT_EQ(second.find("[run"), std::string::npos) << second;
  EXPECT_EQ(fs::last_write_time(dir.file("submission.csv")), stamp);

  // A training step without its marker (as after a crash) continues its run folder with --resume; the steps
  // that use its output run again after it (make's rule), the independent ones stay complete.
  fs::remove(rc::marker_path(plan, step_of(plan, "train-seg_unet_se-f0")));
  const std::string third = run_command(cmd, &rc);
  ASSERT_EQ(rc, 0) << third;
  EXPECT_NE(third.find("train-seg_unet_se-f0 (resuming): pneumo train --out"), std::string::npos) << third;
  EXPECT_NE(third.find("[run] eval-1"), std::string::npos) << third;  // scores fold 0's model again
  for (const char* independent : {"[run] split", "[run] train-seg_unet_se-f1", "[run] train-seg_unet_ef-f0"})
    EXPECT_EQ(third.find(independent), std::string::npos) << independent << "\n" << third;
  const std::string fourth = run_command(cmd, &rc);
  ASSERT_EQ(rc, 0) << fourth;
  EXPECT_NE(fourth.find("0 steps ran"), std::string::npos) << fourth;
}

}  // namespace
}  // namespace pneumo
