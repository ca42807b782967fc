// TF32 for float32 on CUDA (issue 12 part 2 item 7): off by default, so float32 GPU results stay comparable
// with the CPU oracle (float32 FMA); on with PNEUMO_TF32=1 (read once, at first use) or set_allow_tf32(true)
// (`pneumo bench-models --tf32`). When on, float32 cuBLAS GEMMs compute with CUBLAS_COMPUTE_32F_FAST_TF32 and
// float32 cuDNN convolutions may pick tensor-op (TF32) algorithms; bf16 is unaffected.
// PyTorch's defaults, for like-for-like float32 comparisons: torch.backends.cudnn.allow_tf32 = True
// (convolutions use TF32) and torch.backends.cuda.matmul.allow_tf32 = False since 1.12
// (torch.set_float32_matmul_precision("highest")).
#pragma once

namespace pneumo::kernels {

bool allow_tf32();
void set_allow_tf32(bool on);  // convolution shapes already planned keep their algorithm per setting

}  // namespace pneumo::kernels
