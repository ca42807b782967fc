// The `pneumo` executable as a user meets it: each test runs the built binary (PNEUMO_BINARY, set by
// tests/tools/tools_tests.cmake) on bad input and checks the exit code (2 usage, 1 other errors), that the
// error is one line "pneumo <command>: ..." without engine internals, and that nothing was written.
// docs/reliability.md lists these tests as its rows.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "augment/image.h"
#include "tensor/cuda_runtime.h"
#include "train/data_test_util.h"

namespace pneumo {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

// Runs `pneumo ARGS` (a shell fragment) inside `dir`, with `env` ("NAME=value ...") in its environment.
Result pneumo(const std::string& args, const test::TempDir& dir, const std::string& env = "") {
  const std::string out = dir.file(".stdout"), err = dir.file(".stderr");
  const std::string cmd =
      "cd '" + dir.path() + "' && " + env + " '" PNEUMO_BINARY "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_bytes(out);
  r.err = test::read_bytes(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// One line on stderr, "pneumo <command>: ...", naming `needle`, with no check expression or source location.
void expect_clean_error(const Result& r, int code, const std::string& command, const std::string& needle) {
  EXPECT_EQ(r.code, code) << r.err;
  const std::string prefix = "pneumo " + command + ": ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
  EXPECT_EQ(r.err.find(prefix, 1), std::string::npos) << "prefix repeated: " << r.err;
  EXPECT_EQ(r.err.find("error: pneumo"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("[check failed"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(".cpp:"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (size_t i = 0; i + 1 < r.err.size(); ++i)
    EXPECT_FALSE(static_cast<unsigned char>(r.err[i]) < 0x20) << "control byte " << int(r.err[i]) << " in: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "'" << needle << "' missing from: " << r.err;
}

// The first `on_pixels` pixels in the RLE's column-major order are on.
void write_mask(const std::string& path, int height, int width, int on_pixels) {
  aug::Image m(height, width, 1);
  for (int k = 0; k < on_pixels && k < height * width; ++k) m.at(k % height, k / height) = 255;
  aug::write_png(path, m);
}

// A PNG whose header claims width x height, followed by a tiny valid zlib stream (stb skips CRCs).
std::string png_claiming(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  std::string png = "\x89PNG\r\n\x1a\n";
  png += be32(13) + "IHDR" + be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5) + be32(0);
  const std::string z("\x78\x9c\x63\x60\x40\x05\x00\x00\x10\x00\x01", 11);  // zlib of 16 zero bytes
  png += be32(static_cast<uint32_t>(z.size())) + "IDAT" + z + be32(0);
  png += be32(0) + "IEND" + be32(0);
  return png;
}

const char* kCsvHeader = "ImageId,EncodedPixels\n";

// ---- the command line itself --------------------------------------------------------------------------

TEST(Cli, NoArgumentsPrintsHelpAndExits2) {
  test::TempDir d;
  const Result r = pneumo("", d);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("Subcommands:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rle"), std::string::npos);
}

TEST(Cli, HelpOfEveryCommandExits0) {
  test::TempDir d;
  for (const char* c : {"info", "rle", "rle encode", "rle decode", "rle folder-to-csv", "folds", "augment-preview",
                        "import-weights", "bench", "bench-data", "bench-models"}) {
    const Result r = pneumo(std::string(c) + " --help", d);
    EXPECT_EQ(r.code, 0) << c << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: pneumo " + std::string(c)), std::string::npos) << r.out;
  }
}

TEST(Cli, UnknownCommandIsAUsageError) {
  test::TempDir d;
  const Result r = pneumo("frobnicate", d);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
}

TEST(Cli, UnknownOptionIsAUsageError) {
  test::TempDir d;
  expect_clean_error(pneumo("folds --out f --bogus 3", d), 2, "folds", "--bogus");
  // bench's old --repeats is --iters, as in bench-models and bench-data.
  expect_clean_error(pneumo("bench --repeats 3", d), 2, "bench", "--repeats");
}

TEST(Cli, StrayPositionalArgumentsAreRejected) {
  test::TempDir d;
  expect_clean_error(pneumo("info extra", d), 2, "info", "extra");
  expect_clean_error(pneumo("rle decode '0 1' '2 3' --out m.png", d), 2, "rle decode", "2 3");
  expect_clean_error(pneumo("folds stray --out f", d), 2, "folds", "stray");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
}

TEST(Cli, MissingRequiredOptionIsAUsageError) {
  test::TempDir d;
  expect_clean_error(pneumo("rle decode '0 1'", d), 2, "rle decode", "--out");
  expect_clean_error(pneumo("rle", d), 2, "rle", "encode, decode or folder-to-csv");
}

TEST(Cli, DebugModeKeepsTheEngineCheckAndLocation) {
  test::TempDir d;
  const Result r = pneumo("rle decode '1 2 3' --out m.png", d, "PNEUMO_DEBUG=1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("odd number of values"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rle.cpp:"), std::string::npos) << r.err;
}

// ---- numbers: range-checked, never narrowed ------------------------------------------------------------

TEST(Cli, HeightBeyond32BitsIsRejectedNotNarrowed) {
  test::TempDir d;
  // 4294968320 = 2^32 + 1024: narrowed to int it was 1024 and a mask was written.
  expect_clean_error(pneumo("rle decode '0 1' --height 4294968320 --out m.png", d), 2, "rle decode",
                     "4294968320 is not in 1..16384");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
}

TEST(Cli, NegativeAndNonNumericSizesAreRejected) {
  test::TempDir d;
  expect_clean_error(pneumo("rle decode '0 1' --height -5 --out m.png", d), 2, "rle decode", "-5 is not in 1..16384");
  expect_clean_error(pneumo("rle decode '0 1' --width abc --out m.png", d), 2, "rle decode", "'abc' is not a number");
  expect_clean_error(pneumo("rle decode '0 1' --width 2.5 --out m.png", d), 2, "rle decode", "not a whole number");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
}

TEST(Cli, FoldCountBeyond32BitsIsRejected) {
  test::TempDir d;
  test::write_text(d.file("l.csv"), std::string(kCsvHeader) + "a,-1\nb,-1\nc,1 2\nd,-1\ne,-1\nf,-1\n");
  // 4294967301 = 2^32 + 5: narrowed it made 5 folds.
  expect_clean_error(pneumo("folds --csv l.csv --out f --k 4294967301", d), 2, "folds", "4294967301 is not in 2..1000");
  EXPECT_FALSE(fs::exists(d.file("f")));
}

TEST(Cli, PreviewSizeBeyond32BitsIsRejected) {
  test::TempDir d;
  write_mask(d.file("x.png"), 16, 16, 10);
  // 4294967552 = 2^32 + 256: narrowed it ran at 256.
  expect_clean_error(pneumo("augment-preview --image x.png --out g.png --size 4294967552", d), 2, "augment-preview",
                     "4294967552 is not in 8..4096");
  EXPECT_FALSE(fs::exists(d.file("g.png")));
}

TEST(Cli, ThresholdOutside0To255IsRejected) {
  test::TempDir d;
  write_mask(d.file("m.png"), 4, 4, 3);
  for (const char* t : {"300", "-1", "nan", "1e400"})
    expect_clean_error(pneumo(std::string("rle encode m.png --threshold ") + t, d), 2, "rle encode", "0..255");
  const Result ok = pneumo("rle encode m.png --threshold 0", d);
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "0 3\n");
}

TEST(Cli, DeviceIsOneOptionWithOneSpelling) {
  test::TempDir d;
  for (const char* c : {"bench", "bench-models", "bench-data"})
    expect_clean_error(pneumo(std::string(c) + " --device gpu", d), 2, c, "'gpu' is not auto, cpu, cuda or cuda:N");
  if (!cuda::available())
    expect_clean_error(pneumo("bench-models --device cuda --models tiny_unet_se", d), 1, "bench-models",
                       "no GPU found");
}

// ---- RLE text ------------------------------------------------------------------------------------------

TEST(CliRle, ZeroLengthRunIsRejected) {
  test::TempDir d;
  expect_clean_error(pneumo("rle decode '3 0' --out m.png --height 4 --width 4", d), 1, "rle decode",
                     "zero run length");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
}

TEST(CliRle, MalformedRleIsAClearError) {
  test::TempDir d;
  expect_clean_error(pneumo("rle decode '1 x' --out m.png", d), 1, "rle decode", "non-numeric value 'x'");
  expect_clean_error(pneumo("rle decode '1 2 3' --out m.png", d), 1, "rle decode", "odd number of values");
  expect_clean_error(pneumo("rle decode '10 7' --height 4 --width 4 --out m.png", d), 1, "rle decode", "past the end");
  expect_clean_error(pneumo("rle decode '0 99999999999999999999' --out m.png", d), 1, "rle decode", "is too large");
  expect_clean_error(pneumo("rle decode --out m.png", d), 2, "rle decode", "give the RLE");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
  const Result empty = pneumo("rle decode -1 --out e.png --height 4 --width 4", d);  // "-1" is the empty mask
  EXPECT_EQ(empty.code, 0) << empty.err;
  EXPECT_TRUE(fs::exists(d.file("e.png")));
}

TEST(CliRle, EncodeValidatesEveryMaskBeforePrintingAnyRow) {
  test::TempDir d;
  write_mask(d.file("good.png"), 4, 4, 2);
  test::write_text(d.file("bad.png"), "not a png");
  const Result r = pneumo("rle encode good.png bad.png", d);
  expect_clean_error(r, 1, "rle encode", "bad.png");
  EXPECT_EQ(r.out, "") << "rows were printed before the failure";
  const Result ok = pneumo("rle encode good.png good.png", d);
  EXPECT_EQ(ok.code, 0);
  EXPECT_EQ(ok.out, "good,0 2\ngood,0 2\n");
}

// ---- image files (PNG/JPEG) ----------------------------------------------------------------------------

TEST(CliImage, MissingFile) {
  test::TempDir d;
  expect_clean_error(pneumo("rle encode nothere.png", d), 1, "rle encode", "cannot open image file 'nothere.png'");
  expect_clean_error(pneumo("augment-preview --image nothere.png --out g.png", d), 2, "augment-preview", "nothere.png");
}

TEST(CliImage, EmptyFile) {
  test::TempDir d;
  test::write_text(d.file("empty.png"), "");
  expect_clean_error(pneumo("rle encode empty.png", d), 1, "rle encode", "'empty.png' is empty");
}

TEST(CliImage, TruncatedPng) {
  test::TempDir d;
  write_mask(d.file("full.png"), 64, 64, 100);
  const std::string png = test::read_bytes(d.file("full.png"));
  test::write_text(d.file("cut.png"), png.substr(0, png.size() / 2));
  expect_clean_error(pneumo("rle encode cut.png", d), 1, "rle encode", "cannot decode image 'cut.png'");
}

TEST(CliImage, WrongTypeOfFile) {
  test::TempDir d;
  test::write_text(d.file("notes.png"), "ImageId,EncodedPixels\nx,-1\n");
  expect_clean_error(pneumo("rle encode notes.png", d), 1, "rle encode", "cannot decode image 'notes.png'");
  expect_clean_error(pneumo("rle encode .", d), 1, "rle encode", "'.' is a folder");
}

TEST(CliImage, HostileDimensionsAreRefusedBeforeAllocating) {
  test::TempDir d;
  // stb itself refuses more than 2^30 bytes; under that, pneumo refuses more than 16384 a side or 2^26 pixels.
  test::write_text(d.file("huge.png"), png_claiming(30000, 30000));
  expect_clean_error(pneumo("rle encode huge.png", d), 1, "rle encode", "30000x30000 pixels: pneumo reads at most");
  test::write_text(d.file("tall.png"), png_claiming(16, 59139));
  expect_clean_error(pneumo("rle encode tall.png", d), 1, "rle encode", "16x59139 pixels");
  test::write_text(d.file("square.png"), png_claiming(8193, 8193));
  expect_clean_error(pneumo("rle encode square.png", d), 1, "rle encode", "(8192x8192) in all");
  test::write_text(d.file("huger.png"), png_claiming(1u << 24, 1u << 24));
  expect_clean_error(pneumo("rle encode huger.png", d), 1, "rle encode", "cannot decode image 'huger.png'");
  test::write_text(d.file("zero.png"), png_claiming(0, 5));
  expect_clean_error(pneumo("rle encode zero.png", d), 1, "rle encode", "cannot decode image 'zero.png'");
}

TEST(CliImage, MaskOfAnotherSizeThanTheImage) {
  test::TempDir d;
  write_mask(d.file("x.png"), 32, 32, 1);
  write_mask(d.file("m.png"), 16, 32, 1);
  expect_clean_error(pneumo("augment-preview --image x.png --mask m.png --out g.png --size 32", d), 1,
                     "augment-preview", "m.png is 16x32 but image x.png is 32x32");
  EXPECT_FALSE(fs::exists(d.file("g.png")));
}

// ---- RLE CSV files -------------------------------------------------------------------------------------

TEST(CliCsv, MissingFile) {
  test::TempDir d;
  expect_clean_error(pneumo("rle decode --csv nothere.csv --id a --out m.png", d), 2, "rle decode", "nothere.csv");
  expect_clean_error(pneumo("folds --csv nothere.csv --out f", d), 2, "folds", "nothere.csv");
}

TEST(CliCsv, EmptyFile) {
  test::TempDir d;
  test::write_text(d.file("empty.csv"), "");
  expect_clean_error(pneumo("folds --csv empty.csv --out f", d), 1, "folds", "empty.csv");
  EXPECT_FALSE(fs::exists(d.file("f")));
}

TEST(CliCsv, TruncatedRow) {
  test::TempDir d;
  test::write_text(d.file("cut.csv"), std::string(kCsvHeader) + "a,1 2\nb,3 4\nc");
  expect_clean_error(pneumo("rle decode --csv cut.csv --id a --out m.png", d), 1, "rle decode", "cut.csv");
  test::write_text(d.file("odd.csv"), std::string(kCsvHeader) + "a,1 2\nb,3");
  expect_clean_error(pneumo("rle decode --csv odd.csv --id a --out m.png", d), 1, "rle decode", "odd.csv");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
}

TEST(CliCsv, WrongTypeOfFile) {
  test::TempDir d;
  write_mask(d.file("m.png"), 8, 8, 3);
  fs::copy_file(d.file("m.png"), d.file("labels.csv"));
  expect_clean_error(pneumo("folds --csv labels.csv --out f", d), 1, "folds", "labels.csv");
  EXPECT_FALSE(fs::exists(d.file("f")));
}

TEST(CliCsv, HostileValues) {
  test::TempDir d;
  test::write_text(d.file("big.csv"), std::string(kCsvHeader) + "a,1 99999999999999\n");
  expect_clean_error(pneumo("rle decode --csv big.csv --id a --out m.png", d), 1, "rle decode", "big.csv");
  test::write_text(d.file("ok.csv"), std::string(kCsvHeader) + "a,1 2\n");
  expect_clean_error(pneumo("rle decode --csv ok.csv --id zz --out m.png", d), 1, "rle decode", "zz");
  EXPECT_FALSE(fs::exists(d.file("m.png")));
}

// ---- folds ---------------------------------------------------------------------------------------------

TEST(CliFolds, SegmentationNeedsKPositives) {
  test::TempDir d;
  // 1 positive + 5 negatives: 6 images make 5 classification folds, but segmentation folds hold positives only.
  test::write_text(d.file("l.csv"), std::string(kCsvHeader) + "a,-1\nb,-1\nc,1 2\nd,-1\ne,-1\nf,-1\n");
  expect_clean_error(pneumo("folds --csv l.csv --out seg --task segmentation --k 5", d), 1, "folds",
                     "1 positive images");
  EXPECT_FALSE(fs::exists(d.file("seg")));
  const Result ok = pneumo("folds --csv l.csv --out cls --task classification --k 5", d);
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_TRUE(fs::exists(d.file("cls/fold4/val.txt")));
}

TEST(CliFolds, MaskFolderFaults) {
  test::TempDir d;
  expect_clean_error(pneumo("folds --masks nothere --out f", d), 2, "folds", "nothere");
  fs::create_directories(d.file("empty"));
  expect_clean_error(pneumo("folds --masks empty --out f", d), 1, "folds", "empty");
  expect_clean_error(pneumo("folds --csv a.csv --masks empty --out f", d), 2, "folds", "");
  expect_clean_error(pneumo("folds --out f", d), 2, "folds", "exactly one of --csv");
  EXPECT_FALSE(fs::exists(d.file("f")));
}

// ---- safetensors weights -------------------------------------------------------------------------------

TEST(CliWeights, MissingEmptyTruncatedWrongTypeAndHostileFiles) {
  test::TempDir d;
  const std::string cmd = "import-weights --model tiny_unet_se --weights ";
  expect_clean_error(pneumo(cmd + "nothere.safetensors", d), 2, "import-weights", "nothere.safetensors");
  test::write_text(d.file("empty.safetensors"), "");
  expect_clean_error(pneumo(cmd + "empty.safetensors", d), 1, "import-weights", "empty.safetensors");
  // Header length 40, then a cut-off header.
  test::write_text(d.file("cut.safetensors"), std::string("\x28\0\0\0\0\0\0\0{\"a\":{\"dtype\"", 20));
  expect_clean_error(pneumo(cmd + "cut.safetensors", d), 1, "import-weights", "cut.safetensors");
  write_mask(d.file("m.png"), 8, 8, 3);
  fs::copy_file(d.file("m.png"), d.file("png.safetensors"));
  expect_clean_error(pneumo(cmd + "png.safetensors", d), 1, "import-weights", "png.safetensors");
  // A header that claims 2^62 bytes, and a tensor whose shape claims far more data than the file has.
  test::write_text(d.file("huge.safetensors"), std::string("\0\0\0\0\0\0\0\x40{}", 10));
  expect_clean_error(pneumo(cmd + "huge.safetensors", d), 1, "import-weights", "huge.safetensors");
  const std::string header = R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  test::write_text(d.file("shape.safetensors"), file + header + std::string(16, '\0'));
  expect_clean_error(pneumo(cmd + "shape.safetensors", d), 1, "import-weights", "shape.safetensors");
  expect_clean_error(pneumo("import-weights --model nope --weights shape.safetensors", d), 1, "import-weights",
                     "unknown model 'nope'");
}

// ---- bench-models: detail line and the per-op profile (issue 12 part 2 item 1) -------------------------

TEST(CliBenchModels, ProfilePrintsTheOpTableAgainstWallTime) {
  test::TempDir d;
  const Result r = pneumo(
      "bench-models --device cpu --models tiny_unet_se --size 64 --iters 1 --profile --profile-top 8 --dgrad-accumulate", d);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("bench-models tiny_unet_se "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bench-models-detail tiny_unet_se step_ms "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" enqueue_ms "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("data gradients summed in the convolution's pass"), std::string::npos) << r.out;
  // The residual junctions and skips of the UNet: the convolutions summed some gradients.
  const size_t at = r.out.find(" grad_sums_in_conv ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::atoi(r.out.c_str() + at + std::strlen(" grad_sums_in_conv ")), 0) << r.out;
  EXPECT_NE(r.out.find("bench-models profile tiny_unet_se (one step, f32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("conv2d_"), std::string::npos) << "convolutions lead a CPU step:\n" << r.out;
  EXPECT_NE(r.out.find(" bwd "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("more rows)"), std::string::npos) << "top 8 of many rows:\n" << r.out;
  EXPECT_NE(r.out.find("gap (wall - ops)"), std::string::npos) << r.out;
}

TEST(CliBenchModels, InferModeTimesTheForwardInImagesPerSecond) {
  test::TempDir d;
  const Result r = pneumo("bench-models --device cpu --models tiny_unet_se --size 64 --batch 2 --iters 1 --mode infer", d);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("inference (eval mode, no gradients, forward only), batch 2"), std::string::npos) << r.out;
  const std::string key = "bench-models-infer tiny_unet_se images_per_s ";
  const size_t at = r.out.find(key);
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::atof(r.out.c_str() + at + key.size()), 0.0) << r.out;
  EXPECT_NE(r.out.find(" batch_ms "), std::string::npos) << r.out;
  expect_clean_error(pneumo("bench-models --device cpu --models tiny_unet_se --mode infer --optimizer adam", d), 2,
                     "bench-models", "not with --mode infer");
}

TEST(CliBenchModels, CudaGraphNeedsCuda) {
  test::TempDir d;
  expect_clean_error(pneumo("bench-models --device cpu --models tiny_unet_se --cuda-graph", d), 2, "bench-models",
                     "--cuda-graph needs --device cuda");
}

}  // namespace
}  // namespace pneumo
