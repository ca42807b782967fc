// The competition's score of a prediction against the truth, each given as an RLE CSV (ImageId,EncodedPixels)
// or a folder of 0/255 mask images (<id>.png/.jpg, > 127 is foreground).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/metric.h"

namespace pneumo::train {

struct Evaluation {
  int64_t images = 0;
  int64_t truth_positive = 0, pred_positive = 0;
  int64_t false_positive_images = 0;  // truth empty, prediction not
  int64_t false_negative_images = 0;  // truth not empty, prediction empty
  double metric = 0;                  // mean per-image Dice, empty/empty = 1 (the leaderboard score)
  double dice_positive = 0;           // mean Dice over the truth-positive images (0 when there are none)
  std::vector<std::string> ids;
  std::vector<DiceCounts> counts;
};

// Every truth image must be predicted and every prediction must have a truth (only_predicted: the images that
// both have are scored, the others ignored). CSV masks are decoded at height x width unless
// the other side is a folder, whose image gives the size.
Evaluation evaluate(const std::string& pred, const std::string& truth, int height = 1024, int width = 1024,
                    bool only_predicted = false);
Evaluation summarise(std::vector<std::string> ids, std::vector<DiceCounts> counts);

}  // namespace pneumo::train
