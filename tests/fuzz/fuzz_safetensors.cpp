// libFuzzer target: safetensors files as they come (nn/checkpoint.h): the length prefix, the JSON header,
// dtypes, shapes and offsets, all read before allocating.
#include "nn/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pneumo::fuzz::scratch_dir() + "/weights.safetensors";
  pneumo::fuzz::write_file(path, data, size);
  pneumo::fuzz::expect_clean([&] { (void)pneumo::nn::read_safetensors_metadata(path); });
  pneumo::fuzz::expect_clean([&] {
    const pneumo::nn::SafetensorsContents c = pneumo::nn::load_safetensors(path);
    for (const auto& [name, t] : c.tensors)
      if (name.empty() || !t.defined()) std::abort();
  });
  return 0;
}
