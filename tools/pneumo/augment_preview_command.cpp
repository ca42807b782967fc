// `pneumo augment-preview`: one image and its mask under N draws of the training augmentation, written as a
// grid PNG so a person can see what training sees. The first tile is the un-augmented (validation) view;
// the mask is drawn as a red outline over a light red tint. Each draw is sample index i of --seed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

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

int run_augment_preview(const Args& args) {
  const std::string image_path = args.require("image");
  const std::string mask_path = args.get("mask", "");
  const int draws = static_cast<int>(args.get_int("draws", 8));
  const int size = static_cast<int>(args.get_int("size", 1024));
  const std::string out = args.require("out");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 1992));
  const std::string preset = args.get("preset", "reference");
  const int tile_arg = static_cast<int>(args.get_int("tile", 0));
  int columns = static_cast<int>(args.get_int("columns", 0));
  const int benchmark = static_cast<int>(args.get_int("benchmark", 0));
  args.finish();
  PNEUMO_CHECK(draws >= 1 && draws <= 256, "--draws must be in 1..256, got ", draws);
  PNEUMO_CHECK(size >= 8 && size <= 4096, "--size must be in 8..4096, got ", size);

  const Image image = aug::read_image(image_path);
  Image mask(image.height, image.width, 1);
  if (!mask_path.empty()) {
    mask = aug::read_image(mask_path);
    PNEUMO_CHECK(mask.height == image.height && mask.width == image.width, "mask ", mask_path, " is ", mask.height,
                 "x", mask.width, " but image ", image_path, " is ", image.height, "x", image.width);
    for (auto& p : mask.pixels) p = p > 127 ? 255 : 0;  // JPEG masks: threshold as the data README says
  }
  const int tile = tile_arg > 0 ? tile_arg : std::min(size, 384);
  const int tiles = draws + 1;
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(tiles))));
  const int rows = (tiles + columns - 1) / columns;
  const int gap = 4;
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
               "pneumo augment-preview --image X.png [--mask Y.png] --out grid.png [options]\n"
               "  --draws N      augmented draws after the original tile (default 8)\n"
               "  --size S       Resize(S, S) of the pipeline (default 1024)\n"
               "  --seed K       seed of the draws; draw i is sample index i (default 1992)\n"
               "  --preset P     reference (the README's training pipeline) or validation (default reference)\n"
               "  --tile T       pixels per tile in the grid (default min(S, 384))\n"
               "  --columns C    tiles per row (default: a square grid)\n"
               "  --benchmark N  also time N draws of the CPU reference pipeline on one core\n"
               "The first tile is the validation view (resize only); the mask is a red outline over a red tint.",
               run_augment_preview);

}  // namespace
}  // namespace pneumo::cli
