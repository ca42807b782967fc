// Datasets and the loader on small generated folders (PNG images + masks, an RLE CSV) and on the real sets:
// loaded pixels equal the files, batches are bit-identical for any worker count, every sample appears once
// per epoch, normalisation/mask/label layout, and errors naming a missing or corrupt file.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "augment/pipeline.h"
#include "kernels/philox.h"
#include "support/checkers.h"
#include "train/data_test_util.h"
#include "train/dataset.h"
#include "train/loader.h"

namespace pneumo::train {
namespace {

// A folder of n images (h x w) with masks, images/ + masks/ + labels.csv (RLE of the same masks).
struct Fixture {
  test::TempDir dir;
  std::vector<std::string> ids;
  std::vector<aug::Image> images, masks;
  Fixture(int n, int h, int w) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (int i = 0; i < n; ++i) {
      const std::string id = "img" + std::to_string(i);
      aug::Image img(h, w, 1), m(h, w, 1, 0);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          img.at(y, x) = static_cast<uint8_t>((x * 7 + y * 3 + i * 11) % 256);
          if (i % 3 != 0 && (x - i) * (x - i) + (y - h / 2) * (y - h / 2) < (h * h) / 16) m.at(y, x) = 255;
        }
      std::filesystem::create_directories(dir.file("images"));
      std::filesystem::create_directories(dir.file("masks"));
      aug::write_png(dir.file("images/" + id + ".png"), img);
      aug::write_png(dir.file("masks/" + id + ".png"), m);
      rows.push_back({id, rle_encode(m)});
      ids.push_back(id);
      images.push_back(img);
      masks.push_back(m);
    }
    write_rle_csv(dir.file("labels.csv"), rows);
  }
};

TEST(Dataset, RleCsvAndMaskFolderLoadTheFiles) {
  Fixture f(5, 12, 10);
  auto rle = std::make_shared<RleCsvDataset>(f.dir.file("images"), f.dir.file("labels.csv"));
  auto folder = std::make_shared<MaskFolderDataset>(f.dir.file("images"), f.dir.file("masks"));
  ASSERT_EQ(rle->size(), 5u);
  ASSERT_EQ(folder->size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(rle->id(i), f.ids[i]);
    EXPECT_EQ(folder->id(i), f.ids[i]);
    for (const Dataset* d : {static_cast<const Dataset*>(rle.get()), static_cast<const Dataset*>(folder.get())}) {
      const Sample s = d->load(i);
      EXPECT_EQ(s.image.pixels, f.images[i].pixels);
      EXPECT_EQ(s.mask.pixels, f.masks[i].pixels);
      EXPECT_EQ(s.positive, i % 3 != 0);
      EXPECT_EQ(d->positive(i), i % 3 != 0);
    }
  }
  ConcatDataset both({rle, folder});
  EXPECT_EQ(both.size(), 10u);
  EXPECT_EQ(both.id(7), "img2");
  EXPECT_EQ(both.load(7).mask.pixels, f.masks[2].pixels);
}

TEST(Dataset, MissingAndCorruptFilesAreNamed) {
  Fixture f(3, 8, 8);
  std::filesystem::remove(f.dir.file("images/img1.png"));
  test::write_text(f.dir.file("masks/img2.png"), "corrupt");
  RleCsvDataset rle(f.dir.file("images"), f.dir.file("labels.csv"));
  test::expect_error_mentions([&] { rle.load(1); }, {"img1"});
  MaskFolderDataset folder(f.dir.file("images"), f.dir.file("masks"), {"img0", "img1", "img2"});
  test::expect_error_mentions([&] { folder.load(1); }, {"images/img1.png"});
  test::expect_error_mentions([&] { folder.load(2); }, {"masks/img2.png"});
  test::expect_error_mentions([&] { MaskFolderDataset(f.dir.file("nope"), ""); }, {"nope"});
  test::expect_error_mentions([&] { RleCsvDataset(f.dir.file("images"), f.dir.file("labels.csv"), {"zzz"}); }, {"zzz", "labels.csv"});
}

// A deterministic stand-in augmentation: flips and shifts intensities from Philox(seed, index) only.
void toy_augment(aug::Image& image, aug::Image& mask, uint64_t seed, uint64_t index) {
  const Philox4 r = philox4x32_10(index, 77, seed);
  const int shift = static_cast<int>(r.v[0] % 50);
  for (uint8_t& v : image.pixels) v = static_cast<uint8_t>(std::min(255, v + shift));
  if (r.v[1] & 1) {
    for (int y = 0; y < image.height; ++y) {
      std::reverse(image.row(y), image.row(y) + image.width);
      std::reverse(mask.row(y), mask.row(y) + mask.width);
    }
  }
}

struct EpochData {
  std::vector<float> images, masks, labels;
  std::vector<int64_t> samples;
  std::vector<std::string> ids;
};

EpochData run_epoch(const std::shared_ptr<const Dataset>& ds, AugmentFn fn, LoaderOptions opt, int epoch,
                    Loader* reuse = nullptr) {
  std::unique_ptr<Loader> own;
  Loader* loader = reuse;
  if (!loader) {
    own = std::make_unique<Loader>(ds, fn, opt);
    loader = own.get();
  }
  loader->start_epoch(epoch);
  EpochData d;
  while (const Batch* b = loader->next()) {
    const size_t hw = static_cast<size_t>(b->height) * b->width;
    d.images.insert(d.images.end(), b->images, b->images + hw * 3 * b->size);
    d.masks.insert(d.masks.end(), b->masks, b->masks + hw * b->size);
    d.labels.insert(d.labels.end(), b->labels, b->labels + b->size);
    d.samples.insert(d.samples.end(), b->samples.begin(), b->samples.end());
    d.ids.insert(d.ids.end(), b->ids.begin(), b->ids.end());
  }
  return d;
}

TEST(Loader, IdenticalForAnyWorkerCount) {
  Fixture f(11, 16, 12);
  auto ds = std::make_shared<MaskFolderDataset>(f.dir.file("images"), f.dir.file("masks"));
  LoaderOptions opt;
  opt.batch_size = 3;
  opt.drop_last = false;
  opt.seed = 5;
  opt.workers = 0;
  const EpochData ref = run_epoch(ds, toy_augment, opt, 2);
  for (int workers : {1, 2, 5}) {
    for (int prefetch : {1, 3}) {
      opt.workers = workers;
      opt.prefetch = prefetch;
      const EpochData d = run_epoch(ds, toy_augment, opt, 2);
      EXPECT_EQ(d.samples, ref.samples) << workers;
      EXPECT_TRUE(d.images == ref.images) << "images differ with " << workers << " workers";
      EXPECT_TRUE(d.masks == ref.masks) << workers;
      EXPECT_EQ(d.labels, ref.labels);
    }
  }
}

TEST(Loader, EpochCoverageOrderAndLayout) {
  Fixture f(10, 9, 7);
  auto ds = std::make_shared<RleCsvDataset>(f.dir.file("images"), f.dir.file("labels.csv"));
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.workers = 2;
  opt.drop_last = false;
  Loader loader(ds, nullptr, opt);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  const EpochData e0 = run_epoch(ds, nullptr, opt, 0, &loader);
  const EpochData e1 = run_epoch(ds, nullptr, opt, 1, &loader);
  EXPECT_EQ(std::set<int64_t>(e0.samples.begin(), e0.samples.end()).size(), 10u);
  EXPECT_EQ(e0.samples.size(), 10u);
  EXPECT_NE(e0.samples, e1.samples);  // reshuffled each epoch
  EXPECT_EQ(e0.samples, epoch_order(10, opt.seed, 0, true));
  // Without augmentation the batch holds the normalised file pixels, the 0/1 mask and the label.
  const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
  for (size_t j = 0; j < e0.samples.size(); ++j) {
    const size_t i = static_cast<size_t>(e0.samples[j]);
    EXPECT_EQ(e0.ids[j], f.ids[i]);
    EXPECT_EQ(e0.labels[j], i % 3 != 0 ? 1.0f : 0.0f);
    for (size_t p = 0; p < 63; ++p) {
      for (int c = 0; c < 3; ++c)
        ASSERT_NEAR(e0.images[(j * 63 + p) * 3 + c], (f.images[i].pixels[p] / 255.0 - mean[c]) / stdv[c], 2e-6);
      ASSERT_EQ(e0.masks[j * 63 + p], f.masks[i].pixels[p] ? 1.0f : 0.0f);
    }
  }
  // drop_last drops the partial batch; the same loader restarts cleanly mid-epoch.
  opt.drop_last = true;
  Loader dl(ds, nullptr, opt);
  dl.start_epoch(0);
  ASSERT_NE(dl.next(), nullptr);
  dl.start_epoch(1);
  int batches = 0;
  while (const Batch* b = dl.next()) {
    EXPECT_EQ(b->size, 4);
    ++batches;
  }
  EXPECT_EQ(batches, 2);
  const Batch* none = dl.next();
  EXPECT_EQ(none, nullptr);
}

TEST(Loader, ErrorNamesTheFileAndTheLoaderRecovers) {
  Fixture f(6, 8, 8);
  test::write_text(f.dir.file("images/img3.png"), "not a png");
  auto ds = std::make_shared<MaskFolderDataset>(f.dir.file("images"), f.dir.file("masks"));
  LoaderOptions opt;
  opt.batch_size = 2;
  opt.workers = 2;
  opt.shuffle = false;
  opt.height = 8;
  opt.width = 8;
  Loader loader(ds, nullptr, opt);
  loader.start_epoch(0);
  ASSERT_NE(loader.next(), nullptr);
  test::expect_error_mentions([&] { loader.next(); }, {"images/img3.png", "img3"});
  ASSERT_NE(loader.next(), nullptr);  // the batch after the bad one still arrives
  EXPECT_EQ(loader.next(), nullptr);
  // A size mismatch after augmentation is reported too.
  LoaderOptions o2 = opt;
  o2.height = 4;
  Loader bad(ds, nullptr, o2);
  bad.start_epoch(0);
  test::expect_error_mentions([&] { bad.next(); }, {"img0", "expected 4x8"});
}

TEST(Loader, ReferencePipelineIsDeterministicAcrossWorkers) {
  Fixture f(6, 40, 40);
  auto ds = std::make_shared<MaskFolderDataset>(f.dir.file("images"), f.dir.file("masks"));
  const aug::Pipeline pipeline = aug::reference_train_pipeline(32);
  AugmentFn fn = [&pipeline](aug::Image& i, aug::Image& m, uint64_t s, uint64_t k) { pipeline.apply(i, m, s, k); };
  LoaderOptions opt;
  opt.batch_size = 2;
  opt.workers = 0;
  const EpochData a = run_epoch(ds, fn, opt, 3);
  opt.workers = 3;
  const EpochData b = run_epoch(ds, fn, opt, 3);
  EXPECT_TRUE(a.images == b.images);
  EXPECT_TRUE(a.masks == b.masks);
  EXPECT_EQ(a.images.size(), 6u * 32 * 32 * 3);
  for (float v : a.masks) ASSERT_TRUE(v == 0.0f || v == 1.0f);
}

TEST(LoaderRealData, LungFoldersAndSiimSample) {
  PNEUMO_REQUIRE_DATA(lungs, "lungs-shenzhen");
  PNEUMO_REQUIRE_DATA(siim, "siim/sample");
  auto ds = std::make_shared<MaskFolderDataset>(lungs + "/images", lungs + "/masks");
  EXPECT_EQ(ds->size(), 566u);
  const Sample s = ds->load(0);
  EXPECT_EQ(s.image.height, 512);
  EXPECT_TRUE(s.positive);
  auto sample = std::make_shared<RleCsvDataset>(siim + "/images", siim + "/train-rle-sample.csv");
  LoaderOptions opt;
  opt.batch_size = 2;
  opt.workers = 2;
  Loader loader(sample, nullptr, opt);
  loader.start_epoch(0);
  int n = 0;
  while (const Batch* b = loader.next()) {
    EXPECT_EQ(b->height, 1024);
    n += b->size;
  }
  EXPECT_EQ(n, 10);
}

}  // namespace
}  // namespace pneumo::train
