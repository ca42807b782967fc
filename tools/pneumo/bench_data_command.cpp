// `pneumo bench-data`: throughput of the data pipeline. (1) RLE decode + encode of every row of a competition
// CSV (default: the 2nd-place stage-1 ensemble predictions), on the CPU and, when a GPU is present, with the
// CUDA kernels; every re-encoded string is checked against the file. (2) Loader images/s at a given size with
// the reference training augmentation on N worker threads (default 1024, 2 workers).
#include <chrono>
#include <cstdio>
#include <memory>

#include "augment/pipeline.h"
#include "kernels/check.h"
#include "tensor/cuda_runtime.h"
#include "tools/pneumo/command.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/rle.h"
#include "train/rle_csv.h"

namespace {

using pneumo::cli::Args;
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

int run_bench_data(const Args& args) {
  const std::string data = args.get("data", "../shared/data");
  const std::string csv = args.get("csv", data + "/siim/predictions/stage1-ensemble-5fold-0.4.csv");
  const std::string images = args.get("images", data + "/siim/sample/images");
  const std::string labels = args.get("labels", data + "/siim/sample/train-rle-sample.csv");
  const int size = static_cast<int>(args.get_int("size", 1024));
  const int rle_size = static_cast<int>(args.get_int("rle-size", 1024));
  const int workers = static_cast<int>(args.get_int("workers", 2));
  const int batch = static_cast<int>(args.get_int("batch", 4));
  const int batches = static_cast<int>(args.get_int("batches", 20));
  const int repeats = static_cast<int>(args.get_int("repeats", 1));
  const int gpu_batch = static_cast<int>(args.get_int("gpu-batch", 64));
  const std::string preset = args.get("augment", "reference");
  const std::string device = args.get("device", "auto");
  const bool skip_rle = args.flag("skip-rle"), skip_loader = args.flag("skip-loader");
  args.finish();
  const bool gpu = device == "cuda" || (device == "auto" && pneumo::cuda::available());
  if (!skip_rle) bench_rle(csv, rle_size, repeats, gpu, static_cast<size_t>(gpu_batch));
  if (!skip_loader) bench_loader(images, labels, size, workers, batch, batches, preset);
  return 0;
}

PNEUMO_COMMAND("bench-data", "data pipeline throughput: RLE decode+encode (CPU, GPU) and loader images/s",
               "  pneumo bench-data [--data ../shared/data] [--csv PRED.csv] [--rle-size 1024] [--repeats 1]\n"
               "                    [--gpu-batch 64] [--device auto|cpu|cuda]\n"
               "                    [--images DIR --labels RLE.csv] [--size 1024] [--augment reference|validation]\n"
               "                    [--workers 2] [--batch 4] [--batches 20] [--skip-rle] [--skip-loader]\n"
               "Every re-encoded RLE is compared with the file; a mismatch is an error.",
               run_bench_data);

}  // namespace
