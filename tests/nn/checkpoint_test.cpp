// safetensors checkpoints: bit-exact round trip of every dtype with metadata, atomic write, hostile or
// truncated files rejected with errors naming the file (never a crash or a huge allocation), and the
// load-by-name report of missing / unexpected / mis-shaped tensors.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <dirent.h>
#include <sys/stat.h>

#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "train/data_test_util.h"

using namespace pneumo;

namespace {

std::string temp_path(const std::string& name) { return testing::TempDir() + "pneumo_ckpt_" + name; }

std::vector<uint8_t> bytes_of(const Tensor& t) {
  const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
  return std::vector<uint8_t>(p, p + t.nbytes());
}

// A raw safetensors file from a header string (and `data_bytes` zero bytes of data).
std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes,
                      uint64_t declared_len = UINT64_MAX) {
  std::string path = temp_path(name);
  std::ofstream f(path, std::ios::binary);
  uint64_t len = declared_len == UINT64_MAX ? header.size() : declared_len;
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>((len >> (8 * i)) & 0xff));
  f << header;
  f << std::string(data_bytes, '\0');
  return path;
}

void expect_error_naming(const std::string& path, const std::string& fragment) {
  try {
    nn::load_safetensors(path);
    ADD_FAILURE() << "expected an error for " << path;
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(fragment), std::string::npos) << "wanted '" << fragment << "' in: " << m;
  }
}

class TwoLayer : public nn::Module {
 public:
  TwoLayer(int64_t a, int64_t b) {
    register_parameter("weight", Tensor::uniform({a, b}, -1, 1, 5));
    register_parameter("bias", Tensor::uniform({a}, -1, 1, 6));
    register_buffer("running_mean", Tensor::zeros({b}));
  }
};

}  // namespace

TEST(Checkpoint, RoundTripIsBitExactForEveryDtype) {
  nn::NamedTensors tensors;
  int k = 0;
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16}) {
    tensors.emplace_back(std::string("float.") + dtype_name(dt), Tensor::normal({3, 5, 2}, 0, 3, 100 + k++, 0, dt));
  }
  tensors.emplace_back("u8", Tensor::from_vector({0, 1, 255, 7}, {4}, DType::U8));
  tensors.emplace_back("i32", Tensor::from_vector({-5, 1 << 20, 3}, {3}, DType::I32));
  tensors.emplace_back("i64", Tensor::from_vector_f64({-9e15, 4, 1e15}, {3}, DType::I64));
  tensors.emplace_back("scalar", Tensor::scalar(2.5));
  tensors.emplace_back("empty", Tensor::empty({0, 4}));
  nn::Metadata meta{{"epoch", "12"}, {"fold", "3"}, {"config", "{\"lr\": 5e-4, \"quote\": \"a\\\"b\"}"}};
  const std::string path = temp_path("roundtrip.safetensors");
  nn::save_safetensors(path, tensors, meta);
  nn::SafetensorsContents back = nn::load_safetensors(path);
  EXPECT_EQ(back.metadata, meta);
  EXPECT_EQ(nn::read_safetensors_metadata(path), meta);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].first);
    EXPECT_EQ(back.tensors[i].first, tensors[i].first);  // file order = write order
    EXPECT_EQ(back.tensors[i].second.shape(), tensors[i].second.shape());
    EXPECT_EQ(back.tensors[i].second.dtype(), tensors[i].second.dtype());
    EXPECT_EQ(bytes_of(back.tensors[i].second), bytes_of(tensors[i].second));
  }
  std::remove(path.c_str());
}

TEST(Checkpoint, WriteIsAtomicAndLeavesNoTemporaryFile) {
  const std::string dir = testing::TempDir() + "pneumo_ckpt_atomic";
  std::remove((dir + "/m.safetensors").c_str());
  ::mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/m.safetensors";
  nn::save_safetensors(path, {{"a", Tensor::full({4}, 1.0)}});
  nn::save_safetensors(path, {{"a", Tensor::full({4}, 2.0)}});  // overwrite in place
  EXPECT_EQ(nn::load_safetensors(path).tensors[0].second.to_vector()[3], 2.0f);
  int files = 0;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) files += e->d_name[0] != '.';
  closedir(d);
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
  // A failed write (unwritable directory) throws, naming the path, and leaves the old file intact.
  EXPECT_THROW(nn::save_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", Tensor::zeros({1})}}), Error);
  EXPECT_THROW(nn::save_safetensors(path, {{"a", Tensor::zeros({1})}, {"a", Tensor::zeros({1})}}), Error);
  EXPECT_EQ(nn::load_safetensors(path).tensors[0].second.to_vector()[0], 2.0f);
  std::remove(path.c_str());
}

TEST(Checkpoint, HostileAndTruncatedFilesAreClearErrors) {
  // Shorter than the length field.
  {
    std::string p = temp_path("tiny.safetensors");
    std::ofstream(p, std::ios::binary) << "abc";
    expect_error_naming(p, "shorter");
  }
  expect_error_naming(write_raw("long_header.safetensors", "{}", 0, 1000), "exceeds the file");
  expect_error_naming(write_raw("huge_header.safetensors", "{}", 0, 1ull << 62), "exceeds the file");
  expect_error_naming(write_raw("bad_json.safetensors", "{\"a\": {\"dtype\": ", 0), "not valid JSON");
  expect_error_naming(write_raw("not_object.safetensors", "[1, 2, 3]   ", 0), "JSON object");
  expect_error_naming(
      write_raw("huge_shape.safetensors",
                R"({"a": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 16]}})", 16),
      "needs more bytes");
  expect_error_naming(
      write_raw("overflow_shape.safetensors",
                R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 16]}})", 16),
      "overflows");
  expect_error_naming(
      write_raw("offsets_out.safetensors", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 160]}})", 16),
      "outside the data");
  expect_error_naming(
      write_raw("offsets_size.safetensors", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}})", 16),
      "needs 16");
  expect_error_naming(
      write_raw("offsets_rev.safetensors", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 16),
      "outside the data");
  expect_error_naming(
      write_raw("overlap.safetensors",
                R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                16),
      "overlap");
  expect_error_naming(
      write_raw("negative.safetensors", R"({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", 16),
      "negative");
  expect_error_naming(
      write_raw("dtype.safetensors", R"({"a": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}})", 16),
      "unsupported dtype");
  expect_error_naming(write_raw("fields.safetensors", R"({"a": {"dtype": "F32"}})", 0), "needs dtype");
  expect_error_naming(write_raw("meta.safetensors", R"({"__metadata__": {"epoch": 3}})", 0), "not a string");
  // A valid file cut short: the header now claims data past the end.
  {
    const std::string p = temp_path("cut.safetensors");
    nn::save_safetensors(p, {{"a", Tensor::zeros({64})}});
    std::ifstream in(p, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << all.substr(0, all.size() - 10);
    expect_error_naming(p, "than the file holds");
  }
  expect_error_naming(temp_path("does_not_exist.safetensors"), "cannot open");
}

TEST(Checkpoint, LoadStateReportsMissingUnexpectedAndMisShaped) {
  TwoLayer src(3, 4);
  const std::string good = temp_path("state_good.safetensors");
  nn::save_state(src, good, {{"epoch", "7"}});
  TwoLayer dst(3, 4);
  nn::LoadReport r = nn::load_state(dst, good);
  EXPECT_TRUE(r.ok()) << r.str();
  EXPECT_EQ(r.loaded.size(), 3u);
  EXPECT_EQ(r.metadata.at("epoch"), "7");
  EXPECT_EQ(r.metadata.at("pneumo_version"), PNEUMO_VERSION);
  EXPECT_EQ(dst.state_dict()[0].second.to_vector(), src.state_dict()[0].second.to_vector());

  // weight mis-shaped, bias missing, one unexpected tensor; running_mean stored as F64 (cast on load).
  const std::string bad = temp_path("state_bad.safetensors");
  nn::save_safetensors(bad, {{"weight", Tensor::zeros({4, 3})},
                             {"running_mean", Tensor::full({4}, 0.5, DType::F64)},
                             {"extra.weight", Tensor::zeros({1})}});
  TwoLayer strict_dst(3, 4);
  try {
    nn::load_state(strict_dst, bad, true);
    ADD_FAILURE() << "strict load should fail";
  } catch (const Error& e) {
    std::string m = e.what();
    for (const char* s : {"state_bad.safetensors", "bias", "extra.weight", "weight (module [3, 4]", "file [4, 3]"})
      EXPECT_NE(m.find(s), std::string::npos) << s << " not in: " << m;
  }
  EXPECT_EQ(strict_dst.state_dict()[2].second.to_vector()[0], 0.0f) << "strict failure must load nothing";

  TwoLayer loose(3, 4);
  nn::LoadReport lr = nn::load_state(loose, bad, false);
  EXPECT_FALSE(lr.ok());
  EXPECT_EQ(lr.loaded, std::vector<std::string>{"running_mean"});
  EXPECT_EQ(lr.missing, std::vector<std::string>{"bias"});
  EXPECT_EQ(lr.unexpected, std::vector<std::string>{"extra.weight"});
  ASSERT_EQ(lr.mismatched.size(), 1u);
  EXPECT_EQ(lr.mismatched[0].name, "weight");
  EXPECT_EQ(loose.state_dict()[2].second.to_vector()[0], 0.5f);
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

// ------------------------------------------------------------------------------------------ checksums

namespace {

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  return n;
}

}  // namespace

TEST(CheckpointChecksum, EveryFileCarriesOneAndItIsNotPartOfTheMetadata) {
  TwoLayer m(3, 4);
  const std::string path = temp_path("crc_meta.safetensors");
  nn::save_state(m, path, {{"note", "x"}});
  const std::string bytes = test::read_bytes(path);
  EXPECT_NE(bytes.find("\"pneumo.crc32c\":\""), std::string::npos) << "no checksum in the header";
  const nn::Metadata meta = nn::read_safetensors_metadata(path);
  EXPECT_EQ(meta.count("pneumo.crc32c"), 0u);
  EXPECT_EQ(meta.at("note"), "x");
  EXPECT_EQ(nn::load_safetensors(path).metadata, meta);
  // The name is reserved.
  EXPECT_THROW(nn::save_safetensors(temp_path("crc_reserved.safetensors"), {{"a", Tensor::zeros({2})}},
                                    {{"pneumo.crc32c", "00000000"}}),
               Error);
}

TEST(CheckpointChecksum, AFlippedByteInATensorIsACorruptFileNamed) {
  TwoLayer m(8, 16);
  const std::string path = temp_path("crc_flip.safetensors");
  nn::save_state(m, path);
  ASSERT_NO_THROW(nn::load_safetensors(path));
  const std::string good = test::read_bytes(path);
  const size_t data_start = 8 + header_length(good);
  // A byte in the first tensor, one in the last, and the very last byte of the file.
  for (size_t at : {data_start + 5, good.size() - 40, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    write_all(path, bad);
    expect_error_naming(path, "checksum mismatch");
    TwoLayer into(8, 16);
    EXPECT_THROW(nn::load_state(into, path), Error);
  }
  // The message is one line.
  try {
    nn::load_safetensors(path);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("the file is corrupt"), std::string::npos) << e.what();
  }
}

TEST(CheckpointChecksum, AChangedMetadataValueOrShapeInTheHeaderIsCaught) {
  TwoLayer m(8, 16);
  const std::string path = temp_path("crc_header.safetensors");
  nn::save_state(m, path, {{"trainer.step", "12"}});
  const std::string good = test::read_bytes(path);
  // Same length, so the file stays well formed: only the checksum can tell.
  std::string bad = good;
  const size_t at = bad.find("\"12\"");
  ASSERT_NE(at, std::string::npos);
  bad[at + 2] = '3';
  write_all(path, bad);
  expect_error_naming(path, "checksum mismatch");
  // A corrupt checksum value itself.
  bad = good;
  const size_t c = bad.find("\"pneumo.crc32c\":\"") + 17;
  bad[c] = 'z';
  write_all(path, bad);
  expect_error_naming(path, "not 8 hex digits");
}

TEST(CheckpointChecksum, ATruncatedFileIsNamed) {
  TwoLayer m(8, 16);
  const std::string path = temp_path("crc_cut.safetensors");
  nn::save_state(m, path);
  const std::string good = test::read_bytes(path);
  for (size_t keep : {good.size() - 1, good.size() / 2, size_t{12}, size_t{3}}) {
    write_all(path, good.substr(0, keep));
    EXPECT_THROW(nn::load_safetensors(path), Error) << "kept " << keep;
    try {
      nn::load_safetensors(path);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

TEST(CheckpointChecksum, OldFilesWithoutAChecksumStillLoad) {
  // As written before checksums existed (and by other tools): no "pneumo.crc32c" entry.
  const std::string header =
      R"({"__metadata__":{"pneumo_version":"0.0.9"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  const std::string path = temp_path("crc_old.safetensors");
  {
    std::ofstream f(path, std::ios::binary);
    const uint64_t len = padded.size();
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>((len >> (8 * i)) & 0xff));
    f << padded;
    const float v[2] = {1.5f, -2.0f};
    f.write(reinterpret_cast<const char*>(v), sizeof v);
  }
  nn::SafetensorsContents c = nn::load_safetensors(path);
  ASSERT_EQ(c.tensors.size(), 1u);
  EXPECT_EQ(c.tensors[0].second.data<float>()[0], 1.5f);
  EXPECT_EQ(c.tensors[0].second.data<float>()[1], -2.0f);
  EXPECT_EQ(c.metadata.at("pneumo_version"), "0.0.9");
}
