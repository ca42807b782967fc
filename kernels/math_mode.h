// Process-wide numeric modes, each off by default, read once from the environment at first use and
// settable in code (tests, `pneumo bench-models` flags).
//
// TF32 for float32 on CUDA (issue 12 part 2 item 7): off by default, so float32 GPU results stay comparable
// with the CPU oracle (float32 FMA); on with PNEUMO_TF32=1 or set_allow_tf32(true) (`pneumo bench-models
// --tf32`). When on, float32 cuBLAS GEMMs compute with CUBLAS_COMPUTE_32F_FAST_TF32 and float32 cuDNN
// convolutions may pick tensor-op (TF32) algorithms; bf16 is unaffected.
// PyTorch's defaults, for like-for-like float32 comparisons: torch.backends.cudnn.allow_tf32 = True
// (convolutions use TF32) and torch.backends.cuda.matmul.allow_tf32 = False since 1.12
// (torch.set_float32_matmul_precision("highest")).
//
// Data gradients accumulated by the convolution (issue 12 part 2 item 5c): where autograd lends a
// convolution the gradient already summed for its input (a tensor used twice: residual junctions, UNet
// skips, ASPP branches), the convolution's data gradient is added into it in the same pass -- cuDNN's
// beta = 1 on CUDA -- instead of a separate add. Off by default until a GPU run verifies it
// (PNEUMO_DGRAD_ACCUMULATE=1 or set_dgrad_accumulate(true); `pneumo bench-models --dgrad-accumulate`).
// float32 values are the same either way (one float32 addition of the same two terms); in bf16 the sum is
// rounded once instead of twice, and the CPU bf16 emulation follows the same setting.
#pragma once

namespace pneumo::kernels {

bool allow_tf32();
void set_allow_tf32(bool on);  // convolution shapes already planned keep their algorithm per setting

bool dgrad_accumulate();
void set_dgrad_accumulate(bool on);

}  // namespace pneumo::kernels
