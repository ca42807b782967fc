// The reference augmentation pipeline: albumentations 0.3.0 Compose/OneOf semantics with Philox draws.
// OneOf (core/composition.py, 0.3.0): applied when random() < p (default p = 0.5); one child is chosen with
// probabilities proportional to the children's p and applied with force_apply (its own p is ignored).
#include "augment/pipeline.h"

#include <cmath>
#include <sstream>

#include "augment/transforms.h"
#include "kernels/check.h"
#include "kernels/philox.h"

namespace pneumo::aug {

double augment_uniform(uint64_t seed, uint64_t sample_index, uint32_t slot) {
  // philox_uniform01 is in (0, 1] with 24-bit resolution; shift it to [0, 1) like Python's random().
  return static_cast<double>(philox_uniform_at(seed, sample_index, kAugmentStream + slot)) - 1.0 / 16777216.0;
}

namespace {

// random.uniform(a, b) = a + (b - a) * random()
double uniform_in(double u, double a, double b) { return a + (b - a) * u; }
// random.randint(a, b), both ends included.
int randint_in(double u, int a, int b) {
  const int n = b - a + 1;
  int k = static_cast<int>(std::floor(u * n));
  return a + (k >= n ? n - 1 : k);
}
// Weighted choice of OneOf: probabilities are the children's p normalised to sum 1.
int choose_weighted(double u, const double* weights, int n) {
  double total = 0;
  for (int i = 0; i < n; ++i) total += weights[i];
  double acc = 0;
  for (int i = 0; i < n; ++i) {
    acc += weights[i] / total;
    if (u < acc) return i;
  }
  return n - 1;
}

}  // namespace

std::string AugmentParams::describe() const {
  std::ostringstream os;
  os.precision(3);
  switch (photometric) {
    case Photometric::None: os << "photo:none"; break;
    case Photometric::Gamma: os << "gamma:" << gamma; break;
    case Photometric::BrightnessContrast: os << "contrast:" << contrast_alpha << " bright:" << brightness_beta; break;
    case Photometric::Clahe: os << "clahe:" << clahe_clip; break;
  }
  switch (blur) {
    case BlurKind::None: os << " blur:none"; break;
    case BlurKind::Box: os << " blur:box" << blur_ksize; break;
    case BlurKind::Motion: os << " blur:motion" << blur_ksize; break;
    case BlurKind::Median: os << " blur:median" << blur_ksize; break;
  }
  os << (hflip ? " flip" : " noflip");
  if (affine) os << " rot:" << angle << " scale:" << scale << " shift:" << shift_x << "," << shift_y;
  return os.str();
}

Pipeline::Pipeline(PipelineConfig config) : config_(config) {
  const PipelineConfig& c = config_;
  PNEUMO_CHECK(c.gamma_low > 0 && c.gamma_low <= c.gamma_high, "augment pipeline: bad gamma limits (", c.gamma_low,
               ", ", c.gamma_high, ")");
  PNEUMO_CHECK(c.blur_limit >= 3, "augment pipeline: blur_limit must be >= 3, got ", c.blur_limit);
  PNEUMO_CHECK(c.clahe_tiles > 0 && c.clahe_clip_limit >= 1, "augment pipeline: bad CLAHE settings (clip ",
               c.clahe_clip_limit, ", tiles ", c.clahe_tiles, ")");
  PNEUMO_CHECK(c.gamma_weight + c.brightness_contrast_weight + c.clahe_weight > 0 &&
                   c.box_weight + c.motion_weight + c.median_weight > 0,
               "augment pipeline: OneOf weights must not all be zero");
}

AugmentParams Pipeline::draw(uint64_t seed, uint64_t sample_index) const {
  const PipelineConfig& c = config_;
  auto u = [&](uint32_t slot) { return augment_uniform(seed, sample_index, slot); };
  AugmentParams p;
  if (c.size > 0) p.out_height = p.out_width = c.size;
  if (!c.augment) return p;

  // OneOf([RandomGamma, RandomBrightnessContrast, CLAHE]).
  if (u(kSlotPhotometricGate) < c.photometric_p) {
    const double w[3] = {c.gamma_weight, c.brightness_contrast_weight, c.clahe_weight};
    switch (choose_weighted(u(kSlotPhotometricChoice), w, 3)) {
      case 0:
        p.photometric = Photometric::Gamma;
        p.gamma = randint_in(u(kSlotGamma), c.gamma_low, c.gamma_high) / 100.0;
        break;
      case 1:
        p.photometric = Photometric::BrightnessContrast;
        p.contrast_alpha = 1.0 + uniform_in(u(kSlotContrast), -c.contrast_limit, c.contrast_limit);
        p.brightness_beta = 0.0 + uniform_in(u(kSlotBrightness), -c.brightness_limit, c.brightness_limit);
        break;
      default:
        p.photometric = Photometric::Clahe;
        p.clahe_clip = uniform_in(u(kSlotClahe), 1.0, c.clahe_clip_limit);  // to_tuple(clip_limit, 1)
        p.clahe_tiles_x = p.clahe_tiles_y = c.clahe_tiles;
        p.clahe_on_lightness = c.clahe_on_lightness;
        break;
    }
  }

  // OneOf([Blur, MotionBlur, MedianBlur], p).
  if (u(kSlotBlurGate) < c.blur_p) {
    const double w[3] = {c.box_weight, c.motion_weight, c.median_weight};
    const int which = choose_weighted(u(kSlotBlurChoice), w, 3);
    // to_tuple(blur_limit, 3) then random.choice(np.arange(3, blur_limit + 1, 2)): blur_limit 4 gives 3 only.
    const int n_sizes = (c.blur_limit - 3) / 2 + 1;
    p.blur_ksize = 3 + 2 * randint_in(u(kSlotBlurKsize), 0, n_sizes - 1);
    p.blur = which == 0 ? BlurKind::Box : (which == 1 ? BlurKind::Motion : BlurKind::Median);
    if (p.blur == BlurKind::Motion) {
      // MotionBlur.get_params: xs, xe = randint(0, k-1); if xs == xe: ys, ye = random.sample(range(k), 2)
      // (two distinct values) else ys, ye = randint(0, k-1).
      const int k = p.blur_ksize;
      const int xs = randint_in(u(kSlotMotionXs), 0, k - 1), xe = randint_in(u(kSlotMotionXe), 0, k - 1);
      int ys, ye;
      if (xs == xe) {
        ys = randint_in(u(kSlotMotionYs), 0, k - 1);
        ye = randint_in(u(kSlotMotionYe), 0, k - 2);
        if (ye >= ys) ++ye;  // uniform over the k - 1 values other than ys
      } else {
        ys = randint_in(u(kSlotMotionYs), 0, k - 1);
        ye = randint_in(u(kSlotMotionYe), 0, k - 1);
      }
      p.motion_kernel = motion_kernel(k, xs, ys, xe, ye);
    }
  }

  p.hflip = u(kSlotHflip) < c.hflip_p;

  if (u(kSlotAffineGate) < c.affine_p) {
    p.affine = true;
    p.angle = uniform_in(u(kSlotAngle), -c.rotate_limit, c.rotate_limit);
    p.scale = uniform_in(u(kSlotScale), 1.0 - c.scale_limit, 1.0 + c.scale_limit);  // to_tuple(.., bias=1)
    p.shift_x = uniform_in(u(kSlotShiftX), -c.shift_limit, c.shift_limit);
    p.shift_y = uniform_in(u(kSlotShiftY), -c.shift_limit, c.shift_limit);
  }
  return p;
}

void apply_params(const AugmentParams& p, Image& image, Image* mask) {
  PNEUMO_CHECK(image.channels == 1 && !image.empty(), "augment: image must be 1-channel and non-empty, got ",
               image.height, "x", image.width, "x", image.channels);
  if (mask) {
    PNEUMO_CHECK(mask->height == image.height && mask->width == image.width && mask->channels == 1,
                 "augment: mask ", mask->height, "x", mask->width, "x", mask->channels,
                 " does not match image ", image.height, "x", image.width, "x1");
  }
  if (p.out_height > 0 && p.out_width > 0 && (p.out_height != image.height || p.out_width != image.width)) {
    image = resize_linear(image, p.out_height, p.out_width);
    if (mask) *mask = resize_nearest(*mask, p.out_height, p.out_width);
  }
  switch (p.photometric) {
    case Photometric::None: break;
    case Photometric::Gamma: image = apply_lut(image, gamma_lut(p.gamma)); break;
    case Photometric::BrightnessContrast:
      image = apply_lut(image, brightness_contrast_lut(p.contrast_alpha, p.brightness_beta, image_mean(image)));
      break;
    case Photometric::Clahe:
      image = p.clahe_on_lightness ? clahe_on_lightness(image, p.clahe_clip, p.clahe_tiles_x, p.clahe_tiles_y)
                                   : clahe(image, p.clahe_clip, p.clahe_tiles_x, p.clahe_tiles_y);
      break;
  }
  switch (p.blur) {
    case BlurKind::None: break;
    case BlurKind::Box: image = box_blur(image, p.blur_ksize); break;
    case BlurKind::Motion: image = motion_blur(image, p.motion_kernel, p.blur_ksize); break;
    case BlurKind::Median: image = median_blur(image, p.blur_ksize); break;
  }
  if (p.hflip) {
    image = hflip(image);
    if (mask) *mask = hflip(*mask);
  }
  if (p.affine) {
    const Affine m = shift_scale_rotate_matrix(p.angle, p.scale, p.shift_x, p.shift_y, image.height, image.width);
    image = warp_affine(image, m, /*nearest=*/false);
    if (mask) *mask = warp_affine(*mask, m, /*nearest=*/true);
  }
}

void Pipeline::apply(Image& image, Image& mask, uint64_t seed, uint64_t sample_index) const {
  apply_params(draw(seed, sample_index), image, &mask);
}

void Pipeline::apply(Image& image, uint64_t seed, uint64_t sample_index) const {
  apply_params(draw(seed, sample_index), image, nullptr);
}

Pipeline reference_train_pipeline(int size) {
  PipelineConfig c;
  c.size = size;
  return Pipeline(c);
}

Pipeline validation_pipeline(int size) {
  PipelineConfig c;
  c.size = size;
  c.augment = false;
  return Pipeline(c);
}

Pipeline pipeline_preset(const std::string& name, int size) {
  if (name == "reference" || name == "train") return reference_train_pipeline(size);
  if (name == "validation" || name == "val" || name == "none") return validation_pipeline(size);
  PNEUMO_FAIL("unknown augmentation preset '", name, "' (known: reference, validation)");
}

}  // namespace pneumo::aug
