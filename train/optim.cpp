// Optimisers: host-side bookkeeping (state, step counts, bias corrections in double) around one kernel
// call per step on the CPU or one multi-tensor launch on CUDA.
#include "train/optim.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "kernels/check.h"
#include "kernels/cpu/optim_kernels.h"
#include "tensor/cuda_graph.h"
#include "tensor/cuda_runtime.h"
#include "tensor/profile.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/optim_kernels.h"
#endif

namespace pneumo::train {
namespace {

std::string number_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double metadata_number(const nn::Metadata& m, const std::string& key) {
  auto it = m.find(key);
  PNEUMO_CHECK(it != m.end(), "optimizer state: metadata lacks '", key, "'");
  try {
    size_t used = 0;
    double v = std::stod(it->second, &used);
    PNEUMO_CHECK(used == it->second.size(), "optimizer state: metadata '", key, "' = '", it->second, "' is not a number");
    return v;
  } catch (const std::logic_error&) {
    PNEUMO_FAIL("optimizer state: metadata '", key, "' = '", it->second, "' is not a number");
  }
}

#if PNEUMO_WITH_CUDA
void ensure_workspace(Tensor& ws, size_t bytes, Device device) {
  if (!ws.defined() || ws.device() != device || ws.nbytes() < bytes)
    ws = Tensor::empty({static_cast<int64_t>(bytes < 256 ? 256 : bytes)}, DType::U8, device);
}
#endif

}  // namespace

NamedParameters name_parameters(const std::vector<ag::Variable>& params) {
  NamedParameters out;
  for (size_t i = 0; i < params.size(); ++i) out.emplace_back(std::to_string(i), params[i]);
  return out;
}

Optimizer::Optimizer(NamedParameters params) : params_(std::move(params)), slots_(params_.size()) {
  std::set<std::string> names;
  for (const auto& [name, p] : params_) {
    PNEUMO_CHECK(p.defined(), "optimizer: parameter '", name, "' is undefined");
    PNEUMO_CHECK(names.insert(name).second, "optimizer: parameter name '", name, "' appears twice");
    PNEUMO_CHECK(p.dtype() == DType::F32, "optimizer: parameter '", name, "' is ", dtype_name(p.dtype()),
                 "; parameters must be float32 master weights (cast to bfloat16 at forward)");
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  if (capturable_ && cap_lr_.defined() && lr != cap_lr_value_) {
    PNEUMO_CHECK(cuda::capturing_graph() == nullptr, type_name(), ": set_lr(", lr, ") inside a CUDA Graph capture ",
                 "would not reach the replays; set the learning rate between them");
    write_capturable_lr(lr);
  }
  lr_ = lr;
}

void Optimizer::set_capturable(bool on) {
  if (on == capturable_) return;
  PNEUMO_CHECK(cuda::capturing_graph() == nullptr, type_name(), ": set_capturable inside a CUDA Graph capture");
  if (!on) {
    download_steps();
    cap_lr_ = Tensor();
    cap_steps_ = Tensor();
    cap_lr_value_ = -1.0;
  }
  capturable_ = on;
}

void Optimizer::upload_capturable_state() {
  PNEUMO_CHECK(cuda::capturing_graph() == nullptr, type_name(), ": the capturable state (learning rate, step counts) ",
               "is created or reloaded by an eager step; take one step before capturing");
  const Device device = params_.empty() ? Device::cpu() : params_[0].second.value().device();
  std::vector<double> steps(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) steps[i] = static_cast<double>(slots_[i].step);
  const Tensor host = Tensor::from_vector_f64(steps, {static_cast<int64_t>(steps.size())}, DType::I64);
  // Refill in place where possible: a captured graph holds these addresses.
  if (cap_steps_.defined() && cap_steps_.device() == device && cap_steps_.numel() == host.numel())
    cap_steps_.copy_from(host);
  else
    cap_steps_ = host.to(device);
  if (!cap_lr_.defined() || cap_lr_.device() != device) cap_lr_ = Tensor::empty({1}, DType::I64, device);
  write_capturable_lr(lr_);
}

// The learning rate's 8 bytes, held as I64: float64 tensors live on the CPU only, and the CUDA fill kernel takes
// no float64, yet the kernels read a double (their scalars are formed in double, as on the host).
void Optimizer::write_capturable_lr(double lr) {
  Tensor host = Tensor::empty({1}, DType::I64);
  std::memcpy(host.raw_data(), &lr, sizeof lr);
  cap_lr_.copy_from(host);  // in place: a captured graph holds this address
  cap_lr_value_ = lr;
}

std::vector<int64_t> Optimizer::current_steps() const {
  std::vector<int64_t> steps(slots_.size());
  if (capturable_ && cap_steps_.defined()) {  // the device's counts include every replay
    const std::vector<double> v = cap_steps_.to_vector_f64();
    for (size_t i = 0; i < steps.size(); ++i) steps[i] = static_cast<int64_t>(v[i]);
  } else {
    for (size_t i = 0; i < steps.size(); ++i) steps[i] = slots_[i].step;
  }
  return steps;
}

void Optimizer::download_steps() {
  const std::vector<int64_t> steps = current_steps();
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].step = steps[i];
}

int64_t Optimizer::step_count(size_t index) const {
  PNEUMO_CHECK(index < slots_.size(), "optimizer: no parameter ", index, " (", slots_.size(), " parameters)");
  return current_steps()[index];
}

void Optimizer::step() {
  std::vector<kernels::OptimTensor> list;
  kernels::OptimHyper hyper;
  Device device;
  bool first = true;
  cuda::Graph* const graph = cuda::capturing_graph();
  PNEUMO_CHECK(capturable_ || graph == nullptr, type_name(), ": a step inside a CUDA Graph capture needs ",
               "set_capturable(true); otherwise its step sizes would be baked into every replay");
  if (capturable_ && !params_.empty()) {
    const Device at = params_[0].second.value().device();
    if (!cap_steps_.defined() || cap_steps_.device() != at) {
      download_steps();  // (parameters moved: the counts so far, replays included, follow them)
      upload_capturable_state();
    }
    if (lr_ != cap_lr_value_) set_lr(lr_);  // (refused inside a capture)
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    ag::Variable& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const std::string& name = params_[i].first;
    Tensor& value = p.mutable_value();
    Tensor& grad = p.mutable_grad();
    PNEUMO_CHECK(value.dtype() == DType::F32 && grad.dtype() == DType::F32, type_name(), ": parameter '", name,
                 "' is ", dtype_name(value.dtype()), " with a ", dtype_name(grad.dtype()),
                 " gradient; both must be float32");
    PNEUMO_CHECK(grad.shape() == value.shape(), type_name(), ": gradient of '", name, "' is ",
                 shape_str(grad.shape()), ", parameter ", shape_str(value.shape()));
    check_same_device(type_name().c_str(), value, grad);
    if (first) device = value.device();
    PNEUMO_CHECK(value.device() == device, type_name(), ": parameters on several devices (", device.str(), ", ",
                 value.device().str(), " for '", name, "')");
    first = false;

    Slot& slot = slots_[i];
    bool created = false;
    if ((needs_state1() && !slot.state1.defined()) || (needs_state2() && !slot.state2.defined()))
      PNEUMO_CHECK(graph == nullptr, type_name(), ": parameter '", name, "' has no optimiser state yet; inside a ",
                   "CUDA Graph capture every replay would zero it again: take one eager step before capturing");
    if (needs_state1() && !slot.state1.defined()) {
      slot.state1 = Tensor::zeros(value.shape(), DType::F32, device);
      created = true;
    }
    if (needs_state2() && !slot.state2.defined()) slot.state2 = Tensor::zeros(value.shape(), DType::F32, device);
    slot.step += 1;
    kernels::OptimTensor t;
    t.param = value.data<float>();
    t.grad = grad.data<float>();
    t.state1 = slot.state1.defined() ? slot.state1.data<float>() : nullptr;
    t.state2 = slot.state2.defined() ? slot.state2.data<float>() : nullptr;
    t.numel = value.numel();
    t.first_step = created ? 1 : 0;
    t.slot = static_cast<int32_t>(i);
    describe(i, hyper, t);
    list.push_back(t);
  }
  if (list.empty()) return;
  profile::DirectionGuard direction("opt");
  profile::OpScope scope("optimizer_step", params_[0].second.value());
  kernels::OptimCapturable cap;
  if (capturable_) {
    cap = capturable_hyper();
    cap.lr = static_cast<const double*>(cap_lr_.raw_data());  // I64 storage of a double (write_capturable_lr)
    cap.steps = cap_steps_.data<int64_t>();
  }
  if (device.is_cuda()) {
#if PNEUMO_WITH_CUDA
    const size_t bytes = kernels::cuda::optimizer_workspace_bytes(list.data(), static_cast<int>(list.size()));
    Tensor* ws = &workspace_;
    Tensor captured;
    void* staging = nullptr;
    if (graph) {  // the table's device copy and its pinned source belong to the graph (a later eager step
                  // may reallocate workspace_)
      captured = Tensor::empty({static_cast<int64_t>(bytes)}, DType::U8, device);
      graph->keep_alive(std::make_shared<Tensor>(captured));
      staging = graph->pinned_buffer(bytes);
      ws = &captured;
    } else {
      ensure_workspace(workspace_, bytes, device);
    }
    kernels::cuda::optimizer_step(list.data(), static_cast<int>(list.size()), hyper, ws->raw_data(), ws->nbytes(),
                                  cuda::current_stream(device.index), capturable_ ? &cap : nullptr, staging);
#else
    PNEUMO_FAIL(type_name(), ": CUDA parameters in a build without CUDA");
#endif
  } else {
    kernels::cpu::optimizer_step(list.data(), static_cast<int>(list.size()), hyper, capturable_ ? &cap : nullptr);
  }
}

OptimizerStateDict Optimizer::state_dict() const {
  OptimizerStateDict out;
  out.metadata = hyper_metadata();
  out.metadata["optimizer"] = type_name();
  out.metadata["lr"] = number_text(lr_);
  const auto names = state_names();
  const std::vector<int64_t> steps = current_steps();
  for (size_t i = 0; i < params_.size(); ++i) {
    const Slot& s = slots_[i];
    if (steps[i] == 0) continue;
    const std::string& p = params_[i].first;
    out.tensors.emplace_back(p + ".step", Tensor::full({}, static_cast<double>(steps[i]), DType::I64));
    if (s.state1.defined()) out.tensors.emplace_back(p + "." + names.first, s.state1.clone());
    if (s.state2.defined()) out.tensors.emplace_back(p + "." + names.second, s.state2.clone());
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerStateDict& state) {
  auto type = state.metadata.find("optimizer");
  PNEUMO_CHECK(type != state.metadata.end() && type->second == type_name(), "optimizer state is for '",
               type == state.metadata.end() ? std::string("?") : type->second, "', this optimizer is ", type_name());
  std::map<std::string, Tensor> tensors(state.tensors.begin(), state.tensors.end());
  std::set<std::string> used;
  const auto names = state_names();
  std::vector<Slot> fresh(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& p = params_[i].first;
    const Tensor& value = params_[i].second.value();
    auto step = tensors.find(p + ".step");
    if (step == tensors.end()) continue;
    used.insert(step->first);
    PNEUMO_CHECK(step->second.numel() == 1, "optimizer state: '", step->first, "' must be a scalar");
    fresh[i].step = static_cast<int64_t>(step->second.item());
    auto take = [&](const std::string& suffix, bool needed) -> Tensor {
      if (suffix.empty() || !needed) return Tensor();
      auto it = tensors.find(p + "." + suffix);
      PNEUMO_CHECK(it != tensors.end(), "optimizer state: '", p, ".", suffix, "' is missing");
      PNEUMO_CHECK(it->second.shape() == value.shape() && it->second.dtype() == DType::F32, "optimizer state: '",
                   it->first, "' is ", shape_str(it->second.shape()), " ", dtype_name(it->second.dtype()),
                   ", parameter is ", shape_str(value.shape()), " F32");
      used.insert(it->first);
      return it->second.to(value.device()).clone();
    };
    fresh[i].state1 = take(names.first, needs_state1());
    fresh[i].state2 = take(names.second, needs_state2());
  }
  for (const auto& [name, t] : tensors)
    PNEUMO_CHECK(used.count(name), "optimizer state: unexpected tensor '", name, "' (no such parameter)");
  load_hyper_metadata(state.metadata);
  lr_ = metadata_number(state.metadata, "lr");
  slots_ = std::move(fresh);
  if (capturable_ && cap_steps_.defined()) upload_capturable_state();
}

void Optimizer::save(const std::string& path) const {
  OptimizerStateDict s = state_dict();
  nn::save_safetensors(path, s.tensors, s.metadata);
}

void Optimizer::load(const std::string& path) {
  nn::SafetensorsContents c = nn::load_safetensors(path);
  try {
    load_state_dict({c.tensors, c.metadata});
  } catch (const Error& e) {
    PNEUMO_FAIL("loading optimizer state '", path, "': ", e.what());
  }
}

// ---- Adam / AdamW ----
Adam::Adam(NamedParameters params, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(params)), options_(options), decoupled_(decoupled_weight_decay) {
  PNEUMO_CHECK(options.lr >= 0 && options.eps >= 0 && options.beta1 >= 0 && options.beta1 < 1 &&
                   options.beta2 >= 0 && options.beta2 < 1 && options.weight_decay >= 0,
               type_name(), ": invalid options lr ", options.lr, " betas (", options.beta1, ", ", options.beta2,
               ") eps ", options.eps, " weight_decay ", options.weight_decay);
  lr_ = options.lr;
}

nn::Metadata Adam::hyper_metadata() const {
  return {{"beta1", number_text(options_.beta1)},
          {"beta2", number_text(options_.beta2)},
          {"eps", number_text(options_.eps)},
          {"weight_decay", number_text(options_.weight_decay)}};
}

void Adam::load_hyper_metadata(const nn::Metadata& m) {
  options_.beta1 = metadata_number(m, "beta1");
  options_.beta2 = metadata_number(m, "beta2");
  options_.eps = metadata_number(m, "eps");
  options_.weight_decay = metadata_number(m, "weight_decay");
}

void Adam::describe(size_t index, kernels::OptimHyper& h, kernels::OptimTensor& t) const {
  const double step = static_cast<double>(slots_[index].step);
  h.algorithm = static_cast<int32_t>(decoupled_ ? kernels::OptimAlgorithm::AdamW : kernels::OptimAlgorithm::Adam);
  h.beta1 = static_cast<float>(options_.beta1);
  h.one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
  h.beta2 = static_cast<float>(options_.beta2);
  h.one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
  h.eps = static_cast<float>(options_.eps);
  h.weight_decay = decoupled_ ? 0.0f : static_cast<float>(options_.weight_decay);
  kernels::adam_step_scalars(lr_, step, options_.beta1, options_.beta2, options_.weight_decay, decoupled_, t);
}

kernels::OptimCapturable Adam::capturable_hyper() const {
  kernels::OptimCapturable c;
  c.beta1 = options_.beta1;
  c.beta2 = options_.beta2;
  c.weight_decay = options_.weight_decay;
  c.decoupled = decoupled_ ? 1 : 0;
  return c;
}

// ---- SGD ----
Sgd::Sgd(NamedParameters params, SgdOptions options) : Optimizer(std::move(params)), options_(options) {
  PNEUMO_CHECK(options.lr >= 0 && options.momentum >= 0 && options.weight_decay >= 0, "SGD: invalid options lr ",
               options.lr, " momentum ", options.momentum, " weight_decay ", options.weight_decay);
  PNEUMO_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
               "SGD: Nesterov momentum requires a momentum and zero dampening");
  lr_ = options.lr;
}

nn::Metadata Sgd::hyper_metadata() const {
  return {{"momentum", number_text(options_.momentum)},
          {"dampening", number_text(options_.dampening)},
          {"weight_decay", number_text(options_.weight_decay)},
          {"nesterov", options_.nesterov ? "1" : "0"}};
}

void Sgd::load_hyper_metadata(const nn::Metadata& m) {
  options_.momentum = metadata_number(m, "momentum");
  options_.dampening = metadata_number(m, "dampening");
  options_.weight_decay = metadata_number(m, "weight_decay");
  options_.nesterov = metadata_number(m, "nesterov") != 0.0;
}

void Sgd::describe(size_t, kernels::OptimHyper& h, kernels::OptimTensor&) const {
  h.algorithm = static_cast<int32_t>(kernels::OptimAlgorithm::Sgd);
  h.lr = static_cast<float>(lr_);
  h.momentum = static_cast<float>(options_.momentum);
  h.one_minus_dampening = static_cast<float>(1.0 - options_.dampening);
  h.weight_decay = static_cast<float>(options_.weight_decay);
  h.nesterov = options_.nesterov ? 1 : 0;
}

// ---- clipping ----
double clip_grad_norm(const std::vector<ag::Variable>& params, double max_norm) {
  PNEUMO_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  std::vector<float*> ptrs;
  std::vector<int64_t> sizes;
  Device device;
  for (const ag::Variable& p0 : params) {
    ag::Variable p = p0;
    if (!p.grad().defined()) continue;
    Tensor& g = p.mutable_grad();
    PNEUMO_CHECK(g.dtype() == DType::F32, "clip_grad_norm: gradients must be float32, got ", dtype_name(g.dtype()));
    if (ptrs.empty()) device = g.device();
    PNEUMO_CHECK(g.device() == device, "clip_grad_norm: gradients on several devices");
    ptrs.push_back(g.data<float>());
    sizes.push_back(g.numel());
  }
  if (ptrs.empty()) return 0.0;
  const int count = static_cast<int>(ptrs.size());
  if (device.is_cuda()) {
#if PNEUMO_WITH_CUDA
    const size_t bytes = kernels::cuda::clip_workspace_bytes(sizes.data(), count);
    Tensor ws = Tensor::empty({static_cast<int64_t>(bytes)}, DType::U8, device);
    Tensor norm = Tensor::empty({}, DType::F32, device);
    kernels::cuda::clip_grad_norm(ptrs.data(), sizes.data(), count, static_cast<float>(max_norm), norm.data<float>(),
                                  ws.raw_data(), bytes, cuda::current_stream(device.index));
    return norm.item();
#else
    PNEUMO_FAIL("clip_grad_norm: CUDA gradients in a build without CUDA");
#endif
  }
  const float norm = static_cast<float>(std::sqrt(kernels::cpu::multi_tensor_sum_squares(ptrs.data(), sizes.data(), count)));
  const float coef = static_cast<float>(max_norm) / (norm + 1e-6f);
  if (coef < 1.0f) kernels::cpu::multi_tensor_scale(ptrs.data(), sizes.data(), count, coef);
  return norm;
}

}  // namespace pneumo::train
