// Module: named parameters, buffers (e.g. BatchNorm running statistics) and children, train/eval mode.
// Names follow PyTorch's dotted convention ("layer1.0.conv1.weight") so checkpoints and timm weights map
// one to one. Parameter order is registration order, depth first: stable across runs and builds.
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace pneumo::nn {

using ag::Variable;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Single-input forward; modules with other signatures add their own and leave this throwing.
  virtual Variable forward(const Variable& x);
  Variable operator()(const Variable& x) { return forward(x); }
  virtual std::string type_name() const { return "Module"; }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Recursive, "prefix.name" keys, registration order.
  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  std::vector<Variable> parameters() const;
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  // Parameters and buffers together (what a checkpoint holds).
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::pair<std::string, Module*>> named_modules();  // includes this as ""
  int64_t parameter_count() const;

  // Moves every parameter and buffer (parameters keep requires_grad; gradients are dropped).
  void to(Device device);
  void to(DType dtype);  // floating parameters and buffers only
  void zero_grad();

  // Replaces the value of a parameter or buffer by name (checkpoint loading); shape and dtype must match.
  void set_tensor(const std::string& name, const Tensor& value);

 protected:
  Variable& register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }
  // Called after train()/eval() switch, for modules that cache mode-dependent state.
  virtual void on_mode_change() {}

  bool training_ = true;
  // deques: references returned by register_* stay valid as more are registered, and to() replaces
  // values in place, so a layer may keep its Variable& / Tensor& for its whole life.
  std::deque<std::pair<std::string, Variable>> parameters_;
  std::deque<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Runs child modules in order.
class Sequential : public Module {
 public:
  std::string type_name() const override { return "Sequential"; }
  Variable forward(const Variable& x) override;
  void push_back(std::shared_ptr<Module> m);  // named "0", "1", ...
  size_t size() const { return children_.size(); }
  Module& at(size_t i) { return *children_.at(i).second; }
};

}  // namespace pneumo::nn
