// CPU oracle of the fused upsample + concat (see fused_upsample_kernels.h).
#include "kernels/cpu/fused_upsample_kernels.h"

#include "kernels/check.h"
#include "kernels/cpu/parallel.h"

namespace pneumo::kernels::cpu {
namespace {

template <typename Fn>
void dispatch(DType dt, const char* what, Fn&& fn) {
  if (dt == DType::F32)
    fn(float{});
  else if (dt == DType::F64)
    fn(double{});
  else if (dt == DType::BF16)
    fn(uint16_t{});
  else
    PNEUMO_FAIL(what, ": CPU supports F32, F64 and BF16, got ", dtype_name(dt));
}

inline double ld(const float* p, int64_t i) { return p[i]; }
inline double ld(const double* p, int64_t i) { return p[i]; }
inline double ld(const uint16_t* p, int64_t i) { return bf16_bits_to_float(p[i]); }
inline void st(float* p, int64_t i, double v) { p[i] = static_cast<float>(v); }
inline void st(double* p, int64_t i, double v) { p[i] = v; }
inline void st(uint16_t* p, int64_t i, double v) { p[i] = float_to_bf16_bits(static_cast<float>(v)); }

}  // namespace

void upsample2x_concat_forward(DType dt, const void* x_, const void* skip_, int64_t n, int64_t h, int64_t w, int64_t cx,
                               int64_t cs, void* y_) {
  dispatch(dt, "upsample2x_concat_forward", [&](auto zero) {
    using T = decltype(zero);
    const T *x = static_cast<const T*>(x_), *skip = static_cast<const T*>(skip_);
    T* y = static_cast<T*>(y_);
    const int64_t ct = cx + cs;
#pragma omp parallel for schedule(static) if (worth_parallel(n * h * w * 4 * ct))
    for (int64_t nh = 0; nh < n * 2 * h; ++nh) {
      const int64_t b = nh / (2 * h), oy = nh % (2 * h);
      for (int64_t ox = 0; ox < 2 * w; ++ox) {
        const int64_t o = (nh * 2 * w + ox);
        const T* src = x + ((b * h + oy / 2) * w + ox / 2) * cx;
        for (int64_t k = 0; k < cx; ++k) y[o * ct + k] = src[k];
        for (int64_t k = 0; k < cs; ++k) y[o * ct + cx + k] = skip[o * cs + k];
      }
    }
  });
}

void upsample2x_concat_backward(DType dt, const void* dy_, int64_t n, int64_t h, int64_t w, int64_t cx, int64_t cs,
                                void* dx_, void* dskip_) {
  dispatch(dt, "upsample2x_concat_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* dy = static_cast<const T*>(dy_);
    T *dx = static_cast<T*>(dx_), *dskip = static_cast<T*>(dskip_);
    const int64_t ct = cx + cs;
    if (dx) {
#pragma omp parallel for schedule(static) if (worth_parallel(n * h * w * 4 * cx))
      for (int64_t nh = 0; nh < n * h; ++nh) {
        const int64_t b = nh / h, iy = nh % h;
        for (int64_t ix = 0; ix < w; ++ix)
          for (int64_t k = 0; k < cx; ++k) {
            double acc = 0;
            for (int64_t a = 0; a < 2; ++a)
              for (int64_t c = 0; c < 2; ++c) acc += ld(dy, ((b * 2 * h + 2 * iy + a) * 2 * w + 2 * ix + c) * ct + k);
            st(dx, (nh * w + ix) * cx + k, acc);
          }
      }
    }
    if (dskip) {
#pragma omp parallel for schedule(static) if (worth_parallel(n * h * w * 4 * cs))
      for (int64_t p = 0; p < n * 4 * h * w; ++p)
        for (int64_t k = 0; k < cs; ++k) dskip[p * cs + k] = dy[p * ct + cx + k];
    }
  });
}

}  // namespace pneumo::kernels::cpu
