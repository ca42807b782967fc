// Random draws inside a CUDA Graph (tensor/graph_random.h), on the CPU: a "capture" records draws and runs
// nothing; each "replay" then draws, through the state tensor the kernels read, exactly the masks eager
// steps draw at the same point of the generator's stream -- forward and backward -- and the generator ends
// where the eager steps leave it. The GPU half (real captures): TrainGraphGpu.*.
#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "tensor/graph_random.h"
#include "tensor/layer_ops.h"

using namespace pneumo;

TEST(GraphRandom, ReplaysDrawTheMasksEagerStepsWould) {
  const Tensor x = Tensor::normal({3, 4, 4, 2}, 0, 1, 1);
  // Eager: three steps, each a dropout and a drop-connect.
  Generator eager_gen(77);
  eager_gen.set_offset(5);
  std::vector<Tensor> eager;
  for (int s = 0; s < 3; ++s) {
    eager.push_back(layer_ops::dropout(x, 0.3, eager_gen.seed(), eager_gen.next_offset()));
    eager.push_back(layer_ops::drop_connect(x, 0.5, eager_gen.seed(), eager_gen.next_offset()));
  }
  ASSERT_NE(eager[0].to_vector(), eager[2].to_vector());  // each step its own mask
  // The capture records two draws, runs nothing and leaves the generator where it found it.
  Generator gen(77);
  gen.set_offset(5);
  GraphRandom r;
  const GraphRandom::Draw d1 = r.next(gen, Device::cpu()), d2 = r.next(gen, Device::cpu());
  EXPECT_EQ(d1.offset, 0u);
  EXPECT_EQ(d2.offset, 1u);
  EXPECT_TRUE(d1.state.shares_storage(d2.state));
  r.end_capture();
  EXPECT_EQ(gen.offset(), 5u);
  EXPECT_EQ(r.draws(), 2u);
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(s);
    r.before_replay();
    // The replay's kernels: the seed argument baked in at capture gives way to the state's.
    EXPECT_EQ(layer_ops::dropout(x, 0.3, 12345, d1.offset, d1.state).to_vector(), eager[2 * s].to_vector());
    EXPECT_EQ(layer_ops::drop_connect(x, 0.5, 12345, d2.offset, d2.state).to_vector(), eager[2 * s + 1].to_vector());
  }
  EXPECT_EQ(gen.offset(), eager_gen.offset());
  // A new seed between replays reaches the next replay.
  gen.manual_seed(9);
  r.before_replay();
  EXPECT_EQ(layer_ops::dropout(x, 0.3, 12345, d1.offset, d1.state).to_vector(), layer_ops::dropout(x, 0.3, 9, 0).to_vector());
}

// A capture that failed and is tried again (cuda::Graph::capture calls begin_capture first): the retry bakes in
// offsets from its own start and counts only its own draws; without begin_capture the first attempt's entry
// kept its start, so the retry baked offset 2, counted 3 draws and rewound the generator from 2 to 0.
TEST(GraphRandom, ARetriedCaptureForgetsTheFailedOnesDraws) {
  Generator gen(11);
  GraphRandom r;
  r.begin_capture();
  (void)r.next(gen, Device::cpu());
  r.end_capture();  // the first attempt failed: the generator is put back
  EXPECT_EQ(gen.offset(), 0u);
  gen.next_offset();  // two eager draws between the attempts
  gen.next_offset();
  r.begin_capture();
  const GraphRandom::Draw d = r.next(gen, Device::cpu());
  r.end_capture();
  EXPECT_EQ(d.offset, 0u);
  EXPECT_EQ(r.draws(), 1u);
  EXPECT_EQ(gen.offset(), 2u);
  r.before_replay();
  EXPECT_EQ(d.state.to_vector_f64()[1], 2.0);  // the replay draws from offset 2 on
  EXPECT_EQ(gen.offset(), 3u);
}

// The node keeps the state: its backward recomputes the forward's mask from the same values.
TEST(GraphRandom, TheBackwardRecomputesTheForwardsMask) {
  Generator gen(3);
  GraphRandom r;
  const GraphRandom::Draw d = r.next(gen, Device::cpu());
  r.end_capture();
  r.before_replay();
  ag::Variable x(Tensor::normal({4, 3, 3, 2}, 0, 1, 2), true);
  ag::Variable y = ag::dropout(x, 0.4, 777, d.offset, true, d.state);
  ag::sum(y).backward();
  const Tensor mask_scaled = layer_ops::drop_connect(Tensor::full(x.shape(), 1.0), 0.4, 3, 0);
  EXPECT_EQ(x.grad().to_vector(), mask_scaled.to_vector());
  EXPECT_EQ(y.value().to_vector(), layer_ops::drop_connect(x.value(), 0.4, 3, 0).to_vector());
}

TEST(GraphRandom, AMalformedStateIsNamed) {
  const Tensor x = Tensor::normal({2, 3}, 0, 1, 4);
  try {
    layer_ops::dropout(x, 0.3, 1, 0, Tensor::zeros({2}));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Philox state must be I64 {seed, offset}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(layer_ops::drop_connect(x, 0.3, 1, 0, Tensor::zeros({3}, DType::I64)), Error);
}
