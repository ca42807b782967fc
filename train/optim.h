// Optimisers with PyTorch 1.13 semantics: Adam (L2 weight decay into the gradient), AdamW (decoupled
// decay), SGD with momentum (dampening, Nesterov); clipping by global norm.
// Precision convention: parameters are float32 MASTER weights and their gradients float32. A bfloat16
// model keeps its parameters float32 and casts them to bfloat16 at forward (ag::cast), whose backward
// hands float32 gradients back to the masters, so the optimiser and its state only ever see float32.
// A parameter without a gradient is skipped (its step count does not advance), as in PyTorch.
// State (per parameter: step, exp_avg/exp_avg_sq or momentum_buffer) is created at the first step on the
// parameter's device, and saves/restores through the checkpoint format (nn/checkpoint.h) bit for bit.
// CUDA: one multi-tensor launch per step (kernels/cuda/optim_kernels.h).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "kernels/optim_update.h"
#include "nn/checkpoint.h"

namespace pneumo::train {

using NamedParameters = std::vector<std::pair<std::string, ag::Variable>>;

// Names "0", "1", ... for an unnamed list.
NamedParameters name_parameters(const std::vector<ag::Variable>& params);

struct OptimizerStateDict {
  nn::NamedTensors tensors;  // "<param>.step" (I64 scalar), "<param>.exp_avg", ...
  nn::Metadata metadata;     // "optimizer", hyper-parameters (as %.17g text)
};

class Optimizer {
 public:
  explicit Optimizer(NamedParameters params);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  void step();
  void zero_grad();  // drops every parameter's gradient
  double lr() const { return lr_; }
  void set_lr(double lr);
  virtual std::string type_name() const = 0;

  // Capturable steps (PyTorch's capturable=True), for a training step captured as a CUDA Graph
  // (tensor/cuda_graph.h): the learning rate and the step counts live in memory on the parameters' device
  // and the kernel computes each step's scalars from them (kernels/optim_update.h capturable_scalars), so
  // every replay takes the next step at the current learning rate. Same arithmetic as the default path
  // (CPU: bit for bit; CUDA: the device's pow). Inside a capture the state must already exist (take one
  // step before capturing) and set_lr() is refused; between replays set_lr() writes the device value.
  void set_capturable(bool on);
  bool capturable() const { return capturable_; }

  OptimizerStateDict state_dict() const;
  // Type, hyper-parameters and every present state tensor's shape are checked; errors name the problem.
  void load_state_dict(const OptimizerStateDict& state);
  void save(const std::string& path) const;
  void load(const std::string& path);

  const NamedParameters& parameters() const { return params_; }
  int64_t step_count(size_t index) const;  // capturable: read from the device

 protected:
  struct Slot {
    int64_t step = 0;
    Tensor state1, state2;  // exp_avg / exp_avg_sq, or momentum_buffer / undefined
  };
  // Names of the (up to two) state tensors of this algorithm; "" where unused.
  virtual std::pair<std::string, std::string> state_names() const = 0;
  virtual nn::Metadata hyper_metadata() const = 0;
  virtual void load_hyper_metadata(const nn::Metadata& m) = 0;
  // Fills the kernel's scalars for parameter `index` (whose slot already has its incremented step).
  virtual void describe(size_t index, kernels::OptimHyper& hyper, kernels::OptimTensor& t) const = 0;
  virtual bool needs_state2() const = 0;
  virtual bool needs_state1() const = 0;
  // The hyper-parameters a capturable kernel needs besides the learning rate (Adam's betas and decay).
  virtual kernels::OptimCapturable capturable_hyper() const { return {}; }

  NamedParameters params_;
  std::vector<Slot> slots_;
  double lr_ = 1e-3;
  Tensor workspace_;  // CUDA: table of tensors and chunks

 private:
  void upload_capturable_state();  // slots' steps and lr_ -> cap_steps_ / cap_lr_ (not inside a capture)
  void download_steps();           // cap_steps_ -> slots' steps
  void write_capturable_lr(double lr);  // lr -> cap_lr_ (in place), cap_lr_value_
  std::vector<int64_t> current_steps() const;  // per slot: the device's counts while capturable, else the host's
  bool capturable_ = false;
  Tensor cap_lr_;     // the learning rate's bits: I64 [1] on the parameters' device (no float64 on CUDA)
  Tensor cap_steps_;  // I64 [parameters]: the authority on step counts while capturable
  double cap_lr_value_ = -1.0;  // what cap_lr_ holds
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class Adam : public Optimizer {
 public:
  Adam(NamedParameters params, AdamOptions options = {}, bool decoupled_weight_decay = false);
  Adam(const std::vector<ag::Variable>& params, AdamOptions options = {})
      : Adam(name_parameters(params), options) {}
  std::string type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return options_; }

 protected:
  std::pair<std::string, std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  nn::Metadata hyper_metadata() const override;
  void load_hyper_metadata(const nn::Metadata& m) override;
  void describe(size_t index, kernels::OptimHyper& hyper, kernels::OptimTensor& t) const override;
  bool needs_state1() const override { return true; }
  bool needs_state2() const override { return true; }
  kernels::OptimCapturable capturable_hyper() const override;

 private:
  AdamOptions options_;
  bool decoupled_;
};

// AdamW: PyTorch's default weight decay is 1e-2.
class AdamW : public Adam {
 public:
  AdamW(NamedParameters params, AdamOptions options = {0.001, 0.9, 0.999, 1e-8, 0.01})
      : Adam(std::move(params), options, true) {}
};

struct SgdOptions {
  double lr = 1e-2, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};

class Sgd : public Optimizer {
 public:
  Sgd(NamedParameters params, SgdOptions options);
  std::string type_name() const override { return "SGD"; }

 protected:
  std::pair<std::string, std::string> state_names() const override { return {"momentum_buffer", ""}; }
  nn::Metadata hyper_metadata() const override;
  void load_hyper_metadata(const nn::Metadata& m) override;
  void describe(size_t index, kernels::OptimHyper& hyper, kernels::OptimTensor& t) const override;
  bool needs_state1() const override { return options_.momentum != 0.0; }
  bool needs_state2() const override { return false; }

 private:
  SgdOptions options_;
};

// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)) and returns the total L2 norm of all
// gradients before clipping (PyTorch clip_grad_norm_). Parameters without a gradient are ignored.
// CUDA: the norm is computed and applied on the device; reading it back is the one synchronisation.
double clip_grad_norm(const std::vector<ag::Variable>& params, double max_norm);

}  // namespace pneumo::train
