// The host-only pieces of the cuDNN graph-API convolution path (kernels/cuda/conv_graph_policy.h): option
// parsing, the engine switch, the plan-cache key, the NHWC/KRSC layouts handed to cuDNN, the engine filter by
// notes and the on-disk cache format. The GPU half is tests/kernels/conv_graph_gpu_test.cpp.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "kernels/check.h"
#include "kernels/cuda/conv_graph_policy.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/conv_graph.h"
#endif

namespace pneumo::kernels::cuda {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(ConvGraphOptions, DefaultsAreLegacyDeterministicOneGiB) {
  const ConvGraphOptions o = parse_conv_graph_options(env_of({}));
  EXPECT_EQ(o.engine, ConvEngine::Legacy);
  EXPECT_FALSE(o.allow_nondeterministic);
  EXPECT_TRUE(o.allow_transform);
  EXPECT_EQ(o.workspace_limit, int64_t{1} << 30);
  EXPECT_EQ(o.autotune_top_k, 4);
  EXPECT_TRUE(o.cache_file.empty());
  EXPECT_FALSE(o.log);
}

TEST(ConvGraphOptions, ParsesEveryVariable) {
  const ConvGraphOptions o = parse_conv_graph_options(env_of({{"PNEUMO_CONV_ENGINE", "graph"},
                                                              {"PNEUMO_CONV_NONDETERMINISTIC", "1"},
                                                              {"PNEUMO_CONV_WORKSPACE_MB", "2048"},
                                                              {"PNEUMO_CONV_AUTOTUNE", "1"},
                                                              {"PNEUMO_CONV_PLAN_CACHE", "/tmp/plans.txt"},
                                                              {"PNEUMO_CUDNN_ALGOS", "no-transform"},
                                                              {"PNEUMO_CUDNN_LOG", "1"}}));
  EXPECT_EQ(o.engine, ConvEngine::Graph);
  EXPECT_TRUE(o.allow_nondeterministic);
  EXPECT_EQ(o.workspace_limit, int64_t{2048} << 20);
  EXPECT_EQ(o.autotune_top_k, 1);
  EXPECT_EQ(o.cache_file, "/tmp/plans.txt");
  EXPECT_FALSE(o.allow_transform);
  EXPECT_TRUE(o.log);
  EXPECT_EQ(parse_conv_graph_options(env_of({{"PNEUMO_CONV_ENGINE", "legacy"}})).engine, ConvEngine::Legacy);
  EXPECT_EQ(parse_conv_graph_options(env_of({{"PNEUMO_CONV_ENGINE", ""}})).engine, ConvEngine::Legacy);
}

TEST(ConvGraphOptions, BadValuesNameTheVariable) {
  const std::pair<const char*, const char*> bad[] = {
      {"PNEUMO_CONV_ENGINE", "cudnn"},          {"PNEUMO_CONV_NONDETERMINISTIC", "yes"},
      {"PNEUMO_CONV_WORKSPACE_MB", "-1"},       {"PNEUMO_CONV_WORKSPACE_MB", "1g"},
      {"PNEUMO_CONV_WORKSPACE_MB", "99999999"}, {"PNEUMO_CONV_AUTOTUNE", "0"},
      {"PNEUMO_CUDNN_ALGOS", "fft-only"}};
  for (const auto& b : bad) {
    SCOPED_TRACE(std::string(b.first) + "=" + b.second);
    try {
      parse_conv_graph_options(env_of({{b.first, b.second}}));
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(b.first), std::string::npos) << m;
      EXPECT_NE(m.find(b.second), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

TEST(ConvGraphOptions, OverrideWinsUntilCleared) {
  set_conv_engine(ConvEngine::Graph);
  EXPECT_EQ(conv_engine(), ConvEngine::Graph);
  set_conv_engine(ConvEngine::Legacy);
  EXPECT_EQ(conv_engine(), ConvEngine::Legacy);
  clear_conv_engine_override();
  EXPECT_EQ(conv_engine(), conv_graph_options().engine);
}

ConvShape base_shape() {
  ConvShape cs;
  cs.n = 4, cs.h = 64, cs.w = 48, cs.c = 256, cs.k = 128, cs.r = 3, cs.s = 3, cs.oh = 64, cs.ow = 48;
  cs.pad_top = cs.pad_bottom = cs.pad_left = cs.pad_right = 1;
  cs.groups = 32;
  return cs;
}

TEST(ConvPlanKey, EveryFieldSeparatesKeys) {
  const ConvShape b = base_shape();
  std::vector<ConvPlanKey> keys{make_conv_plan_key(0, DType::BF16, ConvDirection::Forward, b, 16, false)};
  keys.push_back(make_conv_plan_key(1, DType::BF16, ConvDirection::Forward, b, 16, false));
  keys.push_back(make_conv_plan_key(0, DType::F32, ConvDirection::Forward, b, 16, false));
  keys.push_back(make_conv_plan_key(0, DType::BF16, ConvDirection::BackwardData, b, 16, false));
  keys.push_back(make_conv_plan_key(0, DType::BF16, ConvDirection::BackwardWeight, b, 16, false));
  keys.push_back(make_conv_plan_key(0, DType::BF16, ConvDirection::Forward, b, 8, false));
  keys.push_back(make_conv_plan_key(0, DType::BF16, ConvDirection::Forward, b, 16, true));
  int64_t ConvShape::*fields[] = {&ConvShape::n,          &ConvShape::h,          &ConvShape::w,
                                  &ConvShape::c,          &ConvShape::k,          &ConvShape::r,
                                  &ConvShape::s,          &ConvShape::stride_h,   &ConvShape::stride_w,
                                  &ConvShape::pad_top,    &ConvShape::pad_bottom, &ConvShape::pad_left,
                                  &ConvShape::pad_right,  &ConvShape::dilation_h, &ConvShape::dilation_w,
                                  &ConvShape::groups};
  for (auto f : fields) {
    ConvShape v = b;
    v.*f += 1;
    keys.push_back(make_conv_plan_key(0, DType::BF16, ConvDirection::Forward, v, 16, false));
  }
  std::set<ConvPlanKey> distinct(keys.begin(), keys.end());
  std::set<std::string> names;
  for (const auto& k : keys) names.insert(k.str());
  EXPECT_EQ(distinct.size(), keys.size());
  EXPECT_EQ(names.size(), keys.size());  // the disk cache keys by str(): it must separate them too
  EXPECT_EQ(keys[0], make_conv_plan_key(0, DType::BF16, ConvDirection::Forward, b, 16, false));
}

TEST(ConvPlanKey, ReadableName) {
  ConvShape cs = base_shape();
  cs.stride_h = cs.stride_w = 2;
  cs.dilation_h = cs.dilation_w = 6;
  EXPECT_EQ(make_conv_plan_key(0, DType::BF16, ConvDirection::BackwardData, cs, 16, false).str(),
            "dev0 bfloat16 dgrad x4x64x48x256 w128x3x3x8 pad1,1,1,1 stride2,2 dil6,6 g32 align16 det");
}

TEST(ConvGraphLayout, AlignmentIsTheLargestCommonPowerOfTwo) {
  auto p = [](uintptr_t a) { return reinterpret_cast<const void*>(a); };
  EXPECT_EQ(common_alignment({p(0x1000), p(0x2010)}), 16);
  EXPECT_EQ(common_alignment({p(0x1000), p(0x2008)}), 8);
  EXPECT_EQ(common_alignment({p(0x1004), p(0x2000)}), 4);
  EXPECT_EQ(common_alignment({p(0x1002)}), 2);
  EXPECT_EQ(common_alignment({p(0x1001)}), 1);
}

// The strides must address exactly the NHWC / KRSC element offsets the rest of pneumo uses.
TEST(ConvGraphLayout, StridesAddressNhwcAndKrsc) {
  ConvShape cs = base_shape();
  cs.oh = 31, cs.ow = 23;  // any output size: the layout only reads it
  const GraphTensorLayout x = graph_x_layout(cs), w = graph_w_layout(cs), y = graph_y_layout(cs);
  EXPECT_EQ(x.dims, (std::array<int64_t, 4>{4, 256, 64, 48}));
  EXPECT_EQ(w.dims, (std::array<int64_t, 4>{128, 8, 3, 3}));  // C/groups: cuDNN infers 32 groups
  EXPECT_EQ(y.dims, (std::array<int64_t, 4>{4, 128, 31, 23}));
  auto offset = [](const GraphTensorLayout& l, int64_t a, int64_t b, int64_t c, int64_t d) {
    return a * l.strides[0] + b * l.strides[1] + c * l.strides[2] + d * l.strides[3];
  };
  for (int64_t n : {0, 3})
    for (int64_t c : {0, 5, 255})
      for (int64_t h : {0, 63})
        for (int64_t ww : {0, 47}) EXPECT_EQ(offset(x, n, c, h, ww), ((n * 64 + h) * 48 + ww) * 256 + c);
  for (int64_t k : {0, 127})
    for (int64_t c : {0, 7})
      for (int64_t r : {0, 2})
        for (int64_t s : {0, 2}) EXPECT_EQ(offset(w, k, c, r, s), ((k * 3 + r) * 3 + s) * 8 + c);
  EXPECT_EQ(offset(y, 3, 127, 30, 22), ((3 * 31 + 30) * 23 + 22) * 128 + 127);
}

TEST(ConvGraphEngineFilter, NotesDecide) {
  ConvGraphOptions o;
  EngineNotes plain;
  EXPECT_EQ(engine_rejection(plain, DType::F32, o), nullptr);
  EXPECT_EQ(engine_rejection(plain, DType::BF16, o), nullptr);

  EngineNotes tc;
  tc.tensor_core = true;
  EXPECT_EQ(engine_rejection(tc, DType::BF16, o), nullptr);  // bf16 on tensor cores: float32 accumulation
  EXPECT_NE(engine_rejection(tc, DType::F32, o), nullptr);   // float32 on tensor cores is TF32

  EngineNotes nd;
  nd.nondeterministic = true;
  EXPECT_NE(engine_rejection(nd, DType::BF16, o), nullptr);
  ConvGraphOptions allow = o;
  allow.allow_nondeterministic = true;
  EXPECT_EQ(engine_rejection(nd, DType::BF16, allow), nullptr);

  EngineNotes red;
  red.reduced_precision_reduction = true;
  EXPECT_NE(engine_rejection(red, DType::BF16, allow), nullptr);
  EngineNotes down;
  down.down_convert_inputs = true;
  EXPECT_NE(engine_rejection(down, DType::BF16, allow), nullptr);

  EngineNotes wino;
  wino.winograd = true;
  EngineNotes fft;
  fft.fft = true;
  EXPECT_EQ(engine_rejection(wino, DType::BF16, o), nullptr);
  ConvGraphOptions no_transform = o;
  no_transform.allow_transform = false;
  EXPECT_NE(engine_rejection(wino, DType::BF16, no_transform), nullptr);
  EXPECT_NE(engine_rejection(fft, DType::F32, no_transform), nullptr);

  EngineNotes rtc;
  rtc.runtime_compilation = true;
  EXPECT_NE(engine_rejection(rtc, DType::BF16, allow), nullptr);
}

TEST(ConvGraphPlanCache, TagAndFileRoundTrip) {
  EXPECT_EQ(engine_tag(12, {{2, 1}, {3, 0}}), "eng12_k2=1_k3=0");
  EXPECT_EQ(engine_tag(0, {}), "eng0");
  const std::string header = "pneumo-conv-plan-cache v1 cudnn 91900 NVIDIA H100 sm90";
  std::map<std::string, std::string> entries{
      {"dev0 bfloat16 fwd x4x1024x1024x16 w16x3x3x16 pad1,1,1,1 stride1,1 dil1,1 g1 align16 det", "eng3_k2=4"},
      {"dev0 float32 wgrad x2x64x64x128 w128x3x3x4 pad1,1,1,1 stride1,1 dil1,1 g32 align16 det", "eng0"}};
  const std::string text = format_plan_cache(header, entries);
  std::map<std::string, std::string> back;
  std::string why;
  ASSERT_TRUE(parse_plan_cache(text, header, &back, &why)) << why;
  EXPECT_EQ(back, entries);

  EXPECT_FALSE(parse_plan_cache(text, header + " other", &back, &why));  // another cuDNN or device
  EXPECT_TRUE(back.empty());
  EXPECT_NE(why.find("header"), std::string::npos) << why;
  EXPECT_FALSE(parse_plan_cache(text + "no tab here\n", header, &back, &why));
  EXPECT_TRUE(back.empty());
  EXPECT_NE(why.find("line 4"), std::string::npos) << why;
  EXPECT_FALSE(parse_plan_cache(header + "\nkey\tnot-a-tag\n", header, &back, &why));
  EXPECT_FALSE(parse_plan_cache("", header, &back, &why));
}

#if PNEUMO_WITH_CUDA
// cuDNN builds and finalizes the tensor, convolution and operation descriptors without a GPU, checking each
// attribute and that the output size follows from the geometry: every geometry the networks use, in every
// direction and dtype, must pass; a wrong output size or dtype must not.
ConvShape shape_of(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k, int64_t kernel, int64_t stride,
                   int64_t dilation, int64_t groups, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  ConvShape cs;
  cs.n = n, cs.h = h, cs.w = w, cs.c = c, cs.k = k, cs.r = kernel, cs.s = kernel;
  cs.stride_h = cs.stride_w = stride;
  cs.dilation_h = cs.dilation_w = dilation;
  cs.groups = groups;
  cs.pad_top = pt, cs.pad_bottom = pb, cs.pad_left = pl, cs.pad_right = pr;
  const int64_t span = (kernel - 1) * dilation + 1;
  cs.oh = (h + pt + pb - span) / stride + 1;
  cs.ow = (w + pl + pr - span) / stride + 1;
  return cs;
}

TEST(ConvGraphDescriptors, FinalizeWithoutAGpu) {
  const ConvShape shapes[] = {
      shape_of(2, 32, 32, 128, 128, 3, 1, 1, 32, 1, 1, 1, 1),      // SE-ResNeXt grouped 3x3
      shape_of(2, 32, 32, 256, 256, 3, 2, 1, 32, 1, 1, 1, 1),      // grouped, stride 2
      shape_of(2, 24, 24, 64, 32, 3, 1, 18, 1, 18, 18, 18, 18),    // ASPP dilation 18
      shape_of(2, 37, 29, 3, 16, 7, 2, 1, 1, 3, 3, 3, 3),          // stem, odd sizes
      shape_of(2, 31, 33, 64, 128, 1, 2, 1, 1, 0, 0, 0, 0),        // 1x1 stride 2, odd
      shape_of(4, 1024, 1024, 16, 1, 1, 1, 1, 1, 0, 0, 0, 0),      // final 1x1, K = 1
      shape_of(2, 32, 32, 48, 48, 5, 2, 1, 48, 1, 2, 1, 2),        // depthwise, TF "same" (asymmetric)
  };
  for (const ConvShape& cs : shapes)
    for (DType dt : {DType::F32, DType::BF16})
      for (ConvDirection d : {ConvDirection::Forward, ConvDirection::BackwardData, ConvDirection::BackwardWeight})
        for (int64_t alignment : {int64_t{16}, static_cast<int64_t>(dtype_size(dt))}) {  // best, least
          const std::string why = conv_graph_validate(d, dt, cs, alignment);
          EXPECT_EQ(why, "") << make_conv_plan_key(0, dt, d, cs, alignment, false).str();
        }
}

TEST(ConvGraphDescriptors, InconsistentShapesAreRejected) {
  ConvShape wrong_out = shape_of(2, 32, 32, 64, 64, 3, 1, 1, 1, 1, 1, 1, 1);
  wrong_out.oh -= 1;
  for (ConvDirection d : {ConvDirection::Forward, ConvDirection::BackwardData, ConvDirection::BackwardWeight})
    EXPECT_NE(conv_graph_validate(d, DType::BF16, wrong_out), "") << conv_direction_name(d);
  EXPECT_NE(conv_graph_validate(ConvDirection::Forward, DType::F64,
                                shape_of(2, 8, 8, 4, 4, 3, 1, 1, 1, 1, 1, 1, 1)),
            "");  // the graph path takes F32 and BF16 only
}

// The fallback bookkeeping needs no GPU: an (injected) build failure marks the key failed once, every call of
// it returns false (the caller runs legacy), and it is never built again. Nothing touches a device: the
// injected failure comes before any CUDA call, and a failed key returns before execution.
TEST(ConvGraphFallbackBookkeeping, AFailedKeyIsBuiltOnceAndThenSkipped) {
  const ConvShape cs = shape_of(1, 11, 13, 8, 8, 3, 1, 1, 1, 1, 1, 1, 1);  // a shape no other test uses
  void* fake = reinterpret_cast<void*>(uintptr_t{1} << 20);             // never dereferenced
  const WorkspaceAllocator none;
  const ConvGraphStats s0 = conv_graph_stats();
  conv_graph_inject_build_failures(true);
  const bool first = conv2d_graph(ConvDirection::BackwardData, DType::BF16, cs, fake, fake, fake, 0, nullptr, none);
  conv_graph_inject_build_failures(false);
  EXPECT_FALSE(first);
  const bool second = conv2d_graph(ConvDirection::BackwardData, DType::BF16, cs, fake, fake, fake, 0, nullptr, none);
  EXPECT_FALSE(second);
  const ConvGraphStats s1 = conv_graph_stats();
  EXPECT_EQ(s1.failed_keys, s0.failed_keys + 1);
  EXPECT_EQ(s1.fallback_calls, s0.fallback_calls + 2);
  EXPECT_EQ(s1.plans_built, s0.plans_built);
  EXPECT_EQ(conv_graph_choice(ConvDirection::BackwardData, DType::BF16, cs, 0).rfind("failed: injected", 0), 0u);
  EXPECT_EQ(conv_graph_choice(ConvDirection::Forward, DType::BF16, cs, 0), "");  // another direction: untouched
}
#endif

}  // namespace
}  // namespace pneumo::kernels::cuda
