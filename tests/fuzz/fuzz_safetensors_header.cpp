// libFuzzer target: the JSON inside a safetensors header (the project's config JSON: tensor table and
// __metadata__). The input is the header text; the harness adds a correct length prefix and 64 data bytes,
// so the fuzzer spends its effort on JSON structure rather than on the length field.
#include <string>

#include "nn/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pneumo::fuzz::scratch_dir() + "/header.safetensors";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[static_cast<size_t>(i)] = static_cast<char>((static_cast<uint64_t>(size) >> (8 * i)) & 0xff);
  file.append(reinterpret_cast<const char*>(data), size);
  file.append(64, '\x01');
  pneumo::fuzz::write_file(path, reinterpret_cast<const uint8_t*>(file.data()), file.size());
  pneumo::fuzz::expect_clean([&] {
    const pneumo::nn::SafetensorsContents c = pneumo::nn::load_safetensors(path);
    for (const auto& [name, t] : c.tensors)
      if (name.empty() || !t.defined() || t.nbytes() > 64) std::abort();
  });
  return 0;
}
