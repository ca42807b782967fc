#include "train/inference.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "augment/transforms.h"
#include "autograd/variable.h"
#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"

namespace pneumo::train {

namespace fs = std::filesystem;

namespace {

bool image_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".dcm";
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<InputImage> list_images(const std::string& source) {
  std::vector<InputImage> out;
  if (fs::is_directory(source)) {
    for (const auto& e : fs::recursive_directory_iterator(source))
      if (e.is_regular_file() && image_extension(e.path())) out.push_back({e.path().stem().string(), e.path().string()});
    std::sort(out.begin(), out.end(), [](const InputImage& a, const InputImage& b) { return a.id < b.id; });
    PNEUMO_CHECK(!out.empty(), "folder '", source, "' holds no .png/.jpg/.jpeg/.dcm images");
  } else {
    std::ifstream f(source);
    PNEUMO_CHECK(f.good(), "'", source, "' is neither a folder of images nor a readable list file");
    const fs::path base = fs::path(source).parent_path();
    std::string line;
    int n = 0;
    while (std::getline(f, line)) {
      ++n;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      size_t b = line.find_first_not_of(" \t");
      if (b == std::string::npos || line[b] == '#') continue;
      fs::path p(line.substr(b));
      if (p.is_relative()) p = base / p;
      PNEUMO_CHECK(image_extension(p), "list '", source, "' line ", n, ": '", line,
                   "' is not a .png/.jpg/.jpeg/.dcm file");
      out.push_back({p.stem().string(), p.string()});
    }
    PNEUMO_CHECK(!out.empty(), "list file '", source, "' names no images");
  }
  std::set<std::string> seen;
  for (const InputImage& im : out)
    PNEUMO_CHECK(seen.insert(im.id).second, "two images are named '", im.id, "' (in '", source,
                 "'): output files would collide");
  return out;
}

std::vector<float> resize_bilinear(const float* src, int h, int w, int oh, int ow) {
  std::vector<float> out(static_cast<size_t>(oh) * ow);
  if (oh == h && ow == w) {
    std::copy(src, src + out.size(), out.begin());
    return out;
  }
  auto coords = [](int n_out, int n_in, std::vector<int>& i0, std::vector<float>& frac) {
    i0.resize(static_cast<size_t>(n_out));
    frac.resize(static_cast<size_t>(n_out));
    const double scale = static_cast<double>(n_in) / n_out;
    for (int d = 0; d < n_out; ++d) {
      double s = (d + 0.5) * scale - 0.5;
      int i = static_cast<int>(std::floor(s));
      double f = s - i;
      if (i < 0) {
        i = 0;
        f = 0;
      }
      if (i >= n_in - 1) {
        i = n_in - 1;
        f = 0;
      }
      i0[static_cast<size_t>(d)] = i;
      frac[static_cast<size_t>(d)] = static_cast<float>(f);
    }
  };
  std::vector<int> y0, x0;
  std::vector<float> fy, fx;
  coords(oh, h, y0, fy);
  coords(ow, w, x0, fx);
#pragma omp parallel for schedule(static)
  for (int y = 0; y < oh; ++y) {
    const int ya = y0[static_cast<size_t>(y)], yb = std::min(ya + 1, h - 1);
    const float b = fy[static_cast<size_t>(y)];
    const float* ra = src + static_cast<size_t>(ya) * w;
    const float* rb = src + static_cast<size_t>(yb) * w;
    float* o = out.data() + static_cast<size_t>(y) * ow;
    for (int x = 0; x < ow; ++x) {
      const int xa = x0[static_cast<size_t>(x)], xb = std::min(xa + 1, w - 1);
      const float a = fx[static_cast<size_t>(x)];
      const float top = ra[xa] + a * (ra[xb] - ra[xa]);
      const float bot = rb[xa] + a * (rb[xb] - rb[xa]);
      o[x] = top + b * (bot - top);
    }
  }
  return out;
}

PreparedImage prepare_image(const InputImage& input, int size) {
  PreparedImage p;
  p.input = input;
  aug::Image im = aug::read_image(input.path);
  p.height = im.height;
  p.width = im.width;
  if (size > 0 && (im.height != size || im.width != size)) im = aug::resize_linear(im, size, size);
  p.in_height = im.height;
  p.in_width = im.width;
  p.pixels.resize(static_cast<size_t>(im.height) * im.width * 3);
  aug::normalize_imagenet(im, p.pixels.data());
  return p;
}

Predictor::Predictor(const std::string& model, const std::vector<std::string>& weights, PredictOptions options)
    : opt_(options) {
  PNEUMO_CHECK(nn::models::is_model_name(model), "unknown network '", model, "'");
  PNEUMO_CHECK(!weights.empty(), "no weights given");
  for (const std::string& w : weights) {
    PNEUMO_CHECK(fs::is_regular_file(w), "weights file '", w, "' does not exist");
    const nn::Metadata meta = nn::read_safetensors_metadata(w);
    auto it = meta.find("model");
    PNEUMO_CHECK(it == meta.end() || it->second == model, "weights '", w, "' are for network '",
                 it == meta.end() ? "" : it->second, "', not '", model, "'");
    auto net = nn::models::create_model(model);
    nn::LoadReport rep = nn::load_state(*net, w, /*strict=*/false);
    PNEUMO_CHECK(rep.missing.empty() && rep.mismatched.empty(), "weights '", w, "' do not fit network '",
                 model, "': ", rep.str());
    if (!rep.unexpected.empty())
      std::fprintf(stderr, "%s: ignored %zu tensors that %s does not have (e.g. %s)\n", w.c_str(),
                   rep.unexpected.size(), model.c_str(), rep.unexpected.front().c_str());
    net->to(opt_.device);
    net->eval();
    nets_.push_back(net);
  }
}

Predictor::Predictor(std::vector<std::shared_ptr<nn::models::Network>> networks, PredictOptions options)
    : nets_(std::move(networks)), opt_(options) {
  PNEUMO_CHECK(!nets_.empty(), "no networks");
  for (auto& n : nets_) n->eval();
}

void Predictor::run_models(const std::vector<float>& x, int n, int h, int w, std::vector<float>& seg,
                           std::vector<float>& cls) {
  ag::NoGradGuard no_grad;
  Tensor input = Tensor::from_vector(x, {n, h, w, 3}).to(opt_.device);
  if (opt_.device.is_cuda() && opt_.bf16) input = input.to(DType::BF16);
  seg.assign(static_cast<size_t>(n) * h * w, 0.0f);
  cls.assign(static_cast<size_t>(n), 0.0f);
  const float inv = 1.0f / static_cast<float>(nets_.size());
  for (auto& net : nets_) {
    nn::models::NetworkOutput out = net->run(ag::Variable(input));
    PNEUMO_CHECK(out.seg.defined(), "the network has no segmentation output");
    const std::vector<float> s = out.seg.value().to(DType::F32).cpu().to_vector();
    PNEUMO_CHECK(s.size() == seg.size(), "segmentation output of ", s.size(), " values for ", seg.size(),
                 " pixels");
    for (size_t i = 0; i < s.size(); ++i) seg[i] += inv / (1.0f + std::exp(-s[i]));
    if (opt_.classify) {
      PNEUMO_CHECK(out.cls.defined(), "the network has no classification head");
      const std::vector<float> c = out.cls.value().to(DType::F32).cpu().to_vector();
      PNEUMO_CHECK(c.size() == cls.size(), "classification output of ", c.size(), " values for ", n,
                   " images");
      for (size_t i = 0; i < c.size(); ++i) cls[i] += inv / (1.0f + std::exp(-c[i]));
    }
  }
}

std::vector<ImagePrediction> Predictor::predict(const std::vector<PreparedImage>& batch) {
  PNEUMO_CHECK(!batch.empty(), "empty batch");
  const int n = static_cast<int>(batch.size()), h = batch[0].in_height, w = batch[0].in_width;
  for (const PreparedImage& p : batch)
    PNEUMO_CHECK(p.in_height == h && p.in_width == w, "image '", p.input.path, "' is ", p.in_height, "x",
                 p.in_width, " but '", batch[0].input.path, "' in the same batch is ", h, "x", w,
                 ": give --size S to resize every image, or --batch 1");
  PNEUMO_CHECK(h % 32 == 0 && w % 32 == 0, "image '", batch[0].input.path, "' is ", h, "x", w,
               ": the networks need sides divisible by 32; give --size S (e.g. 1024)");
  const size_t plane = static_cast<size_t>(h) * w;
  std::vector<float> x(static_cast<size_t>(n) * plane * 3);
  for (int i = 0; i < n; ++i) std::copy(batch[i].pixels.begin(), batch[i].pixels.end(), x.begin() + i * plane * 3);
  std::vector<float> seg, cls;
  run_models(x, n, h, w, seg, cls);
  if (opt_.hflip) {
    std::vector<float> xf(x.size());
    for (size_t r = 0; r < static_cast<size_t>(n) * h; ++r)
      for (int c = 0; c < w; ++c)
        for (int k = 0; k < 3; ++k) xf[(r * w + c) * 3 + k] = x[(r * w + (w - 1 - c)) * 3 + k];
    std::vector<float> segf, clsf;
    run_models(xf, n, h, w, segf, clsf);
    for (size_t r = 0; r < static_cast<size_t>(n) * h; ++r)
      for (int c = 0; c < w; ++c) seg[r * w + c] = 0.5f * (seg[r * w + c] + segf[r * w + (w - 1 - c)]);
    for (size_t i = 0; i < cls.size(); ++i) cls[i] = 0.5f * (cls[i] + clsf[i]);
  }
  for (int i = 0; i < n; ++i) {
    const float* s = seg.data() + static_cast<size_t>(i) * plane;
    bool finite = !opt_.classify || std::isfinite(cls[static_cast<size_t>(i)]);
    for (size_t k = 0; k < plane && finite; ++k) finite = std::isfinite(s[k]);
    PNEUMO_CHECK(finite, "the network's output for '", batch[static_cast<size_t>(i)].input.path,
                 "' is not finite (NaN/Inf): the weights are broken or the input is");
  }
  std::vector<ImagePrediction> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ImagePrediction& p = out[static_cast<size_t>(i)];
    p.input = batch[static_cast<size_t>(i)].input;
    p.height = batch[static_cast<size_t>(i)].height;
    p.width = batch[static_cast<size_t>(i)].width;
    p.probability = resize_bilinear(seg.data() + i * plane, h, w, p.height, p.width);
    if (opt_.classify) p.cls = cls[static_cast<size_t>(i)];
  }
  return out;
}

ItemProgress::ItemProgress(std::string label, int64_t total, double every_s)
    : label_(std::move(label)), total_(total), every_s_(every_s), start_(now_s()), tty_(isatty(2) != 0) {}

void ItemProgress::update(int64_t done) {
  done_ = done;
  const double t = now_s();
  if (tty_ ? t - last_ < 0.2 && done < total_ : t - last_ < every_s_) return;
  last_ = t;
  const double el = t - start_, rate = el > 0 ? static_cast<double>(done) / el : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
  const int eta_s = static_cast<int>(eta + 0.5);
  if (tty_) {
    const int width = 30, fill = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld  %.2f img/s  ETA %d:%02d ", label_.c_str(),
                 std::string(static_cast<size_t>(fill), '#').c_str(),
                 std::string(static_cast<size_t>(width - fill), '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), rate, eta_s / 60, eta_s % 60);
  } else {
    std::fprintf(stderr, "%s: %lld/%lld images, %.2f img/s, ETA %d:%02d\n", label_.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), rate, eta_s / 60, eta_s % 60);
  }
  std::fflush(stderr);
}

void ItemProgress::finish() {
  const double el = now_s() - start_;
  if (tty_) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "%s: %lld images in %.1f s (%.2f img/s)\n", label_.c_str(), static_cast<long long>(done_), el,
               el > 0 ? static_cast<double>(done_) / el : 0.0);
}

void predict_images(Predictor& predictor, const std::vector<InputImage>& images,
                    const std::function<void(const ImagePrediction&)>& sink, bool show_progress) {
  const int batch = std::max(1, predictor.options().batch);
  const int size = predictor.options().size;
  const size_t n_batches = (images.size() + static_cast<size_t>(batch) - 1) / static_cast<size_t>(batch);
  // Prefetch: a producer thread prepares up to two batches ahead of the consumer.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<PreparedImage>> ready;
  std::exception_ptr error;
  bool stop = false;
  std::thread producer([&] {
    for (size_t b = 0; b < n_batches; ++b) {
      std::vector<PreparedImage> prepared;
      try {
        for (size_t i = b * batch; i < std::min(images.size(), (b + 1) * batch); ++i)
          prepared.push_back(prepare_image(images[i], size));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        error = std::current_exception();
        cv.notify_all();
        return;
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stop || ready.size() < 2; });
      if (stop) return;
      ready.push_back(std::move(prepared));
      cv.notify_all();
    }
  });
  ItemProgress progress("predict", static_cast<int64_t>(images.size()));
  int64_t done = 0;
  try {
    for (size_t b = 0; b < n_batches; ++b) {
      std::vector<PreparedImage> prepared;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !ready.empty() || error; });
        if (ready.empty()) std::rethrow_exception(error);
        prepared = std::move(ready.front());
        ready.pop_front();
        cv.notify_all();
      }
      for (const ImagePrediction& p : predictor.predict(prepared)) {
        sink(p);
        ++done;
      }
      if (show_progress) progress.update(done);
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      cv.notify_all();
    }
    producer.join();
    throw;
  }
  producer.join();
  if (show_progress) progress.finish();
}

}  // namespace pneumo::train
