// The standard layers as Modules (PyTorch names, shapes and default initialisation), over nn/functional.h.
// Convention: activations NHWC; conv weights KRSC [out, kh, kw, in/groups] (PyTorch's KCRS transposed, so
// a checkpoint importer permutes (0,2,3,1)). Parameters and buffers use PyTorch's names ("weight", "bias",
// "running_mean", ...). Initialisation draws from pneumo::default_generator() unless a generator is given.
#pragma once
#include <cstdint>
#include <memory>

#include "nn/functional.h"
#include "nn/module.h"
#include "tensor/generator.h"

namespace pneumo::nn {

class Conv2d : public Module {
 public:
  // As torch.nn.Conv2d(in, out, kernel, stride, padding, dilation, groups, bias): symmetric padding.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         int64_t dilation = 1, int64_t groups = 1, bool bias = true, Generator* generator = nullptr);
  // TF "same" padding (efficientnet-pytorch's Conv2dStaticSamePadding, timm's tf_ layers): the possibly
  // asymmetric padding is computed from the input size at each forward (extra row/column after).
  static std::shared_ptr<Conv2d> tf_same(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                         int64_t stride = 1, int64_t dilation = 1, int64_t groups = 1,
                                         bool bias = true, Generator* generator = nullptr);

  Variable forward(const Variable& x) override;
  std::string type_name() const override { return same_padding_ ? "Conv2dStaticSamePadding" : "Conv2d"; }

  Variable& weight() { return parameters_.at(0).second; }
  Variable& bias();  // throws when built without bias
  bool has_bias() const { return has_bias_; }
  // The geometry used for an input of spatial size h x w (resolves "same" padding).
  F::Conv2dGeometry geometry_for(int64_t h, int64_t w) const;

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int64_t kernel() const { return kernel_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }
  int64_t dilation() const { return dilation_; }
  int64_t groups() const { return groups_; }
  bool same_padding() const { return same_padding_; }

 private:
  int64_t in_channels_, out_channels_, kernel_, stride_, padding_, dilation_, groups_;
  bool has_bias_;
  bool same_padding_ = false;
};

class BatchNorm2d : public Module {
 public:
  // As torch.nn.BatchNorm2d(C, eps, momentum): weight 1, bias 0, running_mean 0, running_var 1,
  // num_batches_tracked 0 (int64 scalar).
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);

  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "BatchNorm2d"; }
  // relu(forward(x)): one fused op (F::batch_norm_relu) when layer_ops::fused_bn_enabled() (PNEUMO_FUSED_BN=1).
  Variable forward_relu(const Variable& x);
  // swish(forward(x)) keeping only x (F::batch_norm_swish) when layer_ops::fused_bn_enabled().
  Variable forward_swish(const Variable& x);
  // relu(se(forward(x)) + residual), SE-ResNeXt's bottleneck tail: one fused op (F::bottleneck_tail) when
  // enabled and `se` is a SqueezeExcite; otherwise the separate modules.
  Variable forward_tail(const Variable& x, Module& se, const Variable& residual);

  // SWA recalibration (torchcontrib's bn_update): while on, training-mode forwards average the statistics
  // cumulatively, momentum = b / (n + b) with n the samples seen since it was switched on (or since
  // reset_running_stats). Switching it on resets the sample count, not the statistics.
  void set_cumulative_average(bool on);
  bool cumulative_average() const { return cumulative_; }
  // running_mean 0, running_var 1, num_batches_tracked 0, cumulative sample count 0.
  void reset_running_stats();

  Variable& weight() { return parameters_.at(0).second; }
  Variable& bias() { return parameters_.at(1).second; }
  Tensor& running_mean() { return buffers_.at(0).second; }
  Tensor& running_var() { return buffers_.at(1).second; }
  Tensor& num_batches_tracked() { return buffers_.at(2).second; }
  int64_t channels() const { return channels_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

 private:
  int64_t channels_;
  double eps_, momentum_;
  bool cumulative_ = false;
  void track_batch();  // num_batches_tracked += 1 in training mode
  using BatchNormFn = Variable (*)(const Variable&, const Variable&, const Variable&, Tensor*, Tensor*, bool, double,
                                   double, int64_t*);
  Variable normalize(BatchNormFn fn, const Variable& x);

  int64_t cumulative_samples_ = 0;
};

class ReLU : public Module {
 public:
  Variable forward(const Variable& x) override { return F::relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

// A Sequential whose BatchNorm2d + ReLU pairs run as BatchNorm2d::forward_relu (fused when enabled); same
// children, names and type name as a Sequential.
class FusingSequential : public Sequential {
 public:
  Variable forward(const Variable& x) override;
};

class Sigmoid : public Module {
 public:
  Variable forward(const Variable& x) override { return F::sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

// x * sigmoid(x), backward recomputed from x (efficientnet-pytorch's MemoryEfficientSwish).
class Swish : public Module {
 public:
  Variable forward(const Variable& x) override { return F::swish(x); }
  std::string type_name() const override { return "MemoryEfficientSwish"; }
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0, bool ceil_mode = false)
      : kernel_(kernel), stride_(stride), padding_(padding), ceil_mode_(ceil_mode) {}
  Variable forward(const Variable& x) override { return F::max_pool2d(x, kernel_, stride_, padding_, ceil_mode_); }
  std::string type_name() const override { return "MaxPool2d"; }

 private:
  int64_t kernel_, stride_, padding_;
  bool ceil_mode_;
};

// [N, H, W, C] -> [N, 1, 1, C] (nn.AdaptiveAvgPool2d(1)).
class GlobalAvgPool : public Module {
 public:
  Variable forward(const Variable& x) override { return F::global_avg_pool(x); }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* generator = nullptr);
  Variable forward(const Variable& x) override;  // [N, in] or [N, 1, 1, in] -> [N, out]
  std::string type_name() const override { return "Linear"; }
  Variable& weight() { return parameters_.at(0).second; }
  Variable& bias();
  bool has_bias() const { return has_bias_; }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

 private:
  int64_t in_features_, out_features_;
  bool has_bias_;
};

// Elementwise dropout in training mode; masks from `generator` (default_generator() when null; the pointer
// must outlive the module).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* generator = nullptr);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Dropout"; }
  double p() const { return p_; }

 private:
  double p_;
  Generator* generator_;
};

// nn.Upsample(scale_factor=2, mode="nearest").
class Upsample2x : public Module {
 public:
  Variable forward(const Variable& x) override { return F::upsample_nearest2x(x); }
  std::string type_name() const override { return "Upsample"; }
};

}  // namespace pneumo::nn
