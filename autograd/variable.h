// Reverse-mode autograd. A Variable is a shared handle to a value (Tensor), an optional gradient and the
// Node that produced it. Each differentiable op records one Node holding exactly what its backward needs.
// Gradient convention (every op, tested): gradients ACCUMULATE into leaves (`grad += dL/dx`); interior
// gradients are summed over all uses. After backward the graph's saved tensors are freed; a second
// backward through it throws unless the first was called with retain_graph.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace pneumo::ag {

struct VariableImpl;
class Node;

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return static_cast<bool>(impl_); }
  const Tensor& value() const;
  Tensor& mutable_value();  // in-place parameter updates (optimisers); not recorded
  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  int64_t numel() const { return value().numel(); }

  bool requires_grad() const;
  void set_requires_grad(bool on);  // leaves only
  bool is_leaf() const;
  const Tensor& grad() const;  // undefined until a backward reached it
  Tensor& mutable_grad();
  void zero_grad();  // drops the gradient (undefined again)

  // Backward from a scalar (numel 1) with seed gradient 1, or from any shape with an explicit seed.
  void backward(bool retain_graph = false) const;
  void backward(const Tensor& seed, bool retain_graph = false) const;

  Variable detach() const;  // same value, no history

  // Internals used by ops and the engine.
  const std::shared_ptr<VariableImpl>& impl() const { return impl_; }
  const std::shared_ptr<Node>& grad_fn() const;
  int output_nr() const;

 private:
  std::shared_ptr<VariableImpl> impl_;
};

// Where a gradient flows: into output `output_nr` of a node, or into a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> node;
  int output_nr = 0;
  std::shared_ptr<VariableImpl> leaf;
  bool valid() const { return node || leaf; }
};

class Node {
 public:
  virtual ~Node() = default;
  // grads[i] is dL/d(output i) (undefined where no gradient flowed); returns dL/d(input j) for each
  // input edge, undefined where an input needs none.
  virtual std::vector<Tensor> backward(const std::vector<Tensor>& grads) = 0;
  // backward, offered buffers to sum into: into[i] (where defined; `into` may be shorter than `next`) is the
  // gradient already summed for input i -- its shape, dtype and device, held by nothing else. A node may add
  // its gradient for input i into it in the same pass and return that tensor as input i's gradient (the
  // engine tells by storage); whatever else it returns, the engine adds. The default declines.
  virtual std::vector<Tensor> backward_into(const std::vector<Tensor>& grads, std::vector<Tensor>& into) {
    (void)into;
    return backward(grads);
  }
  virtual const char* name() const = 0;
  // Frees saved tensors; called by the engine after backward unless the graph is retained.
  virtual void release() {}

  std::vector<Edge> next;  // one per input
  int num_outputs = 1;
  bool released = false;
  std::vector<Shape> output_shapes;  // to make zero gradients when an output got none
  std::vector<DType> output_dtypes;
  Device output_device;
};

// How the last backward on this thread summed the gradients meeting at a tensor used more than once: in the
// producing node's own pass (Node::backward_into), in place into the engine's buffer, or into a new buffer
// (when the buffer is shared, or shapes or dtypes differ).
struct BackwardSums {
  int64_t in_node = 0, in_place = 0, new_buffer = 0;
};
BackwardSums last_backward_sums();
// Lending summed gradients to the nodes (on by default); off, every sum is the engine's (tests, A/B runs).
bool lend_gradient_sums();
void set_lend_gradient_sums(bool on);

// Gradient recording on/off for this thread (optimiser steps, inference, SWA averaging).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Helpers for writing ops: true when any input needs a gradient and recording is on.
bool any_requires_grad(const std::vector<Variable>& inputs);
// Connects `node` to `inputs` and wraps `outputs` as Variables whose grad_fn is `node`.
std::vector<Variable> record(const std::shared_ptr<Node>& node, const std::vector<Variable>& inputs,
                             std::vector<Tensor> outputs);
Variable record1(const std::shared_ptr<Node>& node, const std::vector<Variable>& inputs, Tensor output);

}  // namespace pneumo::ag
