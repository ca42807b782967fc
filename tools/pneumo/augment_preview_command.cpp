// `pneumo augment-preview`: one image and its mask under N draws of the training augmentation, written as a
// grid PNG so a person can see what training sees. The first tile is the un-augmented (validation) view;
// the mask is drawn as a red outline over a light red tint. Each draw is sample index i of --seed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "augment/image.h"
#include "augment/pipeline.h"
#include "augment/transforms.h"
#include "kernels/check.h"
#include "tools/pneumo/command.h"

namespace pneumo::cli {
namespace {

using aug::Image;

// Paints `gray` (1 channel) into the RGB tile at (top, left) of `grid`, with the mask tinted and outlined.
void paint_tile(Image& grid, int top, int left, const Image& gray, const Image& mask) {
  for (int y = 0; y < gray.height; ++y)
    for (int x = 0; x < gray.width; ++x) {
      const int v = gray.at(y, x);
      const bool on = mask.at(y, x) != 0;
      bool edge = false;
      if (on) {
        for (int d = 0; d < 4 && !edge; ++d) {
          const int yy = y + (d == 0) - (d == 1), xx = x + (d == 2) - (d == 3);
          edge = yy < 0 || xx < 0 || yy >= gray.height || xx >= gray.width || mask.at(yy, xx) == 0;
        }
      }
      uint8_t* px = &grid.at(top + y, left + x, 0);
      if (edge) {
        px[0] = 255, px[1] = 40, px[2] = 40;
      } else if (on) {
        px[0] = static_cast<uint8_t>(std::min(255, v * 3 / 4 + 64)), px[1] = static_cast<uint8_t>(v * 3 / 4),
        px[2] = static_cast<uint8_t>(v * 3 / 4);
      } else {
        px[0] = px[1] = px[2] = static_cast<uint8_t>(v);
      }
    }
}

struct PreviewOptions {
  std::string image_path, mask_path, out, preset = "reference";
  int draws = 8, size = 0, tile = 0, columns = 0, benchmark = 0;
  uint64_t seed = 0;
};

int run_augment_preview(const PreviewOptions& o) {
  const std::string &image_path = o.image_path, &mask_path = o.mask_path, &out = o.out, &preset = o.preset;
  const int draws = o.draws, size = o.size, tile_arg = o.tile, benchmark = o.benchmark;
  const uint64_t seed = o.seed;
  int columns = o.columns;
  const Image image = aug::read_image(image_path);
  Image mask(image.height, image.width, 1);
  if (!mask_path.empty()) {
    mask = aug::read_image(mask_path);
    if (mask.channels != 1) user_error(mask_path, ": a mask must have 1 channel (grey), this one has ", mask.channels);
    if (mask.height != image.height || mask.width != image.width)
      user_error("mask ", mask_path, " is ", mask.height, "x", mask.width, " but image ", image_path, " is ", image.height,
                 "x", image.width);
    for (auto& p : mask.pixels) p = p > 127 ? 255 : 0;  // JPEG masks: threshold as the data README says
  }
  const int tile = tile_arg > 0 ? tile_arg : std::min(size, 384);
  const int tiles = draws + 1;
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(tiles))));
  const int rows = (tiles + columns - 1) / columns;
  const int gap = 4;
  if (static_cast<int64_t>(rows) * (tile + gap) > 32768 || static_cast<int64_t>(columns) * (tile + gap) > 32768)
    usage_error("a grid of ", rows, "x", columns, " tiles of ", tile, " px exceeds 32768 px a side; lower --tile or --columns");
  Image grid(rows * tile + (rows + 1) * gap, columns * tile + (columns + 1) * gap, 3, 32);

  const aug::Pipeline validation = aug::validation_pipeline(size);
  const aug::Pipeline training = aug::pipeline_preset(preset, size);
  for (int t = 0; t < tiles; ++t) {
    Image img = image, msk = mask;
    if (t == 0) {
      validation.apply(img, msk, seed, 0);
      std::printf("tile 0: original (resize %d only)\n", size);
    } else {
      const aug::AugmentParams p = training.draw(seed, static_cast<uint64_t>(t - 1));
      aug::apply_params(p, img, &msk);
      std::printf("tile %d: sample %d  %s\n", t, t - 1, p.describe().c_str());
    }
    if (tile != size) {
      img = aug::resize_linear(img, tile, tile);
      msk = aug::resize_nearest(msk, tile, tile);
    }
    paint_tile(grid, gap + (t / columns) * (tile + gap), gap + (t % columns) * (tile + gap), img, msk);
  }
  aug::write_png(out, grid);
  std::printf("wrote %s (%dx%d, %d tiles of %d px)\n", out.c_str(), grid.width, grid.height, tiles, tile);
  if (benchmark > 0) {
    // CPU reference throughput on this thread: draw + apply to image and mask, as the loader does per sample.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < benchmark; ++i) {
      Image img = image, msk = mask;
      training.apply(img, msk, seed, static_cast<uint64_t>(i));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("CPU reference pipeline (%s, %dx%d -> %d, image + mask): %.2f images/s on one core (%.1f ms each, %d draws)\n",
                preset.c_str(), image.height, image.width, size, benchmark / s, 1e3 * s / benchmark, benchmark);
  }
  return 0;
}

PNEUMO_COMMAND("augment-preview", "write a grid PNG of an image and mask under N draws of the training augmentation",
               [](CLI::App& app) {
                 auto o = std::make_shared<PreviewOptions>();
                 option(app, "--image", o->image_path, "the image (PNG/JPEG)").required().existing_file();
                 option(app, "--mask", o->mask_path, "its mask (PNG/JPEG, thresholded at 127)").existing_file();
                 out_option(app, o->out, "grid PNG to write").required();
                 option(app, "--draws", o->draws, "augmented draws after the original tile", 1, 256);
                 size_option(app, o->size, 1024, 8, 4096);
                 seed_option(app, o->seed);
                 choice(app, "--preset", o->preset, "reference (the README's training pipeline) or validation",
                        {"reference", "validation"});
                 option(app, "--tile", o->tile, "pixels per tile in the grid (0: min(size, 384))", 0, 4096);
                 option(app, "--columns", o->columns, "tiles per row (0: a square grid)", 0, 257);
                 option(app, "--benchmark", o->benchmark, "also time N draws of the CPU reference pipeline on one core",
                        0, 1000000);
                 footer(app, "Draw i is sample index i of --seed. The first tile is the validation view (resize only);\n"
                             "the mask is drawn as a red outline over a red tint.");
                 return [o] { return run_augment_preview(*o); };
               });

}  // namespace
}  // namespace pneumo::cli
