// Model-level tests of the networks (nn/models): parameter counts against the reference architectures,
// names and shapes against the PyTorch twins, forward/gradient parity with PyTorch on the fixtures written
// by tests/fixtures/make_model_fixtures.py, and a tiny UNet that overfits a few images on the CPU.
// Parity metric: max |pneumo - torch| / max |torch| over the tensor (scale-free; stated per test).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "nn/models/efficientnet.h"
#include "nn/models/registry.h"
#include "nn/models/senet.h"
#include "nn/models/weights_import.h"
#include "nn/models/unet.h"
#include "tensor/generator.h"
#include "tensor/ops.h"
#include "tests/nn/model_fixture.h"
#include "tests/nn/network_compare.h"
#include "tests/support/checkers.h"

namespace pneumo::nn::models {
namespace {

using test::as_map;
using test::model_fixture_path;
using test::read_f32_safetensors;
using test::run_network;

double normalized_error(const Tensor& actual, const Tensor& reference) {
  EXPECT_EQ(shape_str(actual.shape()), shape_str(reference.shape()));
  return test::max_normalized_error(actual, reference);
}

// ---------------------------------------------------------------------------------------------- counts
TEST(ModelParameters, ImageNetEncodersMatchTimmCounts) {
  // The reference architectures' counts with the 1000-class head (timm, = Cadene/efficientnet-pytorch).
  const std::pair<const char*, int64_t> expected[] = {{"seresnext50_32x4d", 27559896},
                                                      {"seresnext101_32x4d", 48955416},
                                                      {"tf_efficientnet_b3", 12233232},
                                                      {"tf_efficientnet_b5", 30389784}};
  for (const auto& e : expected) EXPECT_EQ(create_model(e.first)->parameter_count(), e.second) << e.first;
}

TEST(ModelParameters, SegmentationNetworksMatchPyTorchTwins) {
  // Counts printed by tests/fixtures/make_model_fixtures.py for its plain-PyTorch networks.
  const std::pair<const char*, int64_t> expected[] = {
      {"unet_se50", 38722242}, {"unet_se101", 60117762}, {"unet_ef3", 15808505}, {"unet_ef5", 34747905},
      {"deeplab_se50", 42349296}, {"cls_se50", 38722242}, {"cls_ef3", 18170874}, {"tiny_unet_se", 108739},
      {"tiny_unet_ef", 182929}, {"tiny_deeplab_se", 113737}, {"tiny_cls_ef", 248978}};
  for (const auto& e : expected) EXPECT_EQ(create_model(e.first)->parameter_count(), e.second) << e.first;
}

TEST(ModelParameters, TimmNamesAndKrscShapes) {
  auto m = create_model("tiny_unet_se");
  std::map<std::string, Shape> shapes;
  for (auto& kv : m->named_parameters()) shapes[kv.first] = kv.second.shape();
  // SE-ResNeXt (timm): se.fc1 is a 1x1 conv with bias, KRSC [reduced, 1, 1, C].
  EXPECT_EQ(shape_str(shapes.at("encoder.layer1.0.se.fc1.weight")), shape_str({1, 1, 1, 16}));
  EXPECT_EQ(shape_str(shapes.at("encoder.layer1.0.se.fc2.bias")), shape_str({16}));
  EXPECT_EQ(shape_str(shapes.at("encoder.layer2.0.downsample.0.weight")), shape_str({32, 1, 1, 16}));
  EXPECT_EQ(shape_str(shapes.at("encoder.layer2.0.conv2.weight")), shape_str({16, 3, 3, 4}));  // groups 4
  EXPECT_EQ(shape_str(shapes.at("decoder.layer1.block.0.block.0.weight")), shape_str({16, 3, 3, 128 + 64}));
  EXPECT_EQ(shape_str(shapes.at("cls_head.fc1.weight")), shape_str({128, 128}));

  auto b3 = create_model("tf_efficientnet_b3");
  std::set<std::string> names;
  for (auto& kv : b3->named_parameters()) names.insert(kv.first);
  for (const char* n : {"conv_stem.weight", "bn1.weight", "blocks.0.0.conv_dw.weight", "blocks.0.0.se.conv_reduce.bias",
                        "blocks.0.0.conv_pw.weight", "blocks.0.1.bn2.bias", "blocks.1.0.conv_pw.weight",
                        "blocks.1.0.conv_dw.weight", "blocks.1.0.se.conv_expand.weight", "blocks.1.0.conv_pwl.weight",
                        "blocks.1.0.bn3.weight", "blocks.6.1.conv_pwl.weight", "conv_head.weight", "bn2.bias",
                        "classifier.weight"})
    EXPECT_TRUE(names.count(n)) << n;
}

TEST(ModelParameters, EveryTinyModelMatchesItsPyTorchTwinByName) {
  for (const char* name : {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se"}) {
    auto m = create_model(name);
    auto file = read_f32_safetensors(model_fixture_path(std::string(name) + ".weights.safetensors"));
    ImportReport r = import_pytorch_tensors(*m, file, /*apply=*/false);
    EXPECT_TRUE(r.complete()) << name << ": " << r.summary();
    EXPECT_TRUE(r.unused.empty()) << name << ": " << r.summary();
    EXPECT_EQ(r.matched.size(), file.size()) << name;
  }
}

// ---------------------------------------------------------------------------------------------- encoders
TEST(EfficientNet, ReferenceFeatureBlockIndicesAndChannels) {
  EfficientNet b3(EfficientNetConfig{1.2, 1.4, 0.2, 0});
  EfficientNet b5(EfficientNetConfig{1.6, 2.2, 0.2, 0});
  EXPECT_EQ(b3.num_blocks(), 26);
  EXPECT_EQ(b5.num_blocks(), 39);
  EXPECT_EQ(b3.feature_block_indices(), (std::vector<int64_t>{1, 4, 7, 17}));
  EXPECT_EQ(b5.feature_block_indices(), (std::vector<int64_t>{2, 7, 12, 26}));
  EXPECT_EQ(b3.out_channels(), (std::vector<int64_t>{1536, 136, 48, 32, 24}));
  EXPECT_EQ(b5.out_channels(), (std::vector<int64_t>{2048, 176, 64, 40, 24}));
  // efficientnet-pytorch: drop_connect_rate * idx / len(blocks), applied on skip blocks only.
  for (int64_t i = 0; i < b3.num_blocks(); ++i)
    EXPECT_DOUBLE_EQ(b3.block(i).drop_connect_rate(), 0.2 * static_cast<double>(i) / 26.0) << i;
  EXPECT_FALSE(b3.block(0).has_skip());  // 40 -> 24
  EXPECT_TRUE(b3.block(1).has_skip());
  EXPECT_FALSE(b3.block(2).has_skip());  // stride 2
}

TEST(SEResNeXt, FeatureShapesAndCeilModePool) {
  auto enc = std::make_shared<SEResNeXt>(SEResNeXtConfig{});
  EXPECT_EQ(enc->out_channels(), (std::vector<int64_t>{2048, 1024, 512, 256, 64}));
  // Tiny encoder: input 70 -> conv 35 -> ceil-mode pool ceil((35-3)/2)+1 = 17 (floor mode would give 17 too
  // at 35; 66 -> 33 -> 16 both) so use 68: conv 34 -> ceil(31/2)+1 = 17 vs floor 16.
  SEResNeXtConfig c;
  c.layers = {1, 1, 1, 1};
  c.stem = 8;
  c.planes = {4, 8, 16, 32};
  c.groups = 4;
  c.base_width = 32;
  SEResNeXt tiny(c);
  tiny.eval();
  ag::NoGradGuard ng;
  auto f = tiny.features(Variable(Tensor::normal({1, 68, 68, 3}, 0, 1, 7)));
  EXPECT_EQ(shape_str(f[4].shape()), shape_str({1, 34, 34, 8}));
  EXPECT_EQ(shape_str(f[3].shape()), shape_str({1, 17, 17, 16}));
  EXPECT_EQ(shape_str(f[0].shape()), shape_str({1, 3, 3, 128}));
}

TEST(Models, BadInputIsAClearError) {
  auto m = create_model("tiny_unet_se");
  ag::NoGradGuard ng;
  EXPECT_THROW(m->run(Variable(Tensor::zeros({1, 64, 64, 1}))), Error);  // one channel
  EXPECT_THROW(m->run(Variable(Tensor::zeros({1, 48, 48, 3}))), Error);  // not a multiple of 32
  EXPECT_THROW(create_model("unet_resnet34"), Error);
}

TEST(Models, DescribeModelPrintsCountAndStages) {
  std::string d = describe_model("tiny_unet_ef");
  EXPECT_NE(d.find("182,929"), std::string::npos) << d;
  EXPECT_NE(d.find("blocks.4"), std::string::npos) << d;
  EXPECT_NE(d.find("decoder.layer5"), std::string::npos) << d;
}

// ---------------------------------------------------------------------------------------------- parity
struct ParityTolerance {
  double forward, grad;
};

void check_tiny_parity(const std::string& name, ParityTolerance tol) {
  ModelOptions opt;
  opt.drop_connect_rate = 0.0;  // random; the fixture runs without it
  auto m = create_model(name, opt);
  auto weights = read_f32_safetensors(model_fixture_path(name + ".weights.safetensors"));
  ImportReport r = import_pytorch_tensors(*m, weights, /*apply=*/true);
  ASSERT_TRUE(r.complete()) << r.summary();
  auto io = as_map(read_f32_safetensors(model_fixture_path(name + ".io.safetensors")));
  std::map<std::string, Variable> params;
  for (auto& kv : m->named_parameters()) params[kv.first] = kv.second;
  std::vector<std::string> modes{"eval", "train"};
  if (io.count("train_dc.seg")) modes.push_back("train_dc");  // EfficientNet: drop-connect on, Philox masks
  for (const std::string& mode : modes) {
    SCOPED_TRACE(name + " " + mode);
    m->train(mode != "eval");
    m->zero_grad();
    auto* unet = dynamic_cast<Unet*>(m.get());
    if (unet) unet->encoder().set_drop_connect_rate(mode == "train_dc" ? 0.2 : 0.0);
    default_generator().manual_seed(1234);  // the fixture's DROP_CONNECT_SEED, offsets from 0
    Variable x(io.at("input").clone(), /*requires_grad=*/true);
    NetworkOutput out = m->run(x);
    const double e_seg = normalized_error(out.seg.value(), io.at(mode + ".seg"));
    EXPECT_LE(e_seg, tol.forward) << "seg";
    Variable loss = ag::sum(ag::mul(out.seg, Variable(io.at(mode + ".seg_proj"))));
    if (io.count(mode + ".cls")) {
      ASSERT_TRUE(out.cls.defined());
      EXPECT_LE(normalized_error(out.cls.value(), io.at(mode + ".cls")), tol.forward) << "cls";
      loss = ag::add(loss, ag::sum(ag::mul(out.cls, Variable(io.at(mode + ".cls_proj")))));
    }
    loss.backward();
    const double e_input = normalized_error(x.grad(), io.at(mode + ".input_grad"));
    EXPECT_LE(e_input, tol.grad) << "input grad";
    const std::string gp = mode + ".grad.";
    int checked = 0;
    double e_params = 0;
    for (auto& kv : io) {
      if (kv.first.rfind(gp, 0) != 0) continue;
      const std::string pname = kv.first.substr(gp.size());
      ASSERT_TRUE(params.count(pname)) << pname;
      const double e = normalized_error(params[pname].grad(), pytorch_to_engine_layout(kv.second));
      EXPECT_LE(e, tol.grad) << pname;
      e_params = std::max(e_params, e);
      ++checked;
    }
    std::printf("%s %s: seg %.1e, input grad %.1e, %d param grads max %.1e\n", name.c_str(), mode.c_str(), e_seg,
                e_input, checked, e_params);
    EXPECT_GE(checked, 3);
    if (unet) unet->encoder().set_drop_connect_rate(0.0);
    if (mode == "train") {  // running statistics after one training forward (momentum, unbiased variance)
      auto state = as_map(m->state_dict());
      int stats = 0;
      for (auto& kv : io) {
        if (kv.first.rfind("train.after.", 0) != 0) continue;
        const std::string bname = kv.first.substr(12);
        EXPECT_LE(normalized_error(state.at(bname), kv.second), tol.forward) << bname;
        ++stats;
      }
      EXPECT_GE(stats, 2);
    }
  }
}

// float32 on both sides; differences come from summation order only.
TEST(ModelParity, TinyUnetSEResNeXtMatchesPyTorch) { check_tiny_parity("tiny_unet_se", {1e-4, 1e-4}); }
TEST(ModelParity, TinyUnetEfficientNetMatchesPyTorch) { check_tiny_parity("tiny_unet_ef", {1e-4, 1e-4}); }
TEST(ModelParity, TinyDeepLabMatchesPyTorch) { check_tiny_parity("tiny_deeplab_se", {1e-4, 1e-4}); }

void check_full_forward(const std::string& name, double tol) {
  auto m = create_model(name);
  set_formula_weights(*m);
  m->eval();
  auto io = as_map(read_f32_safetensors(model_fixture_path(name + ".full_forward.safetensors")));
  ag::NoGradGuard ng;
  NetworkOutput out = m->run(Variable(io.at("input")));
  const double e = normalized_error(out.seg.value(), io.at("eval.seg"));
  std::printf("%s full-size eval forward 64x64: seg %.1e\n", name.c_str(), e);
  EXPECT_LE(e, tol) << name << " seg";
  if (io.count("eval.cls")) {
    EXPECT_LE(normalized_error(out.cls.value(), io.at("eval.cls")), tol) << name << " cls";
  }
}

// Full-size networks, formula weights (registry.h), 64x64, batch 1, eval mode.
TEST(ModelParityFull, UnetSE50Forward) { check_full_forward("unet_se50", 1e-4); }
TEST(ModelParityFull, UnetSE101Forward) { check_full_forward("unet_se101", 1e-4); }
TEST(ModelParityFull, UnetB3Forward) { check_full_forward("unet_ef3", 1e-4); }
TEST(ModelParityFull, UnetB5Forward) { check_full_forward("unet_ef5", 1e-4); }
TEST(ModelParityFull, DeepLabSE50Forward) { check_full_forward("deeplab_se50", 1e-4); }

// ---------------------------------------------------------------------------------------------- import
TEST(WeightsImport, BareEncoderFileGetsPrefixAndReportsHeadAndMisfits) {
  auto m = create_model("tiny_unet_se");
  std::vector<std::pair<std::string, Tensor>> file;
  for (auto& kv : read_f32_safetensors(model_fixture_path("tiny_unet_se.weights.safetensors")))
    if (kv.first.rfind("encoder.", 0) == 0) file.emplace_back(kv.first.substr(8), kv.second);
  file.emplace_back("fc.weight", Tensor::zeros({1000, 128}));
  for (auto& kv : file)
    if (kv.first == "layer1.0.conv1.weight") kv.second = Tensor::zeros({3, 3, 1, 1});
  ImportReport r = import_pytorch_tensors(*m, file, false);
  EXPECT_EQ(r.prefix, "encoder.");
  EXPECT_EQ(r.unused, std::vector<std::string>{"fc.weight"});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].first, "encoder.layer1.0.conv1.weight");
  EXPECT_FALSE(r.complete());
  EXPECT_TRUE(r.missing.empty()) << r.summary();  // the misfit is reported as not fitting, not as missing
  EXPECT_FALSE(r.fresh.empty());
  for (const auto& name : r.fresh) EXPECT_NE(name.rfind("encoder.", 0), 0u) << name;
  // Without the misfit the encoder is complete.
  file.erase(std::remove_if(file.begin(), file.end(), [](auto& kv) { return kv.first == "layer1.0.conv1.weight"; }),
             file.end());
  ImportReport r2 = import_pytorch_tensors(*m, file, false);
  ASSERT_EQ(r2.missing.size(), 1u);
  EXPECT_EQ(r2.missing[0], "encoder.layer1.0.conv1.weight");
}

TEST(WeightsImport, KcrsIsPermutedToKrsc) {
  Tensor pt = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {1, 3, 2, 2});  // K=1, C=3, R=S=2
  Tensor e = pytorch_to_engine_layout(pt);
  EXPECT_EQ(shape_str(e.shape()), shape_str({1, 2, 2, 3}));
  EXPECT_EQ(e.to_vector(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
}

// ---------------------------------------------------------------------------------------------- precision
// The CPU oracle's float32 against its own float64, same weights, at 64x64 batch 2: the float32 arithmetic
// of every layer forward and backward must lose no more than float32 has to. Eval bounds from
// bench/model_precision_torch.py (PyTorch float32 vs float64 on the same twins: outputs <= 1.1e-6, input
// gradients <= 7e-5 and parameter-gradient L2 <= 6e-5 over 40 cases, the outliers being ReLU kinks that
// flip); a layer that accumulated in a narrower type, or dropped a term, shows as 1e-3 or more. Train mode
// normalises the deepest stages over 8 values per channel, which amplifies rounding (this oracle: outputs
// up to 1e-5, gradients up to 2e-3 on some draws; PyTorch up to 4e-2 on the full SE-ResNeXt UNets), so its
// bounds only catch a wrong batch-statistics backward, which is O(1).
void check_float32_against_float64(const std::string& name, bool train) {
  SCOPED_TRACE(name + (train ? " train" : " eval"));
  ModelOptions opt;
  opt.drop_connect_rate = 0.0;
  auto f32 = create_model(name, opt);
  auto f64 = test::copy_of(*f32, name, opt);
  f64->to(DType::F64);
  auto draw = [&] {
    Tensor input = Tensor::normal({2, 64, 64, 3}, 0, 1, test::fresh_seed());
    Tensor proj = test::projection_for(*f32, input, test::fresh_seed());
    f32->train(train);
    f64->train(train);
    test::NetworkErrors e = test::compare_runs(run_network(*f32, input, proj, Device::cpu(), DType::F32),
                                               run_network(*f64, input, proj, Device::cpu(), DType::F64));
    test::print_errors(name + (train ? " f32/f64 train" : " f32/f64 eval"), e);
    return e;
  };
  const test::ErrorBounds bounds = train ? test::ErrorBounds{1e-4, 5e-2, 5e-2} : test::ErrorBounds{2e-5, 1e-3, 1e-3};
  test::NetworkErrors e = test::better_of_two_draws(draw, bounds);
  ASSERT_TRUE(e.names_match);
  EXPECT_LE(std::max(e.seg, e.cls), bounds.forward);
  EXPECT_LE(e.input_grad, bounds.input_grad);
  EXPECT_LE(e.grads_l2, bounds.grads_l2);
}

TEST(ModelPrecision, CpuFloat32AgainstFloat64) {
  for (const char* n : {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef"})
    for (bool train : {false, true}) check_float32_against_float64(n, train);
}

// Gradients meeting at a tensor used more than once (residual junctions, UNet skips, the ASPP branches, the
// EfficientNet residual adds): summed by the convolutions into the sums autograd lends them, or by the
// engine. float32 on the CPU: bit-identical gradients (each sum is the same addition of the same terms in
// the same order), and in each network the convolutions did sum.
TEST(ModelGradients, SumsLentToTheConvolutionsGiveTheEngineSumsBitForBit) {
  const bool was = ag::lend_gradient_sums();
  for (const char* name : {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se"}) {
    SCOPED_TRACE(name);
    ModelOptions opt;
    opt.drop_connect_rate = 0.0;
    auto m = create_model(name, opt);
    const Tensor input = Tensor::normal({2, 64, 64, 3}, 0, 1, 51);
    const Tensor proj = test::projection_for(*m, input, 52);
    m->train();
    ag::set_lend_gradient_sums(false);
    const test::NetworkRun by_engine = test::run_network(*m, input, proj, Device::cpu(), DType::F32);
    const ag::BackwardSums engine_sums = ag::last_backward_sums();
    ag::set_lend_gradient_sums(true);
    const test::NetworkRun lent = test::run_network(*m, input, proj, Device::cpu(), DType::F32);
    const ag::BackwardSums lent_sums = ag::last_backward_sums();
    std::printf("%s: sums by the engine (in place / new buffer) %lld / %lld; lent: in the convolution %lld, "
                "engine %lld / %lld\n",
                name, static_cast<long long>(engine_sums.in_place), static_cast<long long>(engine_sums.new_buffer),
                static_cast<long long>(lent_sums.in_node), static_cast<long long>(lent_sums.in_place),
                static_cast<long long>(lent_sums.new_buffer));
    EXPECT_EQ(engine_sums.in_node, 0);
    EXPECT_GT(lent_sums.in_node, 0);
    EXPECT_EQ(lent_sums.in_node + lent_sums.in_place + lent_sums.new_buffer,
              engine_sums.in_place + engine_sums.new_buffer);  // the same sums, made elsewhere
    EXPECT_EQ(lent.input_grad.to_vector_f64(), by_engine.input_grad.to_vector_f64());
    ASSERT_EQ(lent.grads.size(), by_engine.grads.size());
    for (size_t i = 0; i < lent.grads.size(); ++i)
      EXPECT_EQ(lent.grads[i].second.to_vector_f64(), by_engine.grads[i].second.to_vector_f64()) << lent.grads[i].first;
  }
  ag::set_lend_gradient_sums(was);
}

// ---------------------------------------------------------------------------------------------- training
// BCE with logits, mean: max(x, 0) - x t + log(1 + exp(-|x|)).
Variable bce_with_logits(const Variable& x, const Variable& t) {
  Variable soft = ag::log(ag::affine(ag::exp(ag::neg(ag::abs(x))), 1.0, 1.0));
  return ag::mean(ag::add(ag::sub(ag::relu(x), ag::mul(x, t)), soft));
}

TEST(ModelTraining, TinyUnetOverfitsAFewImages) {
  default_generator().manual_seed(1992);
  auto m = create_model("tiny_unet_se");
  m->train();
  // Four 32x32 images, each a bright disc at its own place on noise; the mask is the disc.
  const int64_t n = 4, s = 32;
  std::vector<float> img(n * s * s * 3), mask(n * s * s);
  Tensor noise = Tensor::normal({n, s, s, 3}, 0, 0.3f, 5);
  std::vector<float> nz = noise.to_vector();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < s; ++y)
      for (int64_t x = 0; x < s; ++x) {
        const double cy = 8 + 5 * b, cx = 24 - 4 * b;
        const bool in = (y - cy) * (y - cy) + (x - cx) * (x - cx) < 36;
        mask[(b * s + y) * s + x] = in ? 1.f : 0.f;
        for (int c = 0; c < 3; ++c) img[((b * s + y) * s + x) * 3 + c] = (in ? 1.5f : 0.f) + nz[((b * s + y) * s + x) * 3 + c];
      }
  Variable input(Tensor::from_vector(img, {n, s, s, 3}));
  Variable target(Tensor::from_vector(mask, {n, s, s, 1}));
  // Adam (lr 3e-3), written out here so the test needs nothing from train/.
  std::vector<Variable> params = m->parameters();
  std::vector<Tensor> m1, m2;
  for (auto& p : params) {
    m1.push_back(Tensor::zeros(p.shape()));
    m2.push_back(Tensor::zeros(p.shape()));
  }
  double first = 0, last = 0;
  const int steps = 60;
  for (int step = 1; step <= steps; ++step) {
    m->zero_grad();
    Variable loss = bce_with_logits(m->run(input).seg, target);
    loss.backward();
    if (step == 1) first = loss.value().item();
    last = loss.value().item();
    const double lr = 3e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) continue;
      std::vector<float> g = params[i].grad().to_vector(), a = m1[i].to_vector(), v = m2[i].to_vector(),
                         w = params[i].value().to_vector();
      for (size_t k = 0; k < g.size(); ++k) {
        a[k] = static_cast<float>(b1 * a[k] + (1 - b1) * g[k]);
        v[k] = static_cast<float>(b2 * v[k] + (1 - b2) * g[k] * g[k]);
        const double ah = a[k] / (1 - std::pow(b1, step)), vh = v[k] / (1 - std::pow(b2, step));
        w[k] = static_cast<float>(w[k] - lr * ah / (std::sqrt(vh) + eps));
      }
      m1[i] = Tensor::from_vector(a, params[i].shape());
      m2[i] = Tensor::from_vector(v, params[i].shape());
      params[i].mutable_value().copy_from(Tensor::from_vector(w, params[i].shape()));
    }
  }
  std::printf("tiny_unet_se overfit: BCE %.4f -> %.4f after %d Adam steps (factor %.1f)\n", first, last, steps,
              first / last);
  EXPECT_LT(last, first / 5) << "loss should fall at least 5x";
}

}  // namespace
}  // namespace pneumo::nn::models
