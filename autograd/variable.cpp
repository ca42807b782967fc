// Variable handles and the backward engine: a dependency-counted topological walk from the root that sums
// the gradients reaching each node output (in place where the engine alone holds the sum, and lending the
// sum to the next node that adds to it: Node::backward_into), calls each node once, accumulates (+=) into
// leaves and then releases each node's saved tensors unless the graph is retained.
#include "autograd/variable.h"

#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "kernels/check.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace pneumo::ag {

struct VariableImpl {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  int output_nr = 0;
};

namespace {
thread_local bool g_grad_enabled = true;
thread_local BackwardSums g_sums;
std::atomic<bool> g_lend{true};
const Tensor kUndefined;
const std::shared_ptr<Node> kNoNode;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
BackwardSums last_backward_sums() { return g_sums; }
bool lend_gradient_sums() { return g_lend.load(std::memory_order_relaxed); }
void set_lend_gradient_sums(bool on) { g_lend.store(on); }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
  if (requires_grad)
    PNEUMO_CHECK(is_floating(impl_->value.dtype()), "only floating tensors can require gradients, got ",
                 dtype_name(impl_->value.dtype()));
}

const Tensor& Variable::value() const {
  PNEUMO_CHECK(impl_, "use of an undefined Variable");
  return impl_->value;
}
Tensor& Variable::mutable_value() {
  PNEUMO_CHECK(impl_, "use of an undefined Variable");
  return impl_->value;
}
bool Variable::requires_grad() const { return impl_ && impl_->requires_grad; }
void Variable::set_requires_grad(bool on) {
  PNEUMO_CHECK(is_leaf(), "requires_grad can only be changed on leaf Variables");
  impl_->requires_grad = on;
}
bool Variable::is_leaf() const { return impl_ && !impl_->grad_fn; }
const Tensor& Variable::grad() const { return impl_ ? impl_->grad : kUndefined; }
Tensor& Variable::mutable_grad() {
  PNEUMO_CHECK(impl_, "use of an undefined Variable");
  return impl_->grad;
}
void Variable::zero_grad() {
  if (impl_) impl_->grad = Tensor();
}
const std::shared_ptr<Node>& Variable::grad_fn() const { return impl_ ? impl_->grad_fn : kNoNode; }
int Variable::output_nr() const { return impl_ ? impl_->output_nr : 0; }

Variable Variable::detach() const { return Variable(value(), false); }

void Variable::backward(bool retain_graph) const {
  PNEUMO_CHECK(value().numel() == 1, "backward() without a seed needs a scalar output, got shape ",
               shape_str(value().shape()), "; pass a seed gradient");
  backward(Tensor::full(value().shape(), 1.0, value().dtype(), value().device()), retain_graph);
}

namespace {

void accumulate_leaf(VariableImpl& leaf, Tensor g) {
  if (!leaf.requires_grad) return;
  PNEUMO_CHECK(g.numel() == leaf.value.numel(), "gradient of shape ", shape_str(g.shape()), " for a leaf of shape ",
               shape_str(leaf.value.shape()));
  Tensor gg = g.dtype() == leaf.value.dtype() ? std::move(g) : g.to(leaf.value.dtype());
  if (!leaf.grad.defined()) {
    // Kept as is when nothing else holds its memory (a fresh backward output, a cast's result): no copy
    // pass per parameter. Otherwise an own copy: backward outputs may alias each other or saved tensors.
    leaf.grad = gg.sole_owner() ? gg.reshape(leaf.value.shape()) : gg.clone().reshape(leaf.value.shape());
  } else {
    ops::add_(leaf.grad, gg);
  }
}

using Buffers = std::unordered_map<Node*, std::vector<Tensor>>;

// slot += g. In place when the engine alone holds slot (no new buffer); else a new sum, as g may alias.
void add_to_slot(Tensor& slot, const Tensor& g) {
  if (slot.sole_owner() && slot.shape() == g.shape() && slot.dtype() == g.dtype()) {
    ops::add_(slot, g);
    g_sums.in_place++;
  } else {
    slot = ops::add(slot, g);
    g_sums.new_buffer++;
  }
}

// The summed gradients `n` may add into (Node::backward_into), moved out of their slots: an input's slot
// that holds a sum nothing else holds, of the expected shape and dtype, reached by no other edge of `n`.
std::vector<Tensor> lend_sums(const Node& n, Buffers& buffers) {
  std::vector<Tensor> into;
  if (!g_lend.load(std::memory_order_relaxed)) return into;
  for (size_t i = 0; i < n.next.size(); ++i) {
    const Edge& e = n.next[i];
    if (!e.node) continue;
    bool shared = false;
    for (size_t j = 0; j < n.next.size(); ++j)
      shared = shared || (j != i && n.next[j].node == e.node && n.next[j].output_nr == e.output_nr);
    auto it = buffers.find(e.node.get());
    const size_t k = static_cast<size_t>(e.output_nr);
    if (shared || it == buffers.end() || k >= it->second.size() || k >= e.node->output_shapes.size() ||
        k >= e.node->output_dtypes.size())
      continue;
    Tensor& slot = it->second[k];
    if (!slot.defined() || !slot.sole_owner() || slot.shape() != e.node->output_shapes[k] ||
        slot.dtype() != e.node->output_dtypes[k])
      continue;
    into.resize(n.next.size());
    into[i] = std::move(slot);
  }
  return into;
}

}  // namespace

void Variable::backward(const Tensor& seed, bool retain_graph) const {
  PNEUMO_CHECK(impl_, "backward on an undefined Variable");
  PNEUMO_CHECK(seed.numel() == value().numel(), "backward seed ", shape_str(seed.shape()), " does not match output ",
               shape_str(value().shape()));
  if (!impl_->grad_fn) {
    PNEUMO_CHECK(impl_->requires_grad, "backward on a Variable that does not require gradients");
    accumulate_leaf(*impl_, seed);  // (the caller still holds seed: copied)
    return;
  }
  NoGradGuard no_grad;  // backward formulas are not recorded
  profile::DirectionGuard direction("bwd");  // op scopes below are filed as backward
  Node* root = impl_->grad_fn.get();
  // Count, for each node, the edges reaching it from nodes in this graph.
  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen{root};
  std::vector<Node*> stack{root};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    PNEUMO_CHECK(!n->released, "backward through a graph whose saved tensors were already freed (node ", n->name(),
                 "); call backward(retain_graph=true) the first time to go through it twice");
    for (const Edge& e : n->next) {
      if (!e.node) continue;
      deps[e.node.get()]++;
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
  g_sums = BackwardSums();
  Buffers buffers;
  buffers[root].resize(static_cast<size_t>(root->num_outputs));
  buffers[root][static_cast<size_t>(impl_->output_nr)] = seed.reshape(value().shape());
  std::vector<Node*> ready{root};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    std::vector<Tensor> grads = std::move(buffers[n]);
    buffers.erase(n);
    grads.resize(static_cast<size_t>(n->num_outputs));
    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    // A node no gradient reached passes none on (its inputs still count it as done).
    std::vector<Tensor> input_grads, lent;
    if (any) {
      const Tensor* first = nullptr;
      for (const Tensor& g : grads)
        if (!first && g.defined()) first = &g;
      // The node's own scope (NVTX "Name bwd"): its self time is what its tensor ops' scopes do not cover.
      profile::OpScope scope(n->name(), *first);
      lent = lend_sums(*n, buffers);
      input_grads = lent.empty() ? n->backward(grads) : n->backward_into(grads, lent);
    } else {
      input_grads.resize(n->next.size());
    }
    PNEUMO_CHECK(input_grads.size() == n->next.size(), "node ", n->name(), " returned ", input_grads.size(),
                 " gradients for ", n->next.size(), " inputs");
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Edge& e = n->next[i];
      const Tensor& g = input_grads[i];
      if (e.leaf) {
        if (g.defined()) accumulate_leaf(*e.leaf, std::move(input_grads[i]));  // (the leaf may keep it)
      } else if (e.node) {
        auto& buf = buffers[e.node.get()];
        buf.resize(static_cast<size_t>(e.node->num_outputs));
        Tensor& slot = buf[static_cast<size_t>(e.output_nr)];
        if (i < lent.size() && lent[i].defined()) {
          // The sum was lent to this node (no other edge reaches the slot, so it is still empty): take it
          // back, with this gradient added by the node or now.
          const bool added = g.defined() && g.shares_storage(lent[i]);
          slot = std::move(lent[i]);
          if (added) g_sums.in_node++;
          else if (g.defined()) add_to_slot(slot, g);
        } else if (g.defined()) {
          if (slot.defined()) add_to_slot(slot, g);
          else slot = g;
        }
        if (--deps[e.node.get()] == 0) ready.push_back(e.node.get());
      }
    }
    if (!retain_graph) {
      n->release();
      n->released = true;
    }
  }
}

bool any_requires_grad(const std::vector<Variable>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Variable& v : inputs)
    if (v.requires_grad()) return true;
  return false;
}

std::vector<Variable> record(const std::shared_ptr<Node>& node, const std::vector<Variable>& inputs,
                             std::vector<Tensor> outputs) {
  std::vector<Variable> result;
  result.reserve(outputs.size());
  if (!any_requires_grad(inputs)) {
    for (Tensor& t : outputs) result.emplace_back(std::move(t), false);
    return result;
  }
  node->next.clear();
  for (const Variable& v : inputs) {
    Edge e;
    if (v.requires_grad()) {
      if (v.grad_fn()) {
        e.node = v.grad_fn();
        e.output_nr = v.output_nr();
      } else {
        e.leaf = v.impl();
      }
    }
    node->next.push_back(e);
  }
  node->num_outputs = static_cast<int>(outputs.size());
  node->output_shapes.clear();
  node->output_dtypes.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    node->output_shapes.push_back(outputs[i].shape());
    node->output_dtypes.push_back(outputs[i].dtype());
    node->output_device = outputs[i].device();
    Variable v(std::move(outputs[i]), false);
    v.impl()->requires_grad = true;
    v.impl()->grad_fn = node;
    v.impl()->output_nr = static_cast<int>(i);
    result.push_back(std::move(v));
  }
  return result;
}

Variable record1(const std::shared_ptr<Node>& node, const std::vector<Variable>& inputs, Tensor output) {
  std::vector<Tensor> outs;
  outs.push_back(std::move(output));
  return record(node, inputs, std::move(outs))[0];
}

}  // namespace pneumo::ag
