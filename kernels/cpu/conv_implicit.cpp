// See conv_implicit.h.
#include "kernels/cpu/conv_implicit.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/profile.h"

namespace pneumo::kernels::cpu {
namespace {

constexpr int64_t kKBlock = 256;  // GEMM depth per block: a packed B panel (256 x 32 floats) fits L1
// Positions per block of the weight gradient: its B panel (128 x 32 floats) and the A columns a register
// tile reads (128 rows of dy, a cache line each) fit L1 together; 256 spilled it (5-10 % slower, measured).
constexpr int64_t kWBlock = 128;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One register tile: acc[i][.] = sum over taps t and k < kc of a_t(i, k) * b(k, .), with
// a_t(i, k) = a[aoff[t] + i * ras + k * kas] and row k of b at b + k * ldb (taps continue along b).
// Then rows i with crow[i] != nullptr get crow[i][j0 + j] (+)= acc[i][j] for j < cols.
// kRas != 0: ras is that compile-time constant, so the MR rows are constant offsets from one pointer. With a
// run-time ras, GCC keeps a pointer per row and spills 28 of them: a reload per FMA made the 28x16 tile
// load-bound (80 vs 120+ GFLOP/s per core, measured).
template <int MR, int NV, int kRas = 0>
__attribute__((target("avx512f"))) void micro(int nt, const int64_t* aoff, int64_t kc, const float* a, int64_t ras,
                                               int64_t kas, const float* b, int64_t ldb, float* const* crow,
                                               int64_t j0, int64_t cols, bool accumulate) {
  if (kRas != 0) ras = kRas;
  __m512 acc[MR][NV];
#pragma GCC unroll 28
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int t = 0; t < nt; ++t) {
    const float* at = a + aoff[t];
    for (int64_t k = 0; k < kc; ++k, b += ldb) {
      __m512 bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
      const float* ak = at + k * kas;
#pragma GCC unroll 28
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(ak[i * ras]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
  }
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) {
    const int64_t lanes = std::clamp<int64_t>(cols - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((1u << lanes) - 1u);
  }
#pragma GCC unroll 28
  for (int i = 0; i < MR; ++i) {
    if (crow[i] == nullptr) continue;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = crow[i] + j0 + 16 * v;
      __m512 r = acc[i][v];
      if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask[v], p));
      _mm512_mask_storeu_ps(p, mask[v], r);
    }
  }
}

// The geometry of one stride-1 convolution as seen by the drivers: input [n, h, w, c] zero-padded by
// (pt, pb, pl, pr), taps r x s with dilation (dh, dw), output [n, oh, ow, nout].
struct Geom {
  int64_t n, h, w, c, pt, pb, pl, pr, r, s, dh, dw, oh, ow, nout;
  int64_t wp() const { return w + pl + pr; }
  int64_t hp() const { return h + pt + pb; }
  int64_t wide() const { return oh * wp(); }  // output positions per sample in the padded row pitch
  // Pixels per sample in the padded buffer: whole rows, with room below for a tile's overhang of up to
  // `slack` rows of the wide range plus the widest tap offset.
  int64_t sample_pixels(int64_t slack) const { return (hp() + ceil_div(slack + (s - 1) * dw, wp())) * wp(); }
  int64_t tap_pixels(int64_t t) const { return (t / s) * dh * wp() + (t % s) * dw; }
};

// dst[n][sample_pixels][c]: the input at (pt, pl) in rows of wp pixels, zero elsewhere. blocked (c a
// multiple of 16): dst[c / 16][n][sample_pixels][16] instead, so a tile's pixels are 16 floats apart
// whatever c is (a compile-time stride in the micro-kernel, as in oneDNN's nChw16c layout).
void pad_input(const Geom& g, const float* src, int64_t pixels, float* dst, bool blocked = false) {
  const int64_t rows = pixels / g.wp(), wp = g.wp(), c = g.c, cblocks = c / 16;
#pragma omp parallel for schedule(static) if (threads_here() > 1 && worth_parallel(g.n * pixels * c))
  for (int64_t nr = 0; nr < g.n * rows; ++nr) {
    const int64_t nn = nr / rows, ih = nr % rows - g.pt;
    const bool inside = ih >= 0 && ih < g.h;
    if (!blocked) {
      float* d = dst + nr * wp * c;
      if (!inside) {
        std::memset(d, 0, sizeof(float) * wp * c);
        continue;
      }
      std::memset(d, 0, sizeof(float) * g.pl * c);
      std::memcpy(d + g.pl * c, src + (nn * g.h + ih) * g.w * c, sizeof(float) * g.w * c);
      std::memset(d + (g.pl + g.w) * c, 0, sizeof(float) * g.pr * c);
      continue;
    }
    for (int64_t cb = 0; cb < cblocks; ++cb) {
      float* d = dst + ((cb * g.n + nn) * pixels + (nr % rows) * wp) * 16;
      if (!inside) {
        std::memset(d, 0, sizeof(float) * wp * 16);
        continue;
      }
      std::memset(d, 0, sizeof(float) * g.pl * 16);
      const float* srow = src + (nn * g.h + ih) * g.w * c + cb * 16;
      for (int64_t x = 0; x < g.w; ++x) std::memcpy(d + (g.pl + x) * 16, srow + x * c, sizeof(float) * 16);
      std::memset(d + (g.pl + g.w) * 16, 0, sizeof(float) * g.pr * 16);
    }
  }
}

// A block of the GEMM depth: taps [t0, t0 + nt) times input channels [c0, c0 + cc).
struct KBlock {
  int64_t t0, nt, c0, cc;
};
std::vector<KBlock> k_blocks(int64_t taps, int64_t c) {
  std::vector<KBlock> out;
  if (c <= kKBlock) {  // several whole taps per block, balanced
    const int64_t nb = ceil_div(taps, std::max<int64_t>(1, kKBlock / c)), per = ceil_div(taps, nb);
    for (int64_t t = 0; t < taps; t += per) out.push_back({t, std::min(per, taps - t), 0, c});
  } else {  // one tap per block, its channels split evenly
    const int64_t nb = ceil_div(c, kKBlock), per = c % 16 == 0 ? ceil_div(ceil_div(c, nb), 16) * 16 : ceil_div(c, nb);
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c0 = 0; c0 < c; c0 += per) out.push_back({t, 1, c0, std::min(per, c - c0)});
  }
  return out;
}

// y[n][oh][ow][j] = sum_{tap, ci} xpad[n][oh*wp + ow + tap_pixels(tap)][ci] * B(tap * c + ci, j), with
// B(k, j) = b[j * ldb + k] (b_trans) or b[k * ldb + j].
template <int MR, int NV>
void shifted_forward(const Geom& g, const float* x, const float* b, bool b_trans, int64_t ldb, float* y) {
  constexpr int64_t NR = 16 * NV;
  const int64_t taps = g.r * g.s, c = g.c, N = g.nout, nstrips = ceil_div(N, NR);
  const std::vector<KBlock> blocks = k_blocks(taps, c);
  std::vector<int64_t> block_at(blocks.size() + 1, 0);  // offsets of each block's packed strips
  for (size_t i = 0; i < blocks.size(); ++i) block_at[i + 1] = block_at[i] + blocks[i].nt * blocks[i].cc * nstrips * NR;
  const int threads = threads_here();

  // Pack B once for all samples: [block][strip][tap, channel][NR], zero past N.
  HostBuffer<float> bp(block_at.back());
  const int64_t npanels = static_cast<int64_t>(blocks.size()) * nstrips;
#pragma omp parallel for schedule(static) if (threads > 1 && worth_parallel(block_at.back()))
  for (int64_t q = 0; q < npanels; ++q) {
    const KBlock& kb = blocks[q / nstrips];
    const int64_t st = q % nstrips, j0 = st * NR, cols = std::min(NR, N - j0);
    float* d = bp.data() + block_at[q / nstrips] + st * kb.nt * kb.cc * NR;
    for (int64_t tt = 0; tt < kb.nt; ++tt)
      for (int64_t kk = 0; kk < kb.cc; ++kk, d += NR) {
        const int64_t k = (kb.t0 + tt) * c + kb.c0 + kk;
        for (int64_t j = 0; j < cols; ++j) d[j] = b_trans ? b[(j0 + j) * ldb + k] : b[k * ldb + j0 + j];
        std::fill(d + cols, d + NR, 0.f);
      }
  }

  // Blocked: A's pixels are 16 floats apart (a compile-time stride) and its segments 16 channels deep.
  const bool blocked = c % 16 == 0;
  const auto tile = blocked ? micro<MR, NV, 16> : micro<MR, NV>;
  const int64_t pitch = blocked ? 16 : c;
  const int64_t pixels = g.sample_pixels(MR), wide = g.wide(), wp = g.wp();
  HostBuffer<float> xp(g.n * pixels * c);
  pad_input(g, x, pixels, xp.data(), blocked);

  // Work items: (sample, run of tiles). Runs keep the A rows they read (tile rows plus the taps' reach,
  // times a block's channels) within about 1 MiB, and there are enough of them for the threads.
  const int64_t tiles = ceil_div(wide, MR);
  int64_t run = ceil_div(tiles, std::max<int64_t>(1, ceil_div(2 * threads, g.n)));
  run = std::max<int64_t>(1, std::min(run, (int64_t{1} << 18) / (MR * std::min(c, kKBlock))));
  const int64_t runs = ceil_div(tiles, run);
  // A's segments per block: (tap, 16-channel block) when blocked, else taps; each kseg deep, at offsets from
  // the tile's first row (its sample's pixel in channel block 0).
  std::vector<std::vector<int64_t>> offs(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i)
    for (int64_t tt = 0; tt < blocks[i].nt; ++tt) {
      const int64_t tap = g.tap_pixels(blocks[i].t0 + tt);
      if (!blocked) {
        offs[i].push_back(tap * c + blocks[i].c0);
        continue;
      }
      for (int64_t cb = blocks[i].c0 / 16; cb < (blocks[i].c0 + blocks[i].cc) / 16; ++cb)
        offs[i].push_back((cb * g.n * pixels + tap) * 16);
    }

#pragma omp parallel if (threads > 1 && worth_parallel(g.n * wide * N * taps * c))
  {
    std::vector<float*> crow(run * MR);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < g.n * runs; ++item) {
      const int64_t nn = item / runs, i0 = (item % runs) * run * MR, i1 = std::min(tiles * MR, i0 + run * MR);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t row = i / wp, col = i % wp;
        crow[i - i0] = i < wide && col < g.ow ? y + ((nn * g.oh + row) * g.ow + col) * N : nullptr;
      }
      const float* xs = xp.data() + nn * pixels * pitch;
      for (size_t bi = 0; bi < blocks.size(); ++bi) {
        const KBlock& kb = blocks[bi];
        for (int64_t st = 0; st < nstrips; ++st) {
          const float* panel = bp.data() + block_at[bi] + st * kb.nt * kb.cc * NR;
          for (int64_t i = i0; i < i1; i += MR)
            tile(static_cast<int>(offs[bi].size()), offs[bi].data(), blocked ? 16 : kb.cc, xs + i * pitch, pitch, 1,
                 panel, NR, crow.data() + (i - i0), st * NR, std::min(NR, N - st * NR), bi > 0);
        }
      }
    }
  }
}

// dw[co][tap][ci] = sum_n sum_{valid positions p} dy[n][p][co] * xpad[n][wide(p) + tap_pixels(tap)][ci].
// M = output channels (tiles of MR), N = taps x input channels (strips of NR inside one tap, read in place
// from the padded input), K = the wide positions of each sample (dy copied into that pitch, zero at the
// junk columns). Threads own runs of strips: each dw element is summed by one thread, samples and
// positions in order.
template <int MR, int NV>
void shifted_weight(const Geom& g, const float* dy, const float* x, float* dw) {
  constexpr int64_t NR = 16 * NV;
  const int64_t taps = g.r * g.s, c = g.c, K = g.nout, wide = g.wide(), wp = g.wp();
  const int64_t pixels = g.sample_pixels(0), per_tap = ceil_div(c, NR), nstrips = taps * per_tap, mtiles = ceil_div(K, MR);
  const int threads = threads_here();
  HostBuffer<float> xp(g.n * pixels * c + NR);  // + NR: a last partial strip's loads stay inside
  pad_input(g, x, pixels, xp.data());
  HostBuffer<float> dyw(g.n * wide * K + MR);  // + MR: a last partial tile's loads stay inside
#pragma omp parallel for schedule(static) if (threads > 1 && worth_parallel(g.n * wide * K))
  for (int64_t nr = 0; nr < g.n * g.oh; ++nr) {
    float* d = dyw.data() + nr * wp * K;
    std::memcpy(d, dy + nr * g.ow * K, sizeof(float) * g.ow * K);
    std::memset(d + g.ow * K, 0, sizeof(float) * (wp - g.ow) * K);
  }
  const int64_t ldw = taps * c;
  const int64_t items = std::min(nstrips, std::max<int64_t>(1, 4 * static_cast<int64_t>(threads)));
  const int64_t zero = 0;
#pragma omp parallel if (threads > 1 && worth_parallel(g.n * wide * K * taps * c))
  {
    std::vector<float*> crow(mtiles * MR);
    std::vector<float> panel(kWBlock * NR);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t s0 = item * nstrips / items, s1 = (item + 1) * nstrips / items;
      for (int64_t nn = 0; nn < g.n; ++nn)
        for (int64_t k0 = 0; k0 < wide; k0 += kWBlock) {
          const int64_t kc = std::min(kWBlock, wide - k0);
          const float* a = dyw.data() + (nn * wide + k0) * K;
          for (int64_t st = s0; st < s1; ++st) {
            const int64_t t = st / per_tap, c0 = (st % per_tap) * NR;
            const float* b = xp.data() + (nn * pixels + k0 + g.tap_pixels(t)) * c + c0;
            int64_t ldb = c;
            if (c >= 1024) {  // rows 4 KiB or more apart: a page each; a contiguous copy spares the TLB
              for (int64_t k = 0; k < kc; ++k) std::memcpy(panel.data() + k * NR, b + k * c, sizeof(float) * NR);
              b = panel.data();
              ldb = NR;
            }
            for (int64_t m = 0; m < mtiles * MR; ++m) crow[m] = m < K ? dw + m * ldw + t * c + c0 : nullptr;
            for (int64_t m0 = 0; m0 < K; m0 += MR)
              micro<MR, NV, 1>(1, &zero, kc, a + m0, 1, K, b, ldb, crow.data() + m0, 0, std::min(NR, c - c0),
                               nn > 0 || k0 > 0);
          }
        }
    }
  }
}

bool enabled() {
  static const bool on = [] {
    const char* e = std::getenv("PNEUMO_CONV_IMPLICIT");
    return !(e != nullptr && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// PNEUMO_CPU_PROFILE=shapes: one row per pass and shape.
const char* label(const char* pass, const ConvShape& cs) {
  if (!profile_shapes()) return pass;
  char b[128];
  std::snprintf(b, sizeof(b), "%s %lldx%lldx%lldx%lld->%lld %lldx%lld", pass, static_cast<long long>(cs.n),
                static_cast<long long>(cs.h), static_cast<long long>(cs.w), static_cast<long long>(cs.c),
                static_cast<long long>(cs.k), static_cast<long long>(cs.r), static_cast<long long>(cs.s));
  return profile_label(b);
}

Geom forward_geom(const ConvShape& cs) {
  return {cs.n, cs.h, cs.w, cs.c, cs.pad_top, cs.pad_bottom, cs.pad_left, cs.pad_right, cs.r, cs.s, cs.dilation_h,
          cs.dilation_w, cs.oh, cs.ow, cs.k};
}

}  // namespace

bool implicit_conv_applies(const ConvShape& cs) {
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  if (!avx512 || !enabled() || cs.groups != 1 || cs.stride_h != 1 || cs.stride_w != 1) return false;
  if (cs.r * cs.s == 1 && cs.pad_top + cs.pad_bottom + cs.pad_left + cs.pad_right == 0) return false;  // 1x1: one GEMM
  if (cs.c < 8 || cs.k < 8) return false;
  const int64_t rh = (cs.r - 1) * cs.dilation_h, rw = (cs.s - 1) * cs.dilation_w;
  return cs.pad_top <= rh && cs.pad_bottom <= rh && cs.pad_left <= rw && cs.pad_right <= rw &&
         cs.oh == cs.h + cs.pad_top + cs.pad_bottom - rh && cs.ow == cs.w + cs.pad_left + cs.pad_right - rw;
}

void implicit_conv_forward(const ConvShape& cs, const float* x, const float* w, float* y) {
  PNEUMO_CPU_SCOPE(label("implicit fwd", cs));
  const Geom g = forward_geom(cs);
  if (cs.k <= 16)
    shifted_forward<28, 1>(g, x, w, true, cs.r * cs.s * cs.c, y);
  else
    shifted_forward<14, 2>(g, x, w, true, cs.r * cs.s * cs.c, y);
}

void implicit_conv_backward_data(const ConvShape& cs, const float* dy, const float* w, float* dx) {
  PNEUMO_CPU_SCOPE(label("implicit dgrad", cs));
  // dx is the forward convolution of dy padded by (taps - 1) * dilation - pad on each side, with weights
  // w2[tap'][co][ci] = w[co][flipped tap'][ci].
  const int64_t taps = cs.r * cs.s;
  HostBuffer<float> w2(taps * cs.k * cs.c);
#pragma omp parallel for schedule(static) if (threads_here() > 1 && worth_parallel(taps * cs.k * cs.c))
  for (int64_t tk = 0; tk < taps * cs.k; ++tk) {
    const int64_t t = tk / cs.k, co = tk % cs.k, flipped = (cs.r - 1 - t / cs.s) * cs.s + (cs.s - 1 - t % cs.s);
    std::memcpy(w2.data() + tk * cs.c, w + (co * taps + flipped) * cs.c, sizeof(float) * cs.c);
  }
  const int64_t rh = (cs.r - 1) * cs.dilation_h, rw = (cs.s - 1) * cs.dilation_w;
  const Geom g{cs.n, cs.oh, cs.ow, cs.k, rh - cs.pad_top, rh - cs.pad_bottom, rw - cs.pad_left, rw - cs.pad_right,
               cs.r, cs.s, cs.dilation_h, cs.dilation_w, cs.h, cs.w, cs.c};
  if (cs.c <= 16)
    shifted_forward<28, 1>(g, dy, w2.data(), false, cs.c, dx);
  else
    shifted_forward<14, 2>(g, dy, w2.data(), false, cs.c, dx);
}

void implicit_conv_backward_weight(const ConvShape& cs, const float* dy, const float* x, float* dw) {
  PNEUMO_CPU_SCOPE(label("implicit wgrad", cs));
  const Geom g = forward_geom(cs);
  // 6x64 tiles where strips of 64 channels fit (24 accumulators: 4 B loads and 6 broadcasts per 24 FMAs;
  // 10-20 % faster per core than 8x32 on the decoder's 64..3072-channel inputs, measured).
  if (cs.c % 64 == 0)
    shifted_weight<6, 4>(g, dy, x, dw);
  else if (cs.c <= 16)
    shifted_weight<16, 1>(g, dy, x, dw);
  else
    shifted_weight<8, 2>(g, dy, x, dw);
}

}  // namespace pneumo::kernels::cpu
