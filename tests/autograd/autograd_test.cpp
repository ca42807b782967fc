// Every differentiable op through the float64 finite-difference checker (which also checks that backward
// accumulates), plus the engine's contract: graph freeing, no-grad scope, shared inputs, multi-output nodes.
#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

using namespace pneumo;
using ag::Variable;
using V = std::vector<Variable>;

namespace {
Tensor r64(const Shape& s, uint64_t seed, double lo = -2, double hi = 2) {
  return Tensor::uniform(s, static_cast<float>(lo), static_cast<float>(hi), seed, 0, DType::F64);
}
}  // namespace

TEST(Autograd, BinaryOpsWithBroadcasting) {
  Shape s{2, 3, 2, 4};
  for (auto op : {ops::BinaryOp::Add, ops::BinaryOp::Sub, ops::BinaryOp::Mul, ops::BinaryOp::Div}) {
    SCOPED_TRACE(ops::binary_name(op));
    auto f = [op](const V& v) {
      switch (op) {
        case ops::BinaryOp::Add: return ag::add(v[0], v[1]);
        case ops::BinaryOp::Sub: return ag::sub(v[0], v[1]);
        case ops::BinaryOp::Mul: return ag::mul(v[0], v[1]);
        default: return ag::div(v[0], v[1]);
      }
    };
    test::expect_gradcheck(f, {r64(s, 1), r64(s, 2, 0.5, 2)});        // same shape
    test::expect_gradcheck(f, {r64(s, 3), r64({4}, 4, 0.5, 2)});      // per channel
    test::expect_gradcheck(f, {r64(s, 5), r64({1}, 6, 0.5, 2)});      // scalar
    test::expect_gradcheck(f, {r64({1}, 7, 0.5, 2), r64(s, 8, 0.5, 2)});  // scalar on the left
  }
}

TEST(Autograd, UnaryOps) {
  Shape s{3, 5, 7};
  test::expect_gradcheck([](const V& v) { return ag::neg(v[0]); }, {r64(s, 1)});
  test::expect_gradcheck([](const V& v) { return ag::exp(v[0]); }, {r64(s, 2)});
  test::expect_gradcheck([](const V& v) { return ag::log(v[0]); }, {r64(s, 3, 0.2, 3)});
  test::expect_gradcheck([](const V& v) { return ag::sqrt(v[0]); }, {r64(s, 4, 0.2, 3)});
  test::expect_gradcheck([](const V& v) { return ag::abs(v[0]); }, {ag::random_away_from(s, -2, 2, {0.0}, 1e-3, 5)});
  test::expect_gradcheck([](const V& v) { return ag::relu(v[0]); }, {ag::random_away_from(s, -2, 2, {0.0}, 1e-3, 6)});
  test::expect_gradcheck([](const V& v) { return ag::sigmoid(v[0]); }, {r64(s, 7, -6, 6)});
  test::expect_gradcheck([](const V& v) { return ag::tanh(v[0]); }, {r64(s, 8)});
  test::expect_gradcheck([](const V& v) { return ag::swish(v[0]); }, {r64(s, 9, -6, 6)});
  test::expect_gradcheck([](const V& v) { return ag::affine(v[0], -1.5, 0.25); }, {r64(s, 10)});
}

TEST(Autograd, Reductions) {
  Shape s{2, 3, 4, 5};
  test::expect_gradcheck([](const V& v) { return ag::sum(v[0]); }, {r64(s, 1)});
  test::expect_gradcheck([](const V& v) { return ag::mean(v[0]); }, {r64(s, 2)});
  test::expect_gradcheck([](const V& v) { return ag::sum_channels(v[0]); }, {r64(s, 3)});
  test::expect_gradcheck([](const V& v) { return ag::sum_hw(v[0]); }, {r64(s, 4)});
  test::expect_gradcheck([](const V& v) { return ag::mean_hw(v[0]); }, {r64(s, 5)});
}

TEST(Autograd, MatmulAllTransposes) {
  for (int t = 0; t < 4; ++t) {
    bool ta = t & 1, tb = t & 2;
    Tensor a = r64(ta ? Shape{4, 3} : Shape{3, 4}, 10 + t), b = r64(tb ? Shape{5, 4} : Shape{4, 5}, 20 + t);
    test::expect_gradcheck([=](const V& v) { return ag::matmul(v[0], v[1], ta, tb); }, {a, b});
  }
}

TEST(Autograd, ShapeOps) {
  test::expect_gradcheck([](const V& v) { return ag::reshape(ag::exp(v[0]), {6, -1}); }, {r64({2, 3, 4}, 1)});
  test::expect_gradcheck([](const V& v) { return ag::concat_channels({v[0], v[1], v[2]}); },
                         {r64({2, 2, 2, 3}, 2), r64({2, 2, 2, 1}, 3), r64({2, 2, 2, 2}, 4)});
  // Only one output of a split used: the others get zero gradients.
  test::expect_gradcheck([](const V& v) { return ag::split_channels(v[0], {2, 3, 1})[1]; }, {r64({2, 2, 2, 6}, 5)});
  test::expect_gradcheck([](const V& v) {
    auto p = ag::split_channels(v[0], {2, 4});
    return ag::mul(p[0], ag::sum_channels(p[1]).value().numel() ? ag::sum(p[1]) : p[1]);
  }, {r64({1, 2, 3, 6}, 6)});
  test::expect_gradcheck([](const V& v) { return ag::cast(ag::cast(v[0], DType::F32), DType::F64); },
                         {r64({7}, 7)}, ag::GradcheckOptions{1e-3, 1e-4, 1e-3});
}

TEST(Autograd, SharedInputsSumTheirGradients) {
  // f(x) = x * x + x  => df/dx = 2x + 1, through three uses of one leaf.
  Variable x(Tensor::from_vector_f64({1.5, -2.0}, {2}), true);
  Variable y = ag::sum(ag::add(ag::mul(x, x), x));
  y.backward();
  EXPECT_EQ(x.grad().to_vector_f64(), (std::vector<double>{4.0, -3.0}));
  // Parameter gradients accumulate over a second graph.
  Variable z = ag::sum(ag::mul(x, x));
  z.backward();
  EXPECT_EQ(x.grad().to_vector_f64(), (std::vector<double>{7.0, -7.0}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAClearError) {
  Variable x(Tensor::from_vector_f64({1, 2}, {2}), true);
  Variable y = ag::sum(ag::exp(x));
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
  Variable y2 = ag::sum(ag::exp(x));
  y2.backward(true);
  EXPECT_NO_THROW(y2.backward());
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Variable x(Tensor::from_vector({1, 2}, {2}), true);
  {
    ag::NoGradGuard guard;
    EXPECT_FALSE(ag::grad_enabled());
    Variable y = ag::mul(x, x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_FALSE(y.grad_fn());
  }
  EXPECT_TRUE(ag::grad_enabled());
  EXPECT_TRUE(ag::mul(x, x).requires_grad());
  EXPECT_THROW(Variable(Tensor::zeros({2})).backward(), Error);
  EXPECT_THROW(ag::mul(x, x).backward(), Error);  // non-scalar without a seed
}

TEST(Autograd, SavedTensorsAreFreedAfterBackward) {
  Variable x(Tensor::from_vector({1, 2, 3}, {3}), true);
  Variable e = ag::exp(x);  // saves its output
  std::weak_ptr<ag::Node> node = e.grad_fn();
  Variable y = ag::sum(e);
  y.backward();
  ASSERT_FALSE(node.expired());
  EXPECT_TRUE(node.lock()->released);
}

TEST(Autograd, GradcheckCatchesAWrongGradient) {
  // A deliberately wrong backward must be reported, or the checker proves nothing.
  struct WrongNode : ag::Node {
    const char* name() const override { return "wrong"; }
    std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {ops::affine(g[0], 2.0, 0.0)}; }
  };
  auto f = [](const V& v) { return ag::record1(std::make_shared<WrongNode>(), {v[0]}, v[0].value().clone()); };
  ag::GradcheckResult r = ag::gradcheck(f, {r64({4}, 1)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("mismatch"), std::string::npos) << r.message;
  // Leaf gradients accumulate onto what is already there.
  Variable x(r64({3}, 2), true);
  x.mutable_grad() = Tensor::full({3}, 5.0, DType::F64);
  ag::sum(x).backward();
  EXPECT_EQ(x.grad().to_vector_f64(), (std::vector<double>{6, 6, 6}));
}

// Leaf gradients are kept without a copy only when nothing else holds their memory: one gradient sent to
// two leaves (add), a reshape of the caller's seed, and a leaf fed twice must still each own their values.
TEST(Autograd, LeafGradientsNeverAliasEachOtherOrTheSeed) {
  Variable x(Tensor::full({2, 3}, 1.0), true), y(Tensor::full({2, 3}, 2.0), true);
  Variable z = ag::add(x, y);
  Tensor seed = Tensor::full({2, 3}, 1.0);
  z.backward(seed);
  ASSERT_TRUE(x.grad().defined() && y.grad().defined());
  EXPECT_FALSE(x.grad().shares_storage(y.grad()));
  EXPECT_FALSE(x.grad().shares_storage(seed));
  seed.fill_(5.0);
  x.mutable_grad().fill_(3.0);
  EXPECT_EQ(y.grad().to_vector(), std::vector<float>(6, 1.0f));
  Variable w(Tensor::full({6}, 1.0), true);
  Tensor seed2 = Tensor::full({2, 3}, 1.0);
  ag::reshape(w, {2, 3}).backward(seed2);
  EXPECT_FALSE(w.grad().shares_storage(seed2));
  seed2.fill_(9.0);
  EXPECT_EQ(w.grad().to_vector(), std::vector<float>(6, 1.0f));
  // A leaf used twice: the second gradient is added into the first, which the leaf owns.
  Variable u(Tensor::full({4}, 1.0), true);
  ag::sum(ag::add(ag::mul(u, u), u)).backward();
  EXPECT_EQ(u.grad().to_vector(), std::vector<float>(4, 3.0f));  // 2u + 1
}

// ---- summed gradients lent to the nodes (Node::backward_into) ----
namespace {
struct LendGuard {
  bool was = ag::lend_gradient_sums();
  ~LendGuard() { ag::set_lend_gradient_sums(was); }
};
layer_ops::Conv2dGeometry pad1() {
  layer_ops::Conv2dGeometry g;
  g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = 1;
  return g;
}
}  // namespace

// A tensor used by two convolutions: the engine lends the first gradient's buffer to the second convolution,
// which adds its data gradient into it. Values bit-identical to the engine's own add (one addition of the same
// two terms) and to the two data gradients summed by hand.
TEST(Autograd, ConvolutionAddsItsDataGradientIntoTheLentSum) {
  LendGuard guard;
  for (DType dt : {DType::F32, DType::F64}) {
    SCOPED_TRACE(dtype_name(dt));
    Variable x(Tensor::normal({2, 6, 5, 4}, 0, 1, 11).to(dt), true);
    const Tensor w1 = Tensor::normal({3, 3, 3, 4}, 0, 1, 12).to(dt), w2 = Tensor::normal({5, 1, 1, 4}, 0, 1, 13).to(dt);
    const Tensor c1 = Tensor::normal({2, 6, 5, 3}, 0, 1, 14).to(dt), c2 = Tensor::normal({2, 6, 5, 5}, 0, 1, 15).to(dt);
    const layer_ops::Conv2dGeometry g1 = pad1(), g2;
    auto grad_of_x = [&](bool lend) {
      ag::set_lend_gradient_sums(lend);
      x.zero_grad();
      Variable h = ag::affine(x, 2.0, 0.0);  // interior, used by both convolutions
      Variable a = ag::conv2d(h, Variable(w1), g1), b = ag::conv2d(h, Variable(w2), g2);
      ag::add(ag::sum(ag::mul(a, Variable(c1))), ag::sum(ag::mul(b, Variable(c2)))).backward();
      return x.grad().to_vector_f64();
    };
    const std::vector<double> lent = grad_of_x(true);
    const ag::BackwardSums by_node = ag::last_backward_sums();
    EXPECT_EQ(by_node.in_node, 1);
    EXPECT_EQ(by_node.in_place + by_node.new_buffer, 0);
    const std::vector<double> by_engine = grad_of_x(false);
    EXPECT_EQ(ag::last_backward_sums().in_node, 0);
    EXPECT_EQ(ag::last_backward_sums().in_place, 1);  // the engine's add, into its own buffer
    EXPECT_EQ(lent, by_engine);
    const Tensor by_hand = ops::add(layer_ops::conv2d_backward_data(c1, w1, x.shape(), g1),
                                    layer_ops::conv2d_backward_data(c2, w2, x.shape(), g2));
    EXPECT_EQ(lent, ops::affine(by_hand, 2.0, 0.0).to_vector_f64());
  }
}

// y = h + conv(h): add passes ONE tensor to both of its inputs, so h's sum and the convolution's dy are the
// same buffer. It must be neither lent to the convolution (which reads it) nor summed in place.
TEST(Autograd, AGradientHeldTwiceIsNeverLentNorSummedInPlace) {
  LendGuard guard;
  ag::set_lend_gradient_sums(true);
  Variable x(Tensor::normal({1, 4, 5, 3}, 0, 1, 21), true);
  const Tensor w = Tensor::normal({3, 3, 3, 3}, 0, 1, 22), c = Tensor::normal({1, 4, 5, 3}, 0, 1, 23);
  Variable h = ag::affine(x, 1.0, 0.0);
  ag::sum(ag::mul(ag::add(h, ag::conv2d(h, Variable(w), pad1())), Variable(c))).backward();
  const ag::BackwardSums sums = ag::last_backward_sums();
  EXPECT_EQ(sums.in_node, 0);
  EXPECT_EQ(sums.in_place, 0);
  EXPECT_EQ(sums.new_buffer, 1);
  EXPECT_EQ(x.grad().to_vector(), ops::add(c, layer_ops::conv2d_backward_data(c, w, x.shape(), pad1())).to_vector());
  // The caller's seed is never a sum's buffer either.
  Variable h2 = ag::affine(x, 1.0, 0.0);
  Variable y = ag::add(h2, ag::conv2d(h2, Variable(w), pad1()));
  const Tensor seed = Tensor::normal({1, 4, 5, 3}, 0, 1, 24), kept = seed.clone();
  x.zero_grad();
  y.backward(seed);
  EXPECT_EQ(seed.to_vector(), kept.to_vector());
  EXPECT_EQ(x.grad().to_vector(), ops::add(kept, layer_ops::conv2d_backward_data(kept, w, x.shape(), pad1())).to_vector());
}
