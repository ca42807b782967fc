// Checkpoints as safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}
// padded with spaces to 8 bytes, then the raw little-endian tensor bytes. Any tool can read them.
// Reading never trusts the file: the header length, JSON, dtypes, shapes (overflow) and offsets are
// checked against the file size before anything is allocated, and every error names the file.
// Writing goes through write_file_atomic (kernels/atomic_file.h): a unique temporary file, fsync'ed, renamed
// over <path>, folder fsync'ed: never half-written.
// Every file written carries a checksum in its metadata ("pneumo.crc32c": CRC-32C of the header JSON without
// that entry, then of every tensor's bytes in data order); load_safetensors verifies it and a mismatch is an
// error naming the file ("checksum mismatch ...: the file is corrupt"). Files without one (written by older
// pneumo or another tool) load unchecked. The entry is not part of the returned metadata.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace pneumo::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  NamedTensors tensors;  // CPU tensors in file order (by data offset)
  Metadata metadata;
};

// Writes F32, F64, BF16, F16, U8, I32, I64 tensors (from any device). Names must be unique and non-empty.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
SafetensorsContents load_safetensors(const std::string& path);
Metadata read_safetensors_metadata(const std::string& path);  // reads only the header (data not verified)

// What load_state did: names are the module's dotted names.
struct LoadReport {
  struct Mismatch {
    std::string name;
    Shape expected, found;
    DType expected_dtype, found_dtype;
  };
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the module, absent from the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<Mismatch> mismatched;     // present in both but of another shape (or a non-castable dtype)
  Metadata metadata;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;  // one readable paragraph listing every problem
};

// Parameters and buffers of `module` (Module::state_dict) plus metadata (and 'pneumo_version').
void save_state(const Module& module, const std::string& path, const Metadata& metadata = {});
// Loads by name. Floating tensors of another floating dtype are cast; values go to the module's device.
// strict: any missing/unexpected/mis-shaped tensor throws (naming the file and listing all of them) and
// nothing is loaded. Not strict: every tensor that matches is loaded and the report says what did not.
LoadReport load_state(Module& module, const std::string& path, bool strict = true);

// safetensors dtype names ("F32", "BF16", ...).
const char* safetensors_dtype_name(DType dt);

}  // namespace pneumo::nn
