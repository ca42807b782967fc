// Crash safety of `pneumo train` at scale (docs/reliability.md): SIGKILL at 20 seeded random moments, a
// corrupt checkpoint, and a disk that fills up during a checkpoint write. Each runs the built pneumo
// executable on a tiny network over make_synthetic images (64x64, 7 steps an epoch) and compares the end
// with an uninterrupted run of the same settings: the final model file must be the same bytes.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "nn/checkpoint.h"
#include "train/data_test_util.h"
#include "train/synthetic.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using pneumo::test::TempDir;
using namespace pneumo;

namespace {

constexpr int kEpochs = 3;
constexpr int kSteps = 7;  // 40 images, 4 folds: 30 training images in batches of 4

// How a child run ends: killed on purpose, or its exit status; its stdout and stderr.
struct ChildRun {
  int status = -1;  // exit code, or 128 + signal
  bool killed = false;
  std::string out, err;
};

struct KillPlan {
  std::string when_log_shows;  // kill once stdout shows this ("" = use delay_ms from the start)
  int delay_ms = -1;           // then wait this long; -1 = never kill
  std::vector<std::string> env;
  rlim_t file_size_limit = RLIM_INFINITY;
};

ChildRun run_pneumo(const std::vector<std::string>& args, const std::string& logs, const KillPlan& plan = {}) {
  const std::string bin = test::pneumo_binary();
  const std::string out_log = logs + ".out", err_log = logs + ".err";
  const pid_t pid = fork();
  if (pid == 0) {
    for (const std::string& e : plan.env) putenv(const_cast<char*>(e.c_str()));
    putenv(const_cast<char*>("PNEUMO_PROGRESS=plain"));
    if (!std::freopen(out_log.c_str(), "w", stdout) || !std::freopen(err_log.c_str(), "w", stderr)) _exit(126);
    if (plan.file_size_limit != RLIM_INFINITY) {
      const rlimit r{plan.file_size_limit, plan.file_size_limit};
      if (setrlimit(RLIMIT_FSIZE, &r) != 0) _exit(126);
    }
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  ChildRun r;
  int status = 0;
  bool exited = false;
  if (plan.delay_ms >= 0) {
    while (!plan.when_log_shows.empty()) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      if (test::read_bytes(out_log).find(plan.when_log_shows) != std::string::npos) break;
      usleep(1000);
    }
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(plan.delay_ms));
      if (waitpid(pid, &status, WNOHANG) == pid) exited = true;
      else {
        kill(pid, SIGKILL);
        r.killed = true;
      }
    }
  }
  if (!exited) waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_bytes(out_log);
  r.err = test::read_bytes(err_log);
  return r;
}

std::vector<std::string> train_args(const std::string& data, const std::string& out) {
  return {"train", "--model", "tiny_unet_se", "--data", data, "--out", out, "--size", "64", "--batch", "4",
          "--val-batch", "5", "--epochs", std::to_string(kEpochs), "--num-folds", "4", "--lr", "0.002",
          "--overlays", "0", "--workers", "2"};
}

std::string ckpt(const std::string& run, int epoch, bool state) {
  char name[64];
  std::snprintf(name, sizeof name, "/checkpoints/epoch-%03d%s.safetensors", epoch, state ? ".state" : "");
  return run + name;
}

// Epochs whose checkpoint pair is complete (both files, from the same write).
int completed_epochs(const std::string& run) {
  int done = 0;
  while (done < kEpochs) {
    if (!fs::exists(ckpt(run, done, false)) || !fs::exists(ckpt(run, done, true))) break;
    const nn::Metadata a = nn::read_safetensors_metadata(ckpt(run, done, false));
    const nn::Metadata b = nn::read_safetensors_metadata(ckpt(run, done, true));
    if (a.at("trainer.tag") != b.at("trainer.tag")) break;
    ++done;
  }
  return done;
}

std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.path().filename().string().find(".tmp") != std::string::npos) found.push_back(e.path().string());
  return found;
}

// The tensors of the optimiser/loop state file (its metadata holds wall-clock seconds, which differ).
void expect_same_state_tensors(const std::string& a, const std::string& b) {
  nn::SafetensorsContents x = nn::load_safetensors(a), y = nn::load_safetensors(b);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
    ASSERT_EQ(x.tensors[i].second.nbytes(), y.tensors[i].second.nbytes());
    EXPECT_EQ(std::memcmp(x.tensors[i].second.raw_data(), y.tensors[i].second.raw_data(), x.tensors[i].second.nbytes()),
              0)
        << x.tensors[i].first;
  }
  for (const char* k : {"trainer.epoch", "trainer.step", "trainer.gen_seed", "trainer.gen_offset", "trainer.loss_sum"})
    EXPECT_EQ(x.metadata.at(k), y.metadata.at(k)) << k;
}

class CrashSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::pneumo_binary().empty()) GTEST_SKIP() << "the pneumo executable is not beside the tests (build it)";
    data_ = tmp_.file("data");
    train::write_synthetic_folder(data_, 40, 64, 7);
  }
  // The uninterrupted run everything is compared with.
  std::string reference() {
    const std::string ref = tmp_.file("ref");
    const ChildRun r = run_pneumo(train_args(data_, ref), tmp_.file("ref"));
    EXPECT_EQ(r.status, 0) << r.err;
    return ref;
  }
  void expect_same_end(const std::string& ref, const std::string& run) {
    const std::string last_model = ckpt(ref, kEpochs - 1, false);
    ASSERT_TRUE(fs::exists(ckpt(run, kEpochs - 1, false)));
    // The model file, metadata and checksum included: byte for byte.
    EXPECT_TRUE(test::read_bytes(last_model) == test::read_bytes(ckpt(run, kEpochs - 1, false))) << "final weights differ";
    expect_same_state_tensors(ckpt(ref, kEpochs - 1, true), ckpt(run, kEpochs - 1, true));
    EXPECT_TRUE(temporaries(run).empty()) << temporaries(run).front();
  }
  TempDir tmp_;
  std::string data_;
};

}  // namespace

// 20 SIGKILLs at seeded random moments, each followed by `pneumo train --resume`: a random step of the
// epochs still to run (plus 0-20 ms), the first 0-150 ms of a process (start-up, data, folds), and the
// inside of checkpoint writes (half-way through the model file's bytes, between the model and state files,
// half-way through the state file). The run then finishes; its weights equal the uninterrupted run's.
TEST_F(CrashSafety, TwentySigkillsAtRandomMomentsThenResumeGiveTheSameWeights) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string ref = reference();
  const std::string run = tmp_.file("killed");
  std::mt19937 rng(20261207);
  int kills_in_writes = 0, kills_in_steps = 0, kills_at_start = 0;
  for (int kill = 0; kill < 20; ++kill) {
    const int done = completed_epochs(run);
    ASSERT_LT(done, kEpochs) << "the run finished before kill " << kill << " (the kill before it landed too late)";
    KillPlan plan;
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 3) fs::remove(ckpt(run, done, false));  // (a lone model file left by an earlier kill)
    std::string what;
    if (kind < 3) {  // inside the checkpoint write of the next epoch
      const std::string e = ckpt(run, done, false).substr(run.size() + 13);  // "epoch-00N.safetensors"
      const std::string stem = e.substr(0, 9);
      const int phase = static_cast<int>(rng() % 3);
      plan.env = {phase == 0   ? "PNEUMO_DEBUG_KILL_WRITING=" + stem + ".safetensors"
                  : phase == 1 ? "PNEUMO_DEBUG_KILL_IN_SAVE=" + stem
                               : "PNEUMO_DEBUG_KILL_WRITING=" + stem + ".state.safetensors"};
      // (no kill from here: the process raises SIGKILL itself at that point)
      what = plan.env[0];
      ++kills_in_writes;
    } else if (kind < 4) {  // start-up
      plan.delay_ms = static_cast<int>(rng() % 150);
      what = "start + " + std::to_string(plan.delay_ms) + " ms";
      ++kills_at_start;
    } else {  // after a step of an epoch still to run
      // Not after the very last step: the last checkpoint could then be written within the delay.
      const int global = done * kSteps + static_cast<int>(rng() % ((kEpochs - done) * kSteps - 1));
      plan.when_log_shows = "epoch " + std::to_string(global / kSteps + 1) + "/" + std::to_string(kEpochs) + " step " +
                            std::to_string(global % kSteps + 1) + "/" + std::to_string(kSteps) + " ";
      plan.delay_ms = static_cast<int>(rng() % 21);
      what = plan.when_log_shows + "+ " + std::to_string(plan.delay_ms) + " ms";
      ++kills_in_steps;
    }
    // Killed before config.json was written, the run is started again rather than resumed.
    const bool fresh = !fs::exists(run + "/config.json");
    const ChildRun r = run_pneumo(fresh ? train_args(data_, run) : std::vector<std::string>{"train", "--out", run, "--resume"},
                             tmp_.file("kill" + std::to_string(kill)), plan);
    ASSERT_EQ(r.status, 128 + SIGKILL) << "kill " << kill << " (" << what << ") did not land: " << r.err;
    if (kind < 3) {  // it died where it was meant to: a half-written temporary file, or between the two files
      const bool between = what.find("KILL_IN_SAVE") != std::string::npos;
      const bool in_state = what.find(".state.") != std::string::npos;
      EXPECT_EQ(temporaries(run + "/checkpoints").size(), between ? 0u : 1u) << what;
      EXPECT_EQ(fs::exists(ckpt(run, done, false)), between || in_state) << what;
      EXPECT_FALSE(fs::exists(ckpt(run, done, true))) << what;
    }
  }
  const ChildRun last = run_pneumo({"train", "--out", run, "--resume"}, tmp_.file("last"));
  ASSERT_EQ(last.status, 0) << last.err;
  expect_same_end(ref, run);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ crash    ] 20 SIGKILLs (%d in checkpoint writes, %d after steps, %d at start-up) in %.1f s\n",
              kills_in_writes, kills_in_steps, kills_at_start, seconds);
  EXPECT_GE(kills_in_writes, 3);
  EXPECT_GE(kills_in_steps, 8);
}

// A full disk (here: a file-size limit, so the write fails with EFBIG) during a checkpoint write: the run
// stops with one line naming the file, the previous checkpoint is untouched, no temporary file is left,
// and the run resumes to the same weights once there is room.
TEST_F(CrashSafety, DiskFullDuringACheckpointWriteKeepsThePreviousOneAndTheRunResumes) {
  const std::string ref = reference();
  const std::string run = tmp_.file("full");
  KillPlan after_epoch0;  // epoch-000 written, then killed in epoch 2
  after_epoch0.when_log_shows = "epoch 2/3 step 2/7 ";
  after_epoch0.delay_ms = 0;
  ASSERT_EQ(run_pneumo(train_args(data_, run), tmp_.file("a"), after_epoch0).status, 128 + SIGKILL);
  ASSERT_EQ(completed_epochs(run), 1);
  const std::string model0 = test::read_bytes(ckpt(run, 0, false)), state0 = test::read_bytes(ckpt(run, 0, true));
  ASSERT_LT(model0.size(), state0.size());  // the state holds two Adam moments per parameter

  // Room for neither file, then room for the model file only.
  for (const size_t limit : {model0.size() / 2, (model0.size() + state0.size()) / 2}) {
    KillPlan full;
    full.file_size_limit = limit;
    const ChildRun r = run_pneumo({"train", "--out", run, "--resume"}, tmp_.file("full" + std::to_string(limit)), full);
    EXPECT_EQ(r.status, 1) << r.err;
    const std::string failed = limit < model0.size() ? ckpt(run, 1, false) : ckpt(run, 1, true);
    EXPECT_NE(r.err.find("cannot write '" + failed + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_EQ(r.err.find(".cpp:"), std::string::npos) << "engine location in: " << r.err;
    EXPECT_TRUE(test::read_bytes(ckpt(run, 0, false)) == model0) << "the previous checkpoint changed";
    EXPECT_TRUE(test::read_bytes(ckpt(run, 0, true)) == state0) << "the previous state changed";
    EXPECT_FALSE(fs::exists(ckpt(run, 1, true)));
    EXPECT_TRUE(temporaries(run + "/checkpoints").empty()) << temporaries(run + "/checkpoints").front();
    EXPECT_EQ(completed_epochs(run), 1);
  }
  const ChildRun r = run_pneumo({"train", "--out", run, "--resume"}, tmp_.file("room"));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_end(ref, run);
}

// A checkpoint corrupted on disk (a flipped bit in a tensor; a truncated file) stops --resume with one line
// naming it; once it is moved aside the run resumes from the one before and ends the same.
TEST_F(CrashSafety, CorruptCheckpointStopsResumeNamingTheFileAndTheOneBeforeStillServes) {
  const std::string ref = reference();
  const std::string run = tmp_.file("corrupt");
  KillPlan after_epoch1;
  after_epoch1.when_log_shows = "epoch 3/3 step 1/7 ";
  after_epoch1.delay_ms = 0;
  ASSERT_EQ(run_pneumo(train_args(data_, run), tmp_.file("a"), after_epoch1).status, 128 + SIGKILL);
  ASSERT_EQ(completed_epochs(run), 2);

  const std::string model1 = ckpt(run, 1, false), state1 = ckpt(run, 1, true);
  const std::string good_model = test::read_bytes(model1), good_state = test::read_bytes(state1);
  struct Damage {
    std::string file, bytes, expect;
  };
  std::string flipped = good_model;
  flipped[flipped.size() - 100] = static_cast<char>(flipped[flipped.size() - 100] ^ 0x04);
  std::string flipped_state = good_state;
  flipped_state[flipped_state.size() / 2 + 7] ^= 0x20;
  const std::vector<Damage> damages{{model1, flipped, "checksum mismatch"},
                                    {state1, flipped_state, "checksum mismatch"},
                                    {model1, good_model.substr(0, good_model.size() - 64), "outside the data"},
                                    {state1, good_state.substr(0, 20), "exceeds the file"}};
  for (const Damage& d : damages) {
    { std::ofstream(d.file, std::ios::binary | std::ios::trunc) << d.bytes; }
    const ChildRun r = run_pneumo({"train", "--out", run, "--resume"}, tmp_.file("bad"));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("'" + d.file + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(d.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("move the checkpoint aside"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_EQ(r.err.find(".cpp:"), std::string::npos) << "engine location in: " << r.err;
    { std::ofstream(d.file, std::ios::binary | std::ios::trunc) << (d.file == model1 ? good_model : good_state); }
  }
  // Moved aside (a flipped model byte again): epoch 1 is trained again from epoch 0's checkpoint.
  { std::ofstream(model1, std::ios::binary | std::ios::trunc) << flipped; }
  fs::create_directories(tmp_.file("aside"));
  fs::rename(model1, tmp_.file("aside/m"));
  fs::rename(state1, tmp_.file("aside/s"));
  const ChildRun r = run_pneumo({"train", "--out", run, "--resume"}, tmp_.file("resumed"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("epoch-000"), std::string::npos) << r.out;
  expect_same_end(ref, run);
}
