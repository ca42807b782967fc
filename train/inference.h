// Inference as the reference's predict scripts do it: each image is resized to the network's size (cv2
// INTER_LINEAR on the 8-bit image), normalised, run through every fold model; the sigmoid outputs are
// averaged (and, with hflip TTA, averaged with the flipped image's flipped output) and resized back to the
// image's own size bilinearly (cv2 INTER_LINEAR on floats = half-pixel centres, replicated border). A
// classification head's sigmoid is averaged the same way.
// Batches are prepared (decode, resize, normalise) by a prefetch thread while the previous batch computes.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "augment/image.h"
#include "nn/models/network.h"
#include "tensor/tensor.h"

namespace pneumo::train {

struct InputImage {
  std::string id;    // file stem
  std::string path;
};

// The images of `source`: a folder (searched recursively, so the competition's DICOM test layout works; .png,
// .jpg, .jpeg and .dcm files), or a list file (one path per line, relative to the list's folder; blank lines
// and '#' comments skipped). Sorted by id for folders, list order for lists. Duplicate ids are an error.
std::vector<InputImage> list_images(const std::string& source);

// cv2.resize(src, (ow, oh), INTER_LINEAR) on float32: half-pixel centres, edge replication.
std::vector<float> resize_bilinear(const float* src, int height, int width, int out_height, int out_width);

struct PreparedImage {
  InputImage input;
  int height = 0, width = 0;        // the image's own size
  int in_height = 0, in_width = 0;  // the network input size
  std::vector<float> pixels;        // normalised HWC3 at the network input size
};
// size > 0: resized to size x size; 0: kept at its own size.
PreparedImage prepare_image(const InputImage& input, int size);

struct PredictOptions {
  int size = 0;            // network input side; 0: each image's own size
  int batch = 4;
  bool hflip = false;      // horizontal-flip TTA
  bool classify = false;   // also average the classification head's sigmoid
  Device device = Device::cpu();
  bool bf16 = true;        // bf16 activations on CUDA (ignored on the CPU, which computes in float32)
};

struct ImagePrediction {
  InputImage input;
  int height = 0, width = 0;
  std::vector<float> probability;  // mean sigmoid, height x width row-major, at the image's own size
  double cls = -1;                 // mean classification sigmoid (classify only)
};

class Predictor {
 public:
  // Loads each weights file (strict by name; the network's "model" metadata, when present, must match) into
  // its own copy of the network on options.device, in eval mode.
  Predictor(const std::string& model, const std::vector<std::string>& weights, PredictOptions options);
  // Wraps networks already built (tests).
  Predictor(std::vector<std::shared_ptr<nn::models::Network>> networks, PredictOptions options);
  const PredictOptions& options() const { return opt_; }
  // One batch of prepared images of equal input size.
  std::vector<ImagePrediction> predict(const std::vector<PreparedImage>& batch);

 private:
  // Mean over models of sigmoid(network(x)) for an NHWC batch: seg [N*h*w], cls [N].
  void run_models(const std::vector<float>& x, int n, int h, int w, std::vector<float>& seg, std::vector<float>& cls);
  std::vector<std::shared_ptr<nn::models::Network>> nets_;
  PredictOptions opt_;
};

// Progress on stderr: a redrawn bar with rate and ETA on a terminal, otherwise a line every `every_s` seconds.
class ItemProgress {
 public:
  ItemProgress(std::string label, int64_t total, double every_s = 30);
  void update(int64_t done);
  void finish();

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  double every_s_, start_, last_ = -1e9;
  bool tty_;
};

// Predicts every image, in order, with a prefetch thread preparing the next batches; `sink` receives each
// prediction. Images of different input sizes in one batch are an error naming both (use --size or batch 1).
void predict_images(Predictor& predictor, const std::vector<InputImage>& images,
                    const std::function<void(const ImagePrediction&)>& sink, bool show_progress);

}  // namespace pneumo::train
