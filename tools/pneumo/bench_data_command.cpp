// `pneumo bench-data`: throughput of the data pipeline. (1) RLE decode + encode of every row of a competition
// CSV (default: the 2nd-place stage-1 ensemble predictions), on the CPU and, when a GPU is present, with the
// CUDA kernels; every re-encoded string is checked against the file. (2) Loader images/s at a given size with
// the reference training augmentation on N worker threads (default 1024, 2 workers).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "augment/pipeline.h"
#include "kernels/check.h"
#include "tensor/cuda_runtime.h"
#include "tools/pneumo/command.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/rle.h"
#include "train/rle_csv.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Row {
  std::string id, rle;
};

void bench_rle(const std::string& csv_path, int size, int repeats, bool gpu, size_t gpu_batch) {
  const pneumo::train::RleCsv csv = pneumo::train::read_rle_csv(csv_path);
  std::vector<Row> rows;
  for (const std::string& id : csv.ids())
    for (const auto& e : csv.entries(id)) rows.push_back({id, e.rle});
  const double mb_per_mask = static_cast<double>(size) * size / 1e6;
  std::printf("RLE: %zu rows of %s, %dx%d masks (%.2f MB each as uint8)\n", rows.size(), csv_path.c_str(), size, size,
              mb_per_mask);

  // CPU, one thread: parse + decode to a mask, then encode + format, compare.
  size_t mismatches = 0;
  auto t0 = Clock::now();
  double t_decode = 0, t_encode = 0;
  for (int r = 0; r < repeats; ++r)
    for (const Row& row : rows) {
      auto a = Clock::now();
      const pneumo::aug::Image m = pneumo::train::rle_decode(row.rle, size, size, row.id);
      auto b = Clock::now();
      const std::string back = pneumo::train::rle_encode(m);
      t_decode += std::chrono::duration<double>(b - a).count();
      t_encode += std::chrono::duration<double>(Clock::now() - b).count();
      mismatches += back != row.rle;
    }
  const double total = seconds_since(t0);
  const double n = static_cast<double>(rows.size()) * repeats;
  std::printf("  CPU 1 thread : decode+encode %.0f masks/s (%.0f MB/s of mask); decode %.0f masks/s, encode %.0f masks/s; "
              "%zu mismatches\n", n / total, n * mb_per_mask / total, n / t_decode, n / t_encode, mismatches);
  PNEUMO_CHECK(mismatches == 0, "bench-data: ", mismatches, " RLE rows did not round-trip on the CPU");

  if (!gpu) return;
  // GPU: batches of masks decoded into device memory and encoded there; only runs cross the bus.
  const pneumo::Device dev = pneumo::Device::cuda(0);
  auto run_batch = [&](size_t begin, size_t end, double& td, double& te, size_t& bad) {
    std::vector<std::vector<pneumo::train::RleRun>> runs;
    auto a = Clock::now();
    for (size_t i = begin; i < end; ++i) runs.push_back(pneumo::train::parse_rle(rows[i].rle, rows[i].id));
    pneumo::Tensor masks = pneumo::train::batch_decode(runs, size, size, dev);
    pneumo::cuda::synchronize(0);
    auto b = Clock::now();
    const std::vector<std::string> enc = pneumo::train::batch_encode(masks, 127.0f);
    te += seconds_since(b);
    td += std::chrono::duration<double>(b - a).count();
    for (size_t i = begin; i < end; ++i) bad += enc[i - begin] != rows[i].rle;
  };
  double wd = 0, we = 0;
  size_t wb = 0;
  run_batch(0, std::min(rows.size(), gpu_batch), wd, we, wb);  // warm-up: allocator, module load
  double td = 0, te = 0;
  size_t bad = 0;
  t0 = Clock::now();
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < rows.size(); i += gpu_batch) run_batch(i, std::min(rows.size(), i + gpu_batch), td, te, bad);
  const double gt = seconds_since(t0);
  std::printf("  GPU (%s), batches of %zu: decode+encode %.0f masks/s (%.0f MB/s of mask); decode %.0f masks/s "
              "(parse + upload runs + paint), encode %.0f masks/s (threshold + runs on device, runs copied back, "
              "format); %zu mismatches\n",
              pneumo::cuda::devices().empty() ? "cuda" : pneumo::cuda::devices()[0].name.c_str(), gpu_batch, n / gt,
              n * mb_per_mask / gt, n / td, n / te, bad);
  PNEUMO_CHECK(bad == 0, "bench-data: ", bad, " RLE rows did not round-trip on the GPU");
}

void bench_loader(const std::string& images, const std::string& labels, int size, int workers, int batch, int batches,
                  const std::string& preset) {
  auto ds = std::make_shared<pneumo::train::RleCsvDataset>(images, labels);
  const pneumo::aug::Pipeline pipeline = pneumo::aug::pipeline_preset(preset, size);
  pneumo::train::AugmentFn fn = [&pipeline](pneumo::aug::Image& i, pneumo::aug::Image& m, uint64_t s, uint64_t k) {
    pipeline.apply(i, m, s, k);
  };
  pneumo::train::LoaderOptions opt;
  opt.batch_size = batch;
  opt.workers = workers;
  opt.drop_last = false;
  opt.height = size;
  opt.width = size;
  pneumo::train::Loader loader(ds, fn, opt);
  int epoch = 0;
  loader.start_epoch(epoch);
  auto next = [&]() {
    const pneumo::train::Batch* b = loader.next();
    if (!b) {
      loader.start_epoch(++epoch);
      b = loader.next();
    }
    return b;
  };
  next();  // warm-up (the first batch also pays thread start)
  int64_t images_done = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < batches; ++i) images_done += next()->size;
  const double t = seconds_since(t0);
  std::printf("Loader: %s (%zu images), '%s' augmentation at %dx%d, batch %d, %d workers: %.1f images/s "
              "(%.1f batches/s, %lld images in %.2f s; read + decode + augment + normalise into pinned NHWC)\n",
              images.c_str(), ds->size(), preset.c_str(), size, size, batch, workers, images_done / t,
              images_done / t / batch, static_cast<long long>(images_done), t);
}

struct BenchDataOptions {
  std::string data = "../shared/data", csv, images, labels, preset = "reference", device;
  int size = 1024, rle_size = 1024, workers = 2, batch = 4, batches = 20, iters = 1, gpu_batch = 64;
  bool skip_rle = false, skip_loader = false;
};

int run_bench_data(BenchDataOptions o) {
  if (o.csv.empty()) o.csv = o.data + "/siim/predictions/stage1-ensemble-5fold-0.4.csv";
  if (o.images.empty()) o.images = o.data + "/siim/sample/images";
  if (o.labels.empty()) o.labels = o.data + "/siim/sample/train-rle-sample.csv";
  const bool gpu = pneumo::cli::resolve_device(o.device).is_cuda();
  if (!o.skip_rle) bench_rle(o.csv, o.rle_size, o.iters, gpu, static_cast<size_t>(o.gpu_batch));
  if (!o.skip_loader) bench_loader(o.images, o.labels, o.size, o.workers, o.batch, o.batches, o.preset);
  return 0;
}

PNEUMO_COMMAND("bench-data", "data pipeline throughput: RLE decode+encode (CPU, GPU) and loader images/s",
               [](CLI::App& app) {
                 namespace cli = pneumo::cli;
                 auto o = std::make_shared<BenchDataOptions>();
                 cli::option(app, "--data", o->data, "the shared data folder (default locations of the files below)");
                 cli::option(app, "--csv", o->csv, "RLE CSV to decode and re-encode (default: DATA/siim/predictions/"
                                                   "stage1-ensemble-5fold-0.4.csv)");
                 cli::option(app, "--rle-size", o->rle_size, "mask side for the RLE benchmark", 1, 16384);
                 cli::iters_option(app, o->iters, 1);
                 cli::option(app, "--gpu-batch", o->gpu_batch, "masks per GPU batch", 1, 4096);
                 cli::device_option(app, o->device);
                 cli::option(app, "--images", o->images, "image folder of the loader benchmark (default: DATA/siim/sample/images)");
                 cli::option(app, "--labels", o->labels, "RLE CSV of those images (default: DATA/siim/sample/train-rle-sample.csv)");
                 cli::size_option(app, o->size, 1024, 32, 4096);
                 cli::choice(app, "--augment", o->preset, "augmentation of the loader benchmark", {"reference", "validation"});
                 cli::workers_option(app, o->workers);
                 cli::option(app, "--batch", o->batch, "images per batch", 1, 1024);
                 cli::option(app, "--batches", o->batches, "timed batches", 1, 1000000);
                 cli::flag(app, "--skip-rle", o->skip_rle, "skip the RLE benchmark");
                 cli::flag(app, "--skip-loader", o->skip_loader, "skip the loader benchmark");
                 cli::footer(app, "Every re-encoded RLE is compared with the file; a mismatch is an error.");
                 return [o] { return run_bench_data(*o); };
               });

}  // namespace
