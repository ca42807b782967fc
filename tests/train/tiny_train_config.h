// The small training run the trainer tests share: tiny_unet_se, 64 px, batch 4, 2 epochs on 4 folds of a
// synthetic set (40 images: 30 train in 7 steps of 4, 10 val).
#pragma once
#include <string>

#include "train/trainer.h"

namespace pneumo::test {

inline train::TrainConfig tiny_train_config(const std::string& data, const std::string& out) {
  train::TrainConfig c;
  c.model = "tiny_unet_se";
  c.data = data;
  c.out = out;
  c.size = 64;
  c.batch = 4;
  c.val_batch = 5;
  c.epochs = 2;
  c.num_folds = 4;
  c.workers = 2;
  c.lr = 2e-3;
  c.overlays = 3;
  return c;
}

}  // namespace pneumo::test
