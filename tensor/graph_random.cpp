#include "tensor/graph_random.h"

#include "kernels/check.h"

namespace pneumo {

GraphRandom::Draw GraphRandom::next(Generator& generator, Device device) {
  Entry* e = nullptr;
  for (Entry& x : entries_)
    if (x.generator == &generator) e = &x;
  if (!e) {
    // The state's memory is made here (inside a capture: a block of the graph's pool); its values are
    // written only by before_replay, outside the capture.
    entries_.push_back(Entry{&generator, generator.offset(), 0, Tensor::empty({2}, DType::I64, device)});
    e = &entries_.back();
  }
  PNEUMO_CHECK(e->state.device() == device, "GraphRandom: one generator drew on ", e->state.device().str(), " and ",
               device.str(), " in one CUDA Graph");
  Draw d;
  d.offset = generator.next_offset() - e->start;
  d.state = e->state;
  return d;
}

void GraphRandom::end_capture() {
  for (Entry& e : entries_) {
    e.used = e.generator->offset() - e.start;
    e.generator->set_offset(e.start);
  }
}

void GraphRandom::before_replay() {
  for (Entry& e : entries_) {
    Tensor host = Tensor::empty({2}, DType::I64, Device::cpu());
    host.data<int64_t>()[0] = static_cast<int64_t>(e.generator->seed());
    host.data<int64_t>()[1] = static_cast<int64_t>(e.generator->offset());
    e.state.copy_from(host);  // pageable: staged before the call returns
    e.generator->set_offset(e.generator->offset() + e.used);
  }
}

size_t GraphRandom::draws() const {
  size_t n = 0;
  for (const Entry& e : entries_) n += e.used;
  return n;
}

}  // namespace pneumo
