// Competition RLE: parsing/formatting text, decoding to masks and encoding from masks, one at a time on the
// CPU or batched on either backend (kernels/cpu|cuda/data_kernels). Every error names the caller's context.
#include "train/rle.h"

#include <algorithm>
#include <charconv>

#include "kernels/check.h"
#include "kernels/cpu/data_kernels.h"
#include "kernels/cuda/data_kernels.h"
#include "tensor/cuda_runtime.h"

namespace pneumo::train {

namespace {

std::string where(const std::string& context) { return context.empty() ? std::string("RLE") : context; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Sum of the run lengths = the number of foreground pixels.
constexpr int64_t kMaxValue = int64_t{1} << 40;

}  // namespace

std::vector<RleRun> parse_rle(const std::string& text, const std::string& context) {
  std::vector<RleRun> runs;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end && is_space(*p)) ++p;
  const char* last = end;
  while (last > p && is_space(last[-1])) --last;
  if (p == last) return runs;
  if (last - p == 2 && p[0] == '-' && p[1] == '1') return runs;
  int64_t pos = 0;
  int64_t value_index = 0;
  int64_t pending_start = 0;
  while (p < last) {
    const char* tok = p;
    while (p < last && !is_space(*p)) ++p;
    const std::string_view token(tok, static_cast<size_t>(p - tok));
    while (p < last && is_space(*p)) ++p;
    int64_t v = 0;
    auto res = std::from_chars(token.data(), token.data() + token.size(), v);
    if (res.ec != std::errc() || res.ptr != token.data() + token.size()) {
      if (res.ec == std::errc::result_out_of_range && res.ptr == token.data() + token.size())
        PNEUMO_FAIL(where(context), ": value '", token, "' at position ", value_index + 1, " is too large");
      if (!token.empty() && token[0] == '-' && res.ec == std::errc() && res.ptr == token.data() + token.size())
        PNEUMO_FAIL(where(context), ": negative value '", token, "' at position ", value_index + 1, " of the RLE");
      PNEUMO_FAIL(where(context), ": non-numeric value '", token, "' at position ", value_index + 1, " of the RLE");
    }
    if (v < 0) PNEUMO_FAIL(where(context), ": negative value '", token, "' at position ", value_index + 1, " of the RLE");
    if (v > kMaxValue) PNEUMO_FAIL(where(context), ": value '", token, "' at position ", value_index + 1, " is too large");
    if (value_index % 2 == 0) {
      pending_start = v;
    } else {
      if (v == 0) PNEUMO_FAIL(where(context), ": zero run length at position ", value_index + 1, " of the RLE");
      pos += pending_start;
      runs.push_back(RleRun{pos, v});
      pos += v;
      if (pos > kMaxValue) PNEUMO_FAIL(where(context), ": RLE runs past pixel ", kMaxValue);
    }
    ++value_index;
  }
  if (value_index % 2 != 0)
    PNEUMO_FAIL(where(context), ": odd number of values (", value_index, ") in the RLE; expected start/length pairs");
  return runs;
}

void check_runs_fit(const std::vector<RleRun>& runs, int height, int width, const std::string& context) {
  PNEUMO_CHECK(height > 0 && width > 0, where(context), ": bad image size ", height, "x", width);
  const int64_t n = static_cast<int64_t>(height) * width;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RleRun& r = runs[i];
    if (r.start < 0 || r.length < 0 || r.start + r.length > n)
      PNEUMO_FAIL(where(context), ": run ", i + 1, " (pixels ", r.start, " to ", r.start + r.length - 1,
                  ") goes past the end of the ", height, "x", width, " image (", n, " pixels)");
  }
}

std::vector<RleRun> normalize_runs(std::vector<RleRun> runs) {
  std::sort(runs.begin(), runs.end(), [](const RleRun& a, const RleRun& b) { return a.start < b.start; });
  std::vector<RleRun> out;
  out.reserve(runs.size());
  for (const RleRun& r : runs) {
    if (r.length <= 0) continue;
    if (!out.empty() && r.start <= out.back().start + out.back().length) {
      out.back().length = std::max(out.back().length, r.start + r.length - out.back().start);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::string format_rle(const std::vector<RleRun>& runs) {
  if (runs.empty()) return "-1";
  std::string s;
  s.reserve(runs.size() * 10);
  char buf[24];
  int64_t prev_end = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RleRun& r = runs[i];
    PNEUMO_CHECK(r.start >= prev_end && r.length > 0, "format_rle: runs must be sorted, disjoint and non-empty (run ",
                 i + 1, " starts at ", r.start, " after the previous ended at ", prev_end, ")");
    if (i) s.push_back(' ');
    auto res = std::to_chars(buf, buf + sizeof buf, r.start - prev_end);
    s.append(buf, res.ptr);
    s.push_back(' ');
    res = std::to_chars(buf, buf + sizeof buf, r.length);
    s.append(buf, res.ptr);
    prev_end = r.start + r.length;
  }
  return s;
}

void paint_runs(const std::vector<RleRun>& runs, aug::Image& mask, const std::string& context) {
  PNEUMO_CHECK(mask.channels == 1, where(context), ": masks have 1 channel, got ", mask.channels);
  check_runs_fit(runs, mask.height, mask.width, context);
  static_assert(sizeof(RleRun) == 2 * sizeof(int64_t), "RleRun must be two int64 for the kernels");
  kernels::cpu::rle_paint(reinterpret_cast<const int64_t*>(runs.data()), static_cast<int64_t>(runs.size()),
                          mask.height, mask.width, 255, mask.data());
}

aug::Image rle_decode(const std::string& text, int height, int width, const std::string& context) {
  aug::Image mask(height, width, 1, 0);
  paint_runs(parse_rle(text, context), mask, context);
  return mask;
}

std::vector<RleRun> mask_runs(const aug::Image& mask, float threshold) {
  PNEUMO_CHECK(mask.channels == 1, "mask_runs: masks have 1 channel, got ", mask.channels);
  PNEUMO_CHECK(mask.height > 0 && mask.width > 0, "mask_runs: empty mask");
  std::vector<RleRun> runs(static_cast<size_t>((mask.pixel_count() + 1) / 2));
  const int64_t n = kernels::cpu::rle_runs(DType::U8, mask.data(), mask.height, mask.width, threshold,
                                           reinterpret_cast<int64_t*>(runs.data()));
  runs.resize(static_cast<size_t>(n));
  return runs;
}

std::vector<RleRun> mask_runs(const float* probabilities, int height, int width, float threshold) {
  PNEUMO_CHECK(height > 0 && width > 0, "mask_runs: bad size ", height, "x", width);
  std::vector<RleRun> runs(static_cast<size_t>((static_cast<int64_t>(height) * width + 1) / 2));
  const int64_t n = kernels::cpu::rle_runs(DType::F32, probabilities, height, width, threshold,
                                           reinterpret_cast<int64_t*>(runs.data()));
  runs.resize(static_cast<size_t>(n));
  return runs;
}

std::string rle_encode(const aug::Image& mask, float threshold) { return format_rle(mask_runs(mask, threshold)); }
std::string rle_encode(const float* probabilities, int height, int width, float threshold) {
  return format_rle(mask_runs(probabilities, height, width, threshold));
}

namespace {

void batch_dims(const Tensor& masks, int64_t& n, int64_t& h, int64_t& w) {
  check_defined("batch_runs", masks);
  const Shape& s = masks.shape();
  PNEUMO_CHECK(s.size() == 3 || (s.size() == 4 && s[3] == 1), "batch_runs: masks must be [N, H, W] or [N, H, W, 1], got ",
               shape_str(s));
  n = s[0];
  h = s[1];
  w = s[2];
}

}  // namespace

std::vector<std::vector<RleRun>> batch_runs(const Tensor& masks, float threshold) {
  int64_t n, h, w;
  batch_dims(masks, n, h, w);
  std::vector<std::vector<RleRun>> out(static_cast<size_t>(n));
  const int64_t hw = h * w;
  if (masks.device().is_cpu()) {
    const char* base = static_cast<const char*>(masks.raw_data());
    const size_t esize = masks.element_size();
    const DType dt = masks.dtype();
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> buf(static_cast<size_t>(2 * ((hw + 1) / 2)));
      const int64_t k = kernels::cpu::rle_runs(dt, base + static_cast<size_t>(i * hw) * esize, h, w, threshold, buf.data());
      auto& runs = out[static_cast<size_t>(i)];
      runs.resize(static_cast<size_t>(k));
      for (int64_t r = 0; r < k; ++r) runs[static_cast<size_t>(r)] = RleRun{buf[2 * r], buf[2 * r + 1]};
    }
    return out;
  }
#if PNEUMO_WITH_CUDA
  const int device = masks.device().index;
  // Chunks bound the worst-case boundary buffer (4 bytes per pixel + 1 per mask).
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(n, (int64_t{256} << 20) / (4 * (hw + 1))));
  const int64_t max_chunk = std::min(chunk, n);
  Tensor workspace = Tensor::empty({static_cast<int64_t>(kernels::cuda::rle_boundaries_workspace_bytes(max_chunk, h, w))},
                                   DType::U8, masks.device());
  Tensor offsets = Tensor::empty({max_chunk + 1}, DType::I64, masks.device());
  Tensor bounds = Tensor::empty({max_chunk * (hw + 1)}, DType::I32, masks.device());
  std::vector<int64_t> host_offsets;
  std::vector<uint32_t> host_bounds;
  const Tensor flat = masks.reshape({n, h, w});
  for (int64_t c0 = 0; c0 < n; c0 += max_chunk) {
    const int64_t cn = std::min(max_chunk, n - c0);
    const Tensor part = flat.slice(c0, c0 + cn);
    kernels::cuda::rle_boundaries(part.dtype(), part.raw_data(), cn, h, w, threshold, workspace.raw_data(),
                                  offsets.data<int64_t>(), reinterpret_cast<uint32_t*>(bounds.raw_data()),
                                  cuda::current_stream(device));
    host_offsets.resize(static_cast<size_t>(cn + 1));
    cuda::memcpy_d2h(host_offsets.data(), offsets.raw_data(), host_offsets.size() * sizeof(int64_t), device);
    const int64_t total = host_offsets.back();
    host_bounds.resize(static_cast<size_t>(total));
    if (total > 0) cuda::memcpy_d2h(host_bounds.data(), bounds.raw_data(), static_cast<size_t>(total) * 4, device);
    for (int64_t i = 0; i < cn; ++i) {
      const int64_t b0 = host_offsets[static_cast<size_t>(i)], b1 = host_offsets[static_cast<size_t>(i + 1)];
      PNEUMO_CHECK((b1 - b0) % 2 == 0, "batch_runs: odd boundary count from the GPU for mask ", c0 + i);
      auto& runs = out[static_cast<size_t>(c0 + i)];
      runs.resize(static_cast<size_t>((b1 - b0) / 2));
      for (int64_t r = 0; r < (b1 - b0) / 2; ++r) {
        const int64_t s = host_bounds[static_cast<size_t>(b0 + 2 * r)], e = host_bounds[static_cast<size_t>(b0 + 2 * r + 1)];
        runs[static_cast<size_t>(r)] = RleRun{s, e - s};
      }
    }
  }
  return out;
#else
  PNEUMO_FAIL("batch_runs: masks are on ", masks.device().str(), " but this build has no CUDA");
#endif
}

std::vector<std::string> batch_encode(const Tensor& masks, float threshold) {
  std::vector<std::vector<RleRun>> runs = batch_runs(masks, threshold);
  std::vector<std::string> out(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) out[i] = format_rle(runs[i]);
  return out;
}

Tensor batch_decode(const std::vector<std::vector<RleRun>>& runs, int height, int width, Device device) {
  const int64_t n = static_cast<int64_t>(runs.size());
  PNEUMO_CHECK(height > 0 && width > 0, "batch_decode: bad size ", height, "x", width);
  std::vector<int64_t> offsets(static_cast<size_t>(n + 1), 0);
  std::vector<RleRun> all;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<RleRun> norm = normalize_runs(runs[static_cast<size_t>(i)]);
    check_runs_fit(norm, height, width, "batch_decode mask " + std::to_string(i));
    all.insert(all.end(), norm.begin(), norm.end());
    offsets[static_cast<size_t>(i + 1)] = static_cast<int64_t>(all.size());
  }
  if (device.is_cpu()) {
    Tensor out = Tensor::zeros({n, height, width}, DType::U8, device);
    uint8_t* p = out.data<uint8_t>();
    const int64_t hw = static_cast<int64_t>(height) * width;
    for (int64_t i = 0; i < n; ++i)
      kernels::cpu::rle_paint(reinterpret_cast<const int64_t*>(all.data()) + 2 * offsets[static_cast<size_t>(i)],
                              offsets[static_cast<size_t>(i + 1)] - offsets[static_cast<size_t>(i)], height, width, 255,
                              p + i * hw);
    return out;
  }
#if PNEUMO_WITH_CUDA
  Tensor out = Tensor::empty({n, height, width}, DType::U8, device);
  if (n == 0) return out;
  Tensor d_runs = Tensor::empty({std::max<int64_t>(1, 2 * static_cast<int64_t>(all.size()))}, DType::I64, device);
  Tensor d_offsets = Tensor::empty({n + 1}, DType::I64, device);
  if (!all.empty()) cuda::memcpy_h2d(d_runs.raw_data(), all.data(), all.size() * sizeof(RleRun), device.index);
  cuda::memcpy_h2d(d_offsets.raw_data(), offsets.data(), offsets.size() * sizeof(int64_t), device.index);
  kernels::cuda::rle_paint(d_runs.data<int64_t>(), d_offsets.data<int64_t>(), n, height, width, out.data<uint8_t>(),
                           cuda::current_stream(device.index));
  // The host vectors die on return: the asynchronous copies must be done before they do.
  cuda::synchronize(device.index);
  return out;
#else
  PNEUMO_FAIL("batch_decode: device ", device.str(), " requested but this build has no CUDA");
#endif
}

}  // namespace pneumo::train
