// Standalone device check of the data kernels (RLE encode/decode, Dice) against the CPU reference kernels,
// on the real prediction CSV and random masks, with timings. Built by tools/data-devcheck/run.sh with nvcc.
#include <cuda_runtime.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include "kernels/cpu/data_kernels.h"
#include "kernels/cuda/data_kernels.h"
#include "kernels/check.h"
namespace pneumo { const char* dtype_name(DType t) { return t == DType::U8 ? "U8" : "other"; } }
using namespace pneumo;
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)
static int failures = 0;
#define EXPECT(c, ...) do { if (!(c)) { ++failures; if (failures < 20) { printf("FAIL line %d: ", __LINE__); printf(__VA_ARGS__); printf("\n"); } } } while (0)
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<int64_t> parse(const std::string& s) {  // absolute pairs
  std::vector<int64_t> out; std::istringstream in(s); long long a, b; int64_t pos = 0;
  std::string t; std::vector<long long> v; while (in >> t) v.push_back(std::stoll(t));
  if (v.size() == 1 && v[0] == -1) return out;
  for (size_t i = 0; i + 1 < v.size(); i += 2) { pos += v[i]; out.push_back(pos); out.push_back(v[i+1]); pos += v[i+1]; }
  (void)a; (void)b; return out;
}

// GPU runs of n device masks -> host absolute pairs per mask.
std::vector<std::vector<int64_t>> gpu_runs(DType dt, const void* d_masks, int64_t n, int64_t h, int64_t w, float thr,
                                           void* ws, int64_t* d_off, uint32_t* d_b, double* t_kernel) {
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  cudaEventRecord(e0);
  kernels::cuda::rle_boundaries(dt, d_masks, n, h, w, thr, ws, d_off, d_b, 0);
  cudaEventRecord(e1);
  std::vector<int64_t> off(n + 1);
  CK(cudaMemcpy(off.data(), d_off, (n + 1) * 8, cudaMemcpyDeviceToHost));
  std::vector<uint32_t> b(off[n]);
  if (off[n]) CK(cudaMemcpy(b.data(), d_b, off[n] * 4, cudaMemcpyDeviceToHost));
  float ms; cudaEventElapsedTime(&ms, e0, e1); if (t_kernel) *t_kernel += ms / 1e3;
  std::vector<std::vector<int64_t>> out(n);
  for (int64_t m = 0; m < n; ++m) for (int64_t i = off[m]; i + 1 < off[m + 1]; i += 2) { out[m].push_back(b[i]); out[m].push_back(b[i+1] - b[i]); }
  return out;
}

int main(int argc, char** argv) {
  const char* csv = argc > 1 ? argv[1] : "../shared/data/siim/predictions/stage1-ensemble-5fold-0.4.csv";
  cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0)); printf("device: %s\n", p.name);
  // ---- random masks, odd sizes, all dtypes ----
  std::mt19937_64 rng(1234);
  for (auto hw : std::vector<std::pair<int,int>>{{1,1},{7,5},{37,53},{64,64},{129,1},{1,300},{1024,1024}}) {
    const int h = hw.first, w = hw.second, n = 5; const int64_t HW = (int64_t)h * w;
    std::vector<float> f(n * HW); std::vector<uint8_t> u(n * HW); std::vector<uint16_t> bf(n * HW);
    for (int m = 0; m < n; ++m) { double ps = m == 0 ? 0.0 : (m == 1 ? 1.0 : 0.05 * m); bool on = false;
      for (int64_t i = 0; i < HW; ++i) { if (std::uniform_real_distribution<>(0,1)(rng) < ps) on = !on;
        float v = on ? 0.3f + 0.7f * (float)((rng() % 1000) / 1000.0) : 0.39f * (float)((rng() % 1000) / 1000.0);
        if (m == 1) v = 1.0f; f[m*HW+i] = v; u[m*HW+i] = (uint8_t)(v * 255); bf[m*HW+i] = float_to_bf16_bits(v); } }
    f[(n-1)*HW + HW-1] = 0.9f; u[(n-1)*HW+HW-1] = 250; bf[(n-1)*HW+HW-1] = float_to_bf16_bits(0.9f);  // last pixel set
    void *df, *du, *db, *ws; int64_t* doff; uint32_t* dbd; int64_t* dcount;
    CK(cudaMalloc(&df, n*HW*4)); CK(cudaMalloc(&du, n*HW)); CK(cudaMalloc(&db, n*HW*2));
    CK(cudaMemcpy(df, f.data(), n*HW*4, cudaMemcpyHostToDevice)); CK(cudaMemcpy(du, u.data(), n*HW, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, bf.data(), n*HW*2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&ws, kernels::cuda::rle_boundaries_workspace_bytes(n, h, w))); CK(cudaMalloc(&doff, (n+1)*8)); CK(cudaMalloc(&dbd, n*(HW+1)*4));
    CK(cudaMalloc(&dcount, 3*n*8));
    struct { DType dt; void* d; const void* h; float thr; } cases[] = {{DType::F32, df, f.data(), 0.4f}, {DType::U8, du, u.data(), 127.f}, {DType::BF16, db, bf.data(), 0.4f}};
    for (auto& c : cases) {
      auto g = gpu_runs(c.dt, c.d, n, h, w, c.thr, ws, doff, dbd, nullptr);
      for (int m = 0; m < n; ++m) {
        std::vector<int64_t> cpu(2 * ((HW + 1) / 2) + 2);
        const size_t es = c.dt == DType::F32 ? 4 : c.dt == DType::U8 ? 1 : 2;
        int64_t k = kernels::cpu::rle_runs(c.dt, (const char*)c.h + m*HW*es, h, w, c.thr, cpu.data()); cpu.resize(2*k);
        EXPECT(cpu == g[m], "runs differ %dx%d mask %d dtype %d (cpu %zu gpu %zu)", h, w, m, (int)c.dt, cpu.size(), g[m].size());
        // decode back on the GPU and compare with the thresholded mask
        int64_t ro[2] = {0, k}; int64_t *druns, *dro; uint8_t* dout;
        CK(cudaMalloc(&druns, std::max<int64_t>(1, 2*k)*8)); CK(cudaMalloc(&dro, 16)); CK(cudaMalloc(&dout, HW));
        if (k) CK(cudaMemcpy(druns, cpu.data(), 2*k*8, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dro, ro, 16, cudaMemcpyHostToDevice));
        kernels::cuda::rle_paint(druns, dro, 1, h, w, dout, 0);
        std::vector<uint8_t> out(HW); CK(cudaMemcpy(out.data(), dout, HW, cudaMemcpyDeviceToHost));
        std::vector<uint8_t> ref(HW, 0); kernels::cpu::rle_paint(cpu.data(), k, h, w, 255, ref.data());
        EXPECT(out == ref, "paint differs %dx%d mask %d", h, w, m);
        cudaFree(druns); cudaFree(dro); cudaFree(dout);
      }
    }
    // Dice counts: F32 pred vs U8 truth, BF16 pred vs F32 truth
    for (int variant = 0; variant < 2; ++variant) {
      std::vector<int64_t> gc(3*n), cc(3*n);
      std::vector<uint8_t> truth(n*HW); for (auto& t : truth) t = (rng() % 3 == 0) ? 255 : 0;
      void* dt_; CK(cudaMalloc(&dt_, n*HW)); CK(cudaMemcpy(dt_, truth.data(), n*HW, cudaMemcpyHostToDevice));
      if (variant == 0) { kernels::cuda::dice_counts(DType::F32, df, 0.4f, DType::U8, dt_, 127.f, n, HW, dcount, 0);
        kernels::cpu::dice_counts(DType::F32, f.data(), 0.4f, DType::U8, truth.data(), 127.f, n, HW, cc.data()); }
      else { kernels::cuda::dice_counts(DType::BF16, db, 0.4f, DType::F32, df, 0.5f, n, HW, dcount, 0);
        kernels::cpu::dice_counts(DType::BF16, bf.data(), 0.4f, DType::F32, f.data(), 0.5f, n, HW, cc.data()); }
      CK(cudaMemcpy(gc.data(), dcount, 3*n*8, cudaMemcpyDeviceToHost));
      EXPECT(gc == cc, "dice counts differ %dx%d variant %d", h, w, variant);
      cudaFree(dt_);
    }
    cudaFree(df); cudaFree(du); cudaFree(db); cudaFree(ws); cudaFree(doff); cudaFree(dbd); cudaFree(dcount);
  }
  printf("random masks: %d failures so far\n", failures);
  // ---- real predictions: decode on the GPU, encode on the GPU, compare strings' runs ----
  std::ifstream in(csv); std::string line; std::getline(in, line);
  std::vector<std::vector<int64_t>> rows;
  while (std::getline(in, line)) { if (!line.empty() && line.back() == '\r') line.pop_back(); auto c = line.find(','); if (c == std::string::npos) continue; rows.push_back(parse(line.substr(c + 1))); }
  printf("rows: %zu\n", rows.size());
  const int64_t h = 1024, w = 1024, HW = h * w, B = 64;
  void* ws; int64_t *doff, *druns, *dro; uint32_t* dbd; uint8_t* dmask;
  CK(cudaMalloc(&ws, kernels::cuda::rle_boundaries_workspace_bytes(B, h, w))); CK(cudaMalloc(&doff, (B+1)*8));
  CK(cudaMalloc(&dbd, B*(HW+1)*4)); CK(cudaMalloc(&dmask, B*HW)); CK(cudaMalloc(&druns, 8 << 20)); CK(cudaMalloc(&dro, (B+1)*8));
  double t_enc_k = 0, t_dec_k = 0, t_total = 0, t_enc = 0, t_dec = 0;
  size_t bad = 0, cmp_bad = 0;
  for (int rep = 0; rep < 3; ++rep) {  // rep 0 = warm-up
    double ek = 0, dk = 0, tot0 = now(), te = 0, td = 0;
    for (size_t b0 = 0; b0 < rows.size(); b0 += B) {
      const int64_t n = std::min<int64_t>(B, rows.size() - b0);
      double a = now();
      std::vector<int64_t> all, ro(1, 0);
      for (int64_t i = 0; i < n; ++i) { all.insert(all.end(), rows[b0+i].begin(), rows[b0+i].end()); ro.push_back(all.size() / 2); }
      CK(cudaMemcpy(druns, all.data(), all.size()*8, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dro, ro.data(), ro.size()*8, cudaMemcpyHostToDevice));
      cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1); cudaEventRecord(e0);
      kernels::cuda::rle_paint(druns, dro, n, h, w, dmask, 0);
      cudaEventRecord(e1); CK(cudaEventSynchronize(e1)); float ms; cudaEventElapsedTime(&ms, e0, e1); dk += ms / 1e3;
      double bt = now(); td += bt - a;
      auto g = gpu_runs(DType::U8, dmask, n, h, w, 127.f, ws, doff, dbd, &ek);
      te += now() - bt;
      for (int64_t i = 0; i < n; ++i) bad += g[i] != rows[b0+i];
      if (rep == 1 && b0 < 4 * B) {  // pixel check of decoded masks against the CPU decoder
        std::vector<uint8_t> gm(n*HW); CK(cudaMemcpy(gm.data(), dmask, n*HW, cudaMemcpyDeviceToHost));
        for (int64_t i = 0; i < n; ++i) { std::vector<uint8_t> ref(HW, 0); kernels::cpu::rle_paint(rows[b0+i].data(), rows[b0+i].size()/2, h, w, 255, ref.data());
          cmp_bad += memcmp(ref.data(), gm.data() + i*HW, HW) != 0; }
      }
    }
    if (rep > 0) { t_enc_k += ek; t_dec_k += dk; t_total += now() - tot0; t_enc += te; t_dec += td; }
  }
  const double nm = 2.0 * rows.size();
  EXPECT(bad == 0, "%zu prediction rows did not round-trip on the GPU", bad);
  EXPECT(cmp_bad == 0, "%zu GPU-decoded masks differ from the CPU decoder", cmp_bad);
  printf("GPU round trip of %zu rows x2 reps, batch %lld: total %.0f masks/s (%.0f MB/s of mask)\n", rows.size(), (long long)B, nm / t_total, nm * HW / 1e6 / t_total);
  printf("  decode: %.0f masks/s incl. run upload; paint kernel alone %.0f masks/s (%.0f GB/s written)\n", nm / t_dec, nm / t_dec_k, nm * HW / 1e9 / t_dec_k);
  printf("  encode: %.0f masks/s incl. copies back; kernels alone %.0f masks/s (%.0f GB/s of mask read)\n", nm / t_enc, nm / t_enc_k, nm * HW / 1e9 / t_enc_k);
  // CPU reference kernels on the same machine, one thread
  double c0 = now(); size_t cbad = 0; std::vector<uint8_t> m(HW); std::vector<int64_t> r(HW + 2);
  for (auto& row : rows) { std::fill(m.begin(), m.end(), 0); kernels::cpu::rle_paint(row.data(), row.size()/2, h, w, 255, m.data());
    int64_t k = kernels::cpu::rle_runs(DType::U8, m.data(), h, w, 127.f, r.data()); cbad += !(2*k == (int64_t)row.size() && std::equal(row.begin(), row.end(), r.begin())); }
  double ct = now() - c0;
  printf("CPU kernels 1 thread (same machine): %.0f masks/s decode+encode, %zu mismatches\n", rows.size() / ct, cbad);
  EXPECT(cbad == 0, "cpu mismatches");
  printf("%s: %d failures\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
