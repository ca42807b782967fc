// safetensors reading/writing with a hostile-file-proof header check, and name-based state loading.
#include "nn/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "kernels/atomic_file.h"
#include "kernels/check.h"
#include "kernels/crc32c.h"

namespace pneumo::nn {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;  // the safetensors library's own limit
// A __metadata__ entry every file written by pneumo carries: CRC-32C (8 hex digits) of the header JSON
// without this entry, followed by every tensor's bytes in data order. Files without it (older pneumo,
// other tools) load unchecked.
constexpr const char* kChecksumKey = "pneumo.crc32c";

#define CKPT_FAIL(path, ...) PNEUMO_FAIL("safetensors file '", path, "': ", __VA_ARGS__)

bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::F32}, {"F64", DType::F64},
                                                        {"BF16", DType::BF16}, {"F16", DType::F16},
                                                        {"U8", DType::U8},   {"I32", DType::I32},
                                                        {"I64", DType::I64}};
  for (const auto& e : table)
    if (s == e.first) {
      *out = e.second;
      return true;
    }
  return false;
}

// One tensor entry of a validated header.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // sorted by begin
  Metadata metadata;           // without the checksum entry
  uint64_t data_start = 0;     // file offset of the byte buffer
  bool has_checksum = false;
  uint32_t stored_crc = 0;
  uint32_t header_crc = 0;     // CRC-32C of the canonical header (see kChecksumKey)
};

// The header JSON as the writer dumps it, without the checksum entry (nlohmann's objects keep keys sorted,
// so parsing and dumping again gives the writer's bytes back).
uint32_t canonical_header_crc(json root) {
  auto meta = root.find("__metadata__");
  if (meta != root.end() && meta->is_object()) {
    meta->erase(kChecksumKey);
    if (meta->empty()) root.erase("__metadata__");
  }
  const std::string text = root.dump();
  return crc32c(text.data(), text.size());
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

class File {
 public:
  File(const std::string& path, const char* mode) : path_(path), f_(std::fopen(path.c_str(), mode)) {
    if (!f_) CKPT_FAIL(path, "cannot open (", std::strerror(errno), ")");
  }
  ~File() {
    if (f_) std::fclose(f_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  std::FILE* get() const { return f_; }
  uint64_t size() const {
    struct stat st;
    if (fstat(fileno(f_), &st) != 0) CKPT_FAIL(path_, "cannot stat (", std::strerror(errno), ")");
    return static_cast<uint64_t>(st.st_size);
  }
  void read_at(uint64_t offset, void* dst, uint64_t bytes) const {
    if (bytes == 0) return;
    if (fseeko(f_, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(dst, 1, bytes, f_) != bytes)
      CKPT_FAIL(path_, "short read of ", bytes, " bytes at offset ", offset);
  }

 private:
  std::string path_;
  std::FILE* f_;
};

uint64_t json_uint(const std::string& path, const std::string& name, const char* what, const json& v) {
  if (!v.is_number_integer() && !v.is_number_unsigned())
    CKPT_FAIL(path, "tensor '", name, "': ", what, " must be a non-negative integer, got ", v.dump());
  if (v.is_number_integer() && v.get<int64_t>() < 0)
    CKPT_FAIL(path, "tensor '", name, "': ", what, " is negative (", v.dump(), ")");
  return v.get<uint64_t>();
}

Header read_header(const std::string& path, const File& file) {
  const uint64_t file_size = file.size();
  if (file_size < 8) CKPT_FAIL(path, "file is ", file_size, " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  file.read_at(0, len_bytes, 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > file_size - 8)
    CKPT_FAIL(path, "header length ", header_len, " exceeds the file (", file_size, " bytes): truncated or not a safetensors file");
  if (header_len > kMaxHeaderBytes) CKPT_FAIL(path, "header length ", header_len, " exceeds the 100 MB limit");
  if (header_len < 2) CKPT_FAIL(path, "header of ", header_len, " bytes cannot hold a JSON object");
  std::string text(header_len, '\0');
  file.read_at(8, text.data(), header_len);

  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    CKPT_FAIL(path, "header is not valid JSON (", e.what(), ")");
  }
  if (!root.is_object()) CKPT_FAIL(path, "header must be a JSON object");

  Header h;
  h.data_start = 8 + header_len;
  const uint64_t data_size = file_size - h.data_start;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) CKPT_FAIL(path, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) CKPT_FAIL(path, "__metadata__ value of '", m.key(), "' is not a string");
        const std::string value = m.value().get<std::string>();
        if (m.key() == kChecksumKey) {
          const bool hex = value.size() == 8 && std::all_of(value.begin(), value.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0;
          });
          if (!hex) CKPT_FAIL(path, "checksum '", value, "' is not 8 hex digits: the file is corrupt");
          const unsigned long crc = std::strtoul(value.c_str(), nullptr, 16);
          h.has_checksum = true;
          h.stored_crc = static_cast<uint32_t>(crc);
          continue;
        }
        h.metadata[m.key()] = value;
      }
      continue;
    }
    if (name.empty()) CKPT_FAIL(path, "a tensor has an empty name");
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      CKPT_FAIL(path, "tensor '", name, "' needs dtype, shape and data_offsets");
    Entry e;
    e.name = name;
    if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), &e.dtype))
      CKPT_FAIL(path, "tensor '", name, "': unsupported dtype ", v["dtype"].dump(),
                " (F32, F64, BF16, F16, U8, I32, I64)");
    const json& shape = v["shape"];
    if (!shape.is_array() || shape.size() > 16) CKPT_FAIL(path, "tensor '", name, "': shape must be an array of at most 16 dims");
    uint64_t numel = 1;
    for (const json& d : shape) {
      const uint64_t dim = json_uint(path, name, "a shape dimension", d);
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim))
        CKPT_FAIL(path, "tensor '", name, "': shape ", shape.dump(), " overflows");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const uint64_t esize = dtype_size(e.dtype);
    if (numel > data_size / esize + 1)
      CKPT_FAIL(path, "tensor '", name, "': shape ", shape.dump(), " needs more bytes than the file holds (",
                data_size, ")");
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2) CKPT_FAIL(path, "tensor '", name, "': data_offsets must be [begin, end]");
    e.begin = json_uint(path, name, "data_offsets[0]", off[0]);
    e.end = json_uint(path, name, "data_offsets[1]", off[1]);
    if (e.begin > e.end || e.end > data_size)
      CKPT_FAIL(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] outside the data (",
                data_size, " bytes)");
    if (e.end - e.begin != numel * esize)
      CKPT_FAIL(path, "tensor '", name, "': data_offsets span ", e.end - e.begin, " bytes but shape ", shape.dump(),
                " of ", v["dtype"].get<std::string>(), " needs ", numel * esize);
    h.entries.push_back(std::move(e));
  }
  std::sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < h.entries.size(); ++i)
    if (h.entries[i].begin < h.entries[i - 1].end)
      CKPT_FAIL(path, "tensors '", h.entries[i - 1].name, "' and '", h.entries[i].name, "' overlap in the data");
  if (h.has_checksum) h.header_crc = canonical_header_crc(std::move(root));
  return h;
}

}  // namespace

const char* safetensors_dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::U8: return "U8";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  json header = json::object();
  std::set<std::string> names;
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__") CKPT_FAIL(path, "invalid tensor name '", name, "'");
    if (!names.insert(name).second) CKPT_FAIL(path, "tensor name '", name, "' appears twice");
    if (!t.defined()) CKPT_FAIL(path, "tensor '", name, "' is undefined");
    host.push_back(t.cpu());
    const uint64_t bytes = host.back().nbytes();
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())}, {"shape", t.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (metadata.count(kChecksumKey)) CKPT_FAIL(path, "metadata key '", kChecksumKey, "' is reserved for the checksum");
  if (!metadata.empty()) header["__metadata__"] = metadata;
  {
    const std::string canonical = header.dump();
    uint32_t crc = crc32c(canonical.data(), canonical.size());
    for (const Tensor& t : host) crc = crc32c_extend(crc, t.raw_data(), t.nbytes());
    header["__metadata__"][kChecksumKey] = hex32(crc);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);

  // Tests: PNEUMO_DEBUG_KILL_WRITING=TEXT dies (SIGKILL) half-way through writing any file whose path
  // contains TEXT, with the first half of the tensors already in the temporary file (a crash mid-write).
  const char* kill_env = std::getenv("PNEUMO_DEBUG_KILL_WRITING");
  const bool kill_mid_write = kill_env && *kill_env && path.find(kill_env) != std::string::npos;
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (size_t i = 0; i < host.size(); ++i) {
      if (kill_mid_write && i == host.size() / 2) {
        out.flush();
        std::raise(SIGKILL);
      }
      out.write(static_cast<const char*>(host[i].raw_data()), static_cast<std::streamsize>(host[i].nbytes()));
    }
  });
}

SafetensorsContents load_safetensors(const std::string& path) {
  File file(path, "rb");
  Header h = read_header(path, file);
  SafetensorsContents out;
  out.metadata = std::move(h.metadata);
  uint32_t crc = h.header_crc;
  for (const Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu());
    file.read_at(h.data_start + e.begin, t.raw_data(), e.end - e.begin);
    if (h.has_checksum) crc = crc32c_extend(crc, t.raw_data(), e.end - e.begin);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  if (h.has_checksum && crc != h.stored_crc)
    CKPT_FAIL(path, "checksum mismatch (CRC-32C ", hex32(crc), ", the file says ", hex32(h.stored_crc),
              "): the file is corrupt");
  return out;
}

Metadata read_safetensors_metadata(const std::string& path) {
  File file(path, "rb");
  return read_header(path, file).metadata;
}

std::string LoadReport::str() const {
  std::ostringstream os;
  os << loaded.size() << " loaded";
  if (!missing.empty()) {
    os << "; " << missing.size() << " missing from the file:";
    for (const auto& n : missing) os << " " << n;
  }
  if (!unexpected.empty()) {
    os << "; " << unexpected.size() << " unexpected in the file:";
    for (const auto& n : unexpected) os << " " << n;
  }
  if (!mismatched.empty()) {
    os << "; " << mismatched.size() << " mis-shaped:";
    for (const auto& m : mismatched)
      os << " " << m.name << " (module " << shape_str(m.expected) << " " << dtype_name(m.expected_dtype) << ", file "
         << shape_str(m.found) << " " << dtype_name(m.found_dtype) << ")";
  }
  return os.str();
}

void save_state(const Module& module, const std::string& path, const Metadata& metadata) {
  Metadata with_version = metadata;
  with_version.emplace("pneumo_version", PNEUMO_VERSION);  // kept if the caller set one
  save_safetensors(path, module.state_dict(), with_version);
}

LoadReport load_state(Module& module, const std::string& path, bool strict) {
  SafetensorsContents file = load_safetensors(path);
  LoadReport report;
  report.metadata = file.metadata;
  std::map<std::string, Tensor> in_file(file.tensors.begin(), file.tensors.end());
  std::vector<std::pair<std::string, Tensor>> to_load;
  std::set<std::string> known;
  for (const auto& [name, current] : module.state_dict()) {
    known.insert(name);
    auto it = in_file.find(name);
    if (it == in_file.end()) {
      report.missing.push_back(name);
      continue;
    }
    const Tensor& found = it->second;
    const bool dtype_ok = found.dtype() == current.dtype() || (is_floating(found.dtype()) && is_floating(current.dtype()));
    if (found.shape() != current.shape() || !dtype_ok) {
      report.mismatched.push_back({name, current.shape(), found.shape(), current.dtype(), found.dtype()});
      continue;
    }
    to_load.emplace_back(name, found.to(current.dtype()).to(current.device()));
  }
  for (const auto& [name, t] : file.tensors)
    if (!known.count(name)) report.unexpected.push_back(name);
  if (strict && !report.ok()) PNEUMO_FAIL("loading '", path, "' (strict): ", report.str());
  for (auto& [name, t] : to_load) {
    module.set_tensor(name, t);
    report.loaded.push_back(name);
  }
  return report;
}

}  // namespace pneumo::nn
