// pneumo train on the CPU: a tiny network on a small synthetic image/mask folder (make_synthetic, the same
// layout as ../shared/data/lungs-shenzhen). Each test runs a few short trainings (about a second each).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "augment/pipeline.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"
#include "train/dataset.h"
#include "train/folds.h"
#include "train/loader.h"
#include "train/metric.h"
#include "train/synthetic.h"
#include "train/trainer.h"
#include "train/data_test_util.h"
#include "train/tiny_train_config.h"
#include "nn/model_fixture.h"
#include "nn/models/weights_import.h"

namespace fs = std::filesystem;
using pneumo::test::TempDir;
using namespace pneumo;

namespace {

constexpr int kImages = 40;  // 4 folds: 30 train (7 steps of 4), 10 val

std::string make_data(const TempDir& tmp) {
  const std::string dir = tmp.file("data");
  train::write_synthetic_folder(dir, kImages, 64, 7);
  return dir;
}

struct Row {
  int epoch;
  double train_loss, val_loss, val_dice;
};

std::vector<Row> read_rows(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("epoch,lr,train_loss,val_loss,val_dice,", 0), 0u) << line;
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string item;
    while (std::getline(ss, item, ',')) f.push_back(item);
    EXPECT_GE(f.size(), 9u) << line;
    rows.push_back({std::stoi(f[0]), std::stod(f[2]), std::stod(f[3]), std::stod(f[4])});
  }
  return rows;
}


// Tensor bytes of a safetensors file (metadata aside: it carries timestamps-free tags only, but compare data).
void expect_same_tensors(const std::string& a, const std::string& b) {
  nn::SafetensorsContents x = nn::load_safetensors(a), y = nn::load_safetensors(b);
  ASSERT_EQ(x.tensors.size(), y.tensors.size()) << a << " vs " << b;
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
    const Tensor& p = x.tensors[i].second;
    const Tensor& q = y.tensors[i].second;
    ASSERT_EQ(p.nbytes(), q.nbytes()) << x.tensors[i].first;
    EXPECT_EQ(std::memcmp(p.raw_data(), q.raw_data(), p.nbytes()), 0) << x.tensors[i].first << " differs";
  }
}

// Runs pneumo with args (env additions "K=V"), stdout to `log`. With `signal_on`, sends `sig` as soon as the
// log shows that text. Returns the exit status, or 128 + signal.
int run_pneumo(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
               const std::string& log = "/dev/null", const std::string& signal_on = "", int sig = SIGKILL) {
  const std::string bin = test::pneumo_binary();
  pid_t pid = fork();
  if (pid == 0) {
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  if (!signal_on.empty()) {
    for (;;) {
      if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      std::ifstream in(log);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.find(signal_on) != std::string::npos) break;
      usleep(2000);
    }
    kill(pid, sig);
  }
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> cli_args(const train::TrainConfig& c) {
  return {"train", "--model", c.model, "--data", c.data, "--out", c.out, "--size", std::to_string(c.size),
          "--batch", std::to_string(c.batch), "--val-batch", std::to_string(c.val_batch), "--epochs",
          std::to_string(c.epochs), "--num-folds", std::to_string(c.num_folds), "--lr", "0.002", "--overlays", "3",
          "--workers", "2"};
}

}  // namespace

TEST(Train, TwoEpochsLowerTheLossAndWriteEveryArtefact) {
  TempDir tmp;
  const std::string data = make_data(tmp), run = tmp.file("run");
  train::TrainConfig c = test::tiny_train_config(data, run);
  c.epochs = 3;
  const train::TrainResult r = train::run_training(c);
  ASSERT_EQ(r.exit_code, 0) << r.message;
  EXPECT_EQ(r.epochs_done, 3);

  const std::vector<Row> rows = read_rows(run + "/metrics.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_LT(rows[2].train_loss, rows[0].train_loss);
  EXPECT_LT(rows[2].val_loss, rows[0].val_loss);
  for (const Row& row : rows) EXPECT_TRUE(row.val_dice >= 0 && row.val_dice <= 1);

  std::ifstream cj(run + "/config.json");
  const nlohmann::json j = nlohmann::json::parse(cj);
  EXPECT_EQ(j["settings"]["model"], "tiny_unet_se");
  EXPECT_EQ(j["settings"]["seed"], 1992);
  EXPECT_EQ(j["settings"]["loss"], "dice+bce");  // the se models' reference loss
  EXPECT_FALSE(j["engine"]["git_commit"].get<std::string>().empty());
  EXPECT_NE(j["device"].get<std::string>().find("cpu"), std::string::npos);

  // Folds were generated (positives only: every synthetic image is positive) and saved.
  const train::FoldSplit split = train::read_fold(run + "/folds", 0);
  EXPECT_EQ(split.train.size() + split.val.size(), static_cast<size_t>(kImages));

  // Curves and overlays are readable PNGs; overlays are 3 tiles of 64 px.
  const aug::Image curves = aug::read_image(run + "/curves.png");
  EXPECT_GT(curves.width, 400);
  for (int e = 0; e < 3; ++e) {
    const std::string name = "/overlays/epoch-00" + std::to_string(e) + ".png";
    const aug::Image ov = aug::read_image(run + name);
    EXPECT_EQ(ov.height, 64) << name;
    EXPECT_EQ(ov.width, 3 * 64 + 2 * 4) << name;
  }
  // Every epoch has a checkpoint whose names are the model's state_dict names, and its optimiser state.
  auto model = nn::models::create_model("tiny_unet_se");
  for (int e = 0; e < 3; ++e) {
    const std::string stem = run + "/checkpoints/epoch-00" + std::to_string(e);
    ASSERT_TRUE(fs::exists(stem + ".state.safetensors")) << stem;
    const nn::LoadReport rep = nn::load_state(*model, stem + ".safetensors", true);
    EXPECT_TRUE(rep.ok()) << rep.str();
  }
  // A fresh run into a folder that holds checkpoints is refused (nothing is overwritten).
  pneumo::test::expect_error_mentions([&] { train::run_training(test::tiny_train_config(data, run)); }, {"--resume"});
}

// --cuda-graph on the CPU is a mistake in the command, not a silent no-op (the GPU side:
// TrainGraphGpu.* in tests/train/train_graph_gpu_test.cpp).
TEST(Train, CudaGraphNeedsACudaDevice) {
  TempDir tmp;
  train::TrainConfig c = test::tiny_train_config(make_data(tmp), tmp.file("run"));
  c.cuda_graph = true;
  pneumo::test::expect_error_mentions([&] { train::run_training(c); }, {"--cuda-graph", "--device cuda"});
}

TEST(Train, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  TempDir tmp;
  const std::string data = make_data(tmp);
  train::TrainConfig a = test::tiny_train_config(data, tmp.file("a"));
  a.epochs = 3;
  ASSERT_EQ(train::run_training(a).exit_code, 0);

  // Interrupted in the middle of epoch 1 (7 steps per epoch: global step 10 is epoch 1 step 3).
  train::TrainConfig b = test::tiny_train_config(data, tmp.file("b"));
  b.epochs = 3;
  b.debug_stop_step = 10;
  const train::TrainResult rb = train::run_training(b);
  EXPECT_EQ(rb.exit_code, 128 + SIGINT);
  EXPECT_NE(rb.message.find("epoch 1 step 4"), std::string::npos) << rb.message;
  EXPECT_TRUE(fs::exists(tmp.file("b/checkpoints/resume.state.safetensors")));
  EXPECT_FALSE(fs::exists(tmp.file("b/checkpoints/epoch-001.safetensors")));
  train::TrainConfig again;
  again.out = tmp.file("b");
  const train::TrainResult rr = train::run_training(again, /*resume=*/true);
  ASSERT_EQ(rr.exit_code, 0) << rr.message;
  EXPECT_FALSE(fs::exists(tmp.file("b/checkpoints/resume.state.safetensors")));

  for (const char* e : {"epoch-001", "epoch-002"}) {
    expect_same_tensors(tmp.file(std::string("a/checkpoints/") + e + ".safetensors"),
                        tmp.file(std::string("b/checkpoints/") + e + ".safetensors"));
    expect_same_tensors(tmp.file(std::string("a/checkpoints/") + e + ".state.safetensors"),
                        tmp.file(std::string("b/checkpoints/") + e + ".state.safetensors"));
  }
  const std::vector<Row> ra = read_rows(tmp.file("a/metrics.csv")), rbm = read_rows(tmp.file("b/metrics.csv"));
  ASSERT_EQ(ra.size(), 3u);
  ASSERT_EQ(rbm.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ra[i].train_loss, rbm[i].train_loss) << "epoch " << i;
    EXPECT_EQ(ra[i].val_dice, rbm[i].val_dice) << "epoch " << i;
  }
}

TEST(Train, SigkillDuringAnEpochAndDuringACheckpointWriteLeaveResumableRuns) {
  if (test::pneumo_binary().empty()) GTEST_SKIP() << "the pneumo executable is not beside the tests (build it)";
  TempDir tmp;
  const std::string data = make_data(tmp);
  train::TrainConfig ref = test::tiny_train_config(data, tmp.file("ref"));
  ref.epochs = 3;
  ASSERT_EQ(train::run_training(ref).exit_code, 0);

  // Killed between the model file and the state file of epoch 1: epoch-001 is incomplete, ignored.
  train::TrainConfig k = ref;
  k.out = tmp.file("killed-save");
  EXPECT_EQ(run_pneumo(cli_args(k), {"PNEUMO_DEBUG_KILL_IN_SAVE=epoch-001"}), 128 + SIGKILL);
  EXPECT_TRUE(fs::exists(k.out + "/checkpoints/epoch-001.safetensors"));
  EXPECT_FALSE(fs::exists(k.out + "/checkpoints/epoch-001.state.safetensors"));
  ASSERT_EQ(run_pneumo({"train", "--out", k.out, "--resume"}), 0);
  expect_same_tensors(ref.out + "/checkpoints/epoch-002.safetensors", k.out + "/checkpoints/epoch-002.safetensors");

  // Killed in the middle of epoch 1 (after its step 3 of 7; each step pauses 40 ms so the kill lands there).
  const std::vector<std::string> slow{"PNEUMO_DEBUG_STEP_DELAY_MS=40", "PNEUMO_PROGRESS=plain"};
  train::TrainConfig m = ref;
  m.out = tmp.file("killed-epoch");
  EXPECT_EQ(run_pneumo(cli_args(m), slow, tmp.file("m.log"), "epoch 2/3 step 3/7"), 128 + SIGKILL);
  EXPECT_TRUE(fs::exists(m.out + "/checkpoints/epoch-000.state.safetensors"));
  EXPECT_FALSE(fs::exists(m.out + "/checkpoints/epoch-001.safetensors"));
  ASSERT_EQ(run_pneumo({"train", "--out", m.out, "--resume"}), 0);
  expect_same_tensors(ref.out + "/checkpoints/epoch-002.safetensors", m.out + "/checkpoints/epoch-002.safetensors");
  EXPECT_EQ(read_rows(m.out + "/metrics.csv").size(), 3u);

  // SIGTERM at the same place: the current step finishes, a resumable state is saved, the status is 128 + 15.
  train::TrainConfig t = ref;
  t.out = tmp.file("term");
  EXPECT_EQ(run_pneumo(cli_args(t), slow, tmp.file("t.log"), "epoch 2/3 step 3/7", SIGTERM), 128 + SIGTERM);
  EXPECT_TRUE(fs::exists(t.out + "/checkpoints/resume.state.safetensors"));
  ASSERT_EQ(run_pneumo({"train", "--out", t.out, "--resume"}), 0);
  expect_same_tensors(ref.out + "/checkpoints/epoch-002.safetensors", t.out + "/checkpoints/epoch-002.safetensors");
}

TEST(Train, NanLossStopsTheRunNamingEpochAndStepAndKeepsTheGoodCheckpoint) {
  TempDir tmp;
  const std::string data = make_data(tmp);
  train::TrainConfig c = test::tiny_train_config(data, tmp.file("run"));
  c.epochs = 3;
  c.debug_nan_step = 9;  // epoch 1, step 2
  const train::TrainResult r = train::run_training(c);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.message.find("NaN at epoch 1 step 2"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("epoch-000.safetensors"), std::string::npos) << r.message;
  EXPECT_TRUE(fs::exists(tmp.file("run/checkpoints/epoch-000.state.safetensors")));
  EXPECT_FALSE(fs::exists(tmp.file("run/checkpoints/epoch-001.safetensors")));
  EXPECT_FALSE(fs::exists(tmp.file("run/checkpoints/resume.safetensors")));
  // The epoch-0 weights are finite.
  for (const auto& [name, t] : nn::load_safetensors(tmp.file("run/checkpoints/epoch-000.safetensors")).tensors) {
    if (t.dtype() != DType::F32) continue;
    const float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_TRUE(std::isfinite(p[i])) << name;
  }
  EXPECT_EQ(read_rows(tmp.file("run/metrics.csv")).size(), 1u);
}

TEST(Train, CorruptImageIsNamedAndSkipBadContinues) {
  TempDir tmp;
  const std::string data = make_data(tmp);
  {
    std::ofstream bad(data + "/images/syn_00003.png", std::ios::binary | std::ios::trunc);
    bad << "\x89PNG\r\n\x1a\n this is not a PNG any more";
  }
  pneumo::test::expect_error_mentions([&] { train::run_training(test::tiny_train_config(data, tmp.file("a"))); },
                                      {"syn_00003.png"});
  train::TrainConfig c = test::tiny_train_config(data, tmp.file("b"));
  c.epochs = 1;
  c.skip_bad = true;
  const train::TrainResult r = train::run_training(c);
  EXPECT_EQ(r.exit_code, 0) << r.message;
  EXPECT_EQ(r.skipped_bad, 1);
}

TEST(Train, MetricsAgreeWithARecomputationFromSavedPredictions) {
  TempDir tmp;
  const std::string data = make_data(tmp), run = tmp.file("run");
  train::TrainConfig c = test::tiny_train_config(data, run);
  c.save_val_predictions = true;
  ASSERT_EQ(train::run_training(c).exit_code, 0);
  const std::vector<Row> rows = read_rows(run + "/metrics.csv");
  ASSERT_EQ(rows.size(), 2u);
  const train::FoldSplit split = train::read_fold(run + "/folds", 0);
  const aug::Pipeline val = aug::validation_pipeline(64);
  for (int e = 0; e < 2; ++e) {
    std::vector<train::DiceCounts> counts;
    for (const std::string& id : split.val) {
      const aug::Image pred = aug::read_image(run + "/predictions/epoch-00" + std::to_string(e) + "/" + id + ".png");
      aug::Image image = aug::read_image(data + "/images/" + id + ".png");
      aug::Image truth = aug::read_image(data + "/masks/" + id + ".png");
      val.apply(image, truth, 0, 0);
      counts.push_back(train::dice_counts(pred, truth));
    }
    EXPECT_NEAR(train::mean_dice(counts), rows[static_cast<size_t>(e)].val_dice, 1e-7) << "epoch " << e;
  }
}

TEST(Train, SyntheticSamplesAreDeterministicLungLike) {
  const train::Sample a = train::make_synthetic_sample(1992, 5, 96), b = train::make_synthetic_sample(1992, 5, 96);
  EXPECT_EQ(a.image.pixels, b.image.pixels);
  EXPECT_EQ(a.mask.pixels, b.mask.pixels);
  int64_t inside = 0, n_in = 0, outside = 0, n_out = 0;
  for (size_t i = 0; i < a.mask.pixels.size(); ++i) {
    if (a.mask.pixels[i]) inside += a.image.pixels[i], ++n_in;
    else outside += a.image.pixels[i], ++n_out;
  }
  const double frac = static_cast<double>(n_in) / a.mask.pixels.size();
  EXPECT_GT(frac, 0.1);
  EXPECT_LT(frac, 0.5);
  EXPECT_NE(inside / n_in, outside / n_out);  // lungs differ in brightness from the rest
  const train::Sample c = train::make_synthetic_sample(1992, 6, 96);
  EXPECT_NE(a.mask.pixels, c.mask.pixels);
}

TEST(Train, LoaderStartedMidEpochGivesTheRemainingBatchesOfTheFullEpoch) {
  auto ds = std::make_shared<train::SyntheticDataset>(23, 32, 3);
  const aug::Pipeline pipe = aug::reference_train_pipeline(32);
  train::AugmentFn fn = [pipe](aug::Image& im, aug::Image& m, uint64_t s, uint64_t i) { pipe.apply(im, m, s, i); };
  train::LoaderOptions o;
  o.batch_size = 4;
  o.workers = 2;
  train::Loader full(ds, fn, o), part(ds, fn, o);
  full.start_epoch(2);
  part.start_epoch(2, 3);
  int64_t b = 0;
  while (const train::Batch* x = full.next()) {
    if (b++ < 3) continue;
    const train::Batch* y = part.next();
    ASSERT_NE(y, nullptr);
    EXPECT_EQ(x->index, y->index);
    EXPECT_EQ(x->samples, y->samples);
    const size_t n = static_cast<size_t>(x->size) * 32 * 32 * 3;
    EXPECT_EQ(std::memcmp(x->images, y->images, n * sizeof(float)), 0) << "batch " << x->index;
  }
  EXPECT_EQ(b, 5);
  EXPECT_EQ(part.next(), nullptr);
}

TEST(Train, GrayRecoveredFromTheNormalisedBatchIsExact) {
  // Every grey level, through the loader's normalisation and back (what --gpu-augment does on the device).
  aug::Image img(16, 16);
  for (int i = 0; i < 256; ++i) img.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  Tensor norm = aug::normalize_imagenet(img).reshape({1, 16, 16, 3});
  Tensor gray = train::gray_u8_from_normalised(norm);
  ASSERT_EQ(gray.dtype(), DType::U8);
  ASSERT_EQ(gray.shape(), (Shape{1, 16, 16}));
  EXPECT_EQ(std::memcmp(gray.data<uint8_t>(), img.pixels.data(), 256), 0);
}

TEST(Train, InitLoadsAPneumoCheckpointOrAPyTorchExport) {
  TempDir tmp;
  const std::string data = make_data(tmp);
  const std::string fixture = std::string(PNEUMO_TEST_FIXTURES) + "/models/tiny_unet_se.weights.safetensors";
  // Learning rate ~0: the epoch-0 checkpoint holds the initial weights (up to 1e-12 steps).
  auto run_from = [&](const std::string& init, const std::string& out) {
    train::TrainConfig c = test::tiny_train_config(data, tmp.file(out));
    c.epochs = 1;
    c.lr = 1e-12;
    c.init = init;
    EXPECT_EQ(train::run_training(c).exit_code, 0);
    std::map<std::string, Tensor> w;
    for (auto& [name, t] : nn::load_safetensors(tmp.file(out + "/checkpoints/epoch-000.safetensors")).tensors)
      w[name] = t;
    return w;
  };
  auto max_diff = [](const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.numel(), b.numel());
    double d = 0;
    for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(double(a.data<float>()[i]) - b.data<float>()[i]));
    return d;
  };
  // From the PyTorch-layout export (conv weights KCRS, permuted on load).
  auto from_torch = run_from(fixture, "a");
  std::map<std::string, Tensor> torch_w;
  for (auto& [name, t] : test::read_f32_safetensors(fixture)) torch_w[name] = t;
  const std::string conv = "encoder.conv1.weight";
  EXPECT_LT(max_diff(from_torch.at(conv), nn::models::pytorch_to_engine_layout(torch_w.at(conv))), 1e-6);
  // From a pneumo checkpoint (by name).
  auto from_ckpt = run_from(tmp.file("a/checkpoints/epoch-000.safetensors"), "b");
  EXPECT_LT(max_diff(from_ckpt.at(conv), from_torch.at(conv)), 1e-6);
  // Without --init the weights are the seeded initialisation, far from both.
  auto fresh = run_from("", "c");
  EXPECT_GT(max_diff(fresh.at(conv), from_torch.at(conv)), 1e-2);
}

TEST(Train, ValBnBatchesChangesOnlyTheValidationNotTheRun) {
  TempDir tmp;
  const std::string data = make_data(tmp);
  train::TrainConfig a = test::tiny_train_config(data, tmp.file("a"));
  a.model = "tiny_unet_ef";
  a.loss = "dice";
  a.epochs = 2;
  train::TrainConfig b = a;
  b.out = tmp.file("b");
  b.val_bn_batches = 3;
  ASSERT_EQ(train::run_training(a).exit_code, 0);
  ASSERT_EQ(train::run_training(b).exit_code, 0);
  for (const char* e : {"epoch-000", "epoch-001"}) {
    expect_same_tensors(tmp.file(std::string("a/checkpoints/") + e + ".safetensors"),
                        tmp.file(std::string("b/checkpoints/") + e + ".safetensors"));
    expect_same_tensors(tmp.file(std::string("a/checkpoints/") + e + ".state.safetensors"),
                        tmp.file(std::string("b/checkpoints/") + e + ".state.safetensors"));
  }
  const std::vector<Row> ra = read_rows(tmp.file("a/metrics.csv")), rb = read_rows(tmp.file("b/metrics.csv"));
  ASSERT_EQ(ra.size(), 2u);
  EXPECT_EQ(ra[1].train_loss, rb[1].train_loss);
  EXPECT_NE(ra[1].val_loss, rb[1].val_loss);  // other BatchNorm statistics at validation
}
