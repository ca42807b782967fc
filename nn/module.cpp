// Module bookkeeping: recursive named parameters/buffers in registration order, mode switches, moves.
#include "nn/module.h"

#include "kernels/check.h"

namespace pneumo::nn {

Variable Module::forward(const Variable&) {
  PNEUMO_FAIL(type_name(), " has no single-input forward");
}

void Module::train(bool on) {
  training_ = on;
  on_mode_change();
  for (auto& c : children_) c.second->train(on);
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> out(parameters_.begin(), parameters_.end());
  for (const auto& c : children_)
    for (auto& p : c.second->named_parameters()) out.emplace_back(c.first + "." + p.first, p.second);
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& p : named_parameters()) out.push_back(p.second);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& b : buffers_) out.emplace_back(b.first, &b.second);
  for (auto& c : children_)
    for (auto& b : c.second->named_buffers()) out.emplace_back(c.first + "." + b.first, b.second);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& p : parameters_) out.emplace_back(p.first, p.second.value());
  for (const auto& b : buffers_) out.emplace_back(b.first, b.second);
  for (const auto& c : children_)
    for (auto& e : c.second->state_dict()) out.emplace_back(c.first + "." + e.first, e.second);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& c : children_)
    for (auto& m : c.second->named_modules()) out.emplace_back(m.first.empty() ? c.first : c.first + "." + m.first, m.second);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& p : named_parameters()) n += p.second.numel();
  return n;
}

void Module::to(Device device) {
  for (auto& p : parameters_) {  // in place: handles held by layers and optimisers stay valid
    p.second.mutable_value() = p.second.value().to(device);
    p.second.zero_grad();
  }
  for (auto& b : buffers_) b.second = b.second.to(device);
  for (auto& c : children_) c.second->to(device);
}

void Module::to(DType dtype) {
  for (auto& p : parameters_) {
    if (!is_floating(p.second.dtype())) continue;
    p.second.mutable_value() = p.second.value().to(dtype);
    p.second.zero_grad();
  }
  for (auto& b : buffers_)
    if (is_floating(b.second.dtype())) b.second = b.second.to(dtype);
  for (auto& c : children_) c.second->to(dtype);
}

void Module::zero_grad() {
  for (auto& p : parameters_) p.second.zero_grad();
  for (auto& c : children_) c.second->zero_grad();
}

void Module::set_tensor(const std::string& name, const Tensor& value) {
  auto assign = [&](const std::string& what, const Tensor& current, Tensor& target) {
    PNEUMO_CHECK(current.shape() == value.shape(), what, " '", name, "': expected shape ", shape_str(current.shape()),
                 ", got ", shape_str(value.shape()));
    target = value.to(current.device(), current.dtype());
  };
  for (auto& p : parameters_)
    if (p.first == name) {
      Tensor& v = p.second.mutable_value();
      assign("parameter", v, v);
      return;
    }
  for (auto& b : buffers_)
    if (b.first == name) {
      assign("buffer", b.second, b.second);
      return;
    }
  size_t dot = name.find('.');
  if (dot != std::string::npos) {
    std::string head = name.substr(0, dot);
    for (auto& c : children_)
      if (c.first == head) return c.second->set_tensor(name.substr(dot + 1), value);
  }
  PNEUMO_FAIL(type_name(), " has no parameter or buffer named '", name, "'");
}

Variable& Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  for (auto& p : parameters_) PNEUMO_CHECK(p.first != name, "parameter '", name, "' registered twice");
  parameters_.emplace_back(name, Variable(std::move(value), requires_grad));
  return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  for (auto& b : buffers_) PNEUMO_CHECK(b.first != name, "buffer '", name, "' registered twice");
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

Variable Sequential::forward(const Variable& x) {
  Variable y = x;
  for (auto& c : children_) y = c.second->forward(y);
  return y;
}

void Sequential::push_back(std::shared_ptr<Module> m) { children_.emplace_back(std::to_string(children_.size()), std::move(m)); }

}  // namespace pneumo::nn
