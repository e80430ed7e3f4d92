// Fused Top-K + feature bitmap on CUDA: the index scan's hot path (docs/sae.md, "Top-k").
//
// One thread block per row of pre-activations: the row's values are turned into order-preserving
// integer keys in shared memory, the keys above a lower bound of the k-th largest (from the
// threads' maxima) are compacted into a short list, an 8-bit radix select on that list (or on the
// whole row when the list does not settle it) finds the k-th largest positive value, and every
// selected latent sets its token's bit in the feature-major bitmap with an atomic OR. The
// selection is exactly sae/topk.h's tie rule: latents ordered by (value desc, id asc), the first k
// kept, a kept latent active iff its value is > 0, values compared in the pre-activations' dtype.
//
// This header has no CUDA or LibTorch types so that plain C++ code can call the launcher; the
// ATen-facing wrapper is sae::Encoder::feature_bitmap.
#pragma once

#include <cstdint>
#include <string>

namespace s3::sae::cuda_kernels {

// True when this build compiled the kernels (CMake option S3ATTN_CUDA_KERNELS with nvcc found).
bool available();

struct TopKBitmapArgs {
  const void* pre = nullptr;  // [rows, ld] row-major; the first `latents` columns are used
  int value_bytes = 2;        // 2 (bfloat16 / float16) or 4 (float32)
  int64_t rows = 0;           // rows = tokens * heads, row r belongs to token r / heads
  int64_t ld = 0;             // row stride in elements
  int64_t latents = 0;        // F
  int64_t k = 0;              // 1 <= k <= F
  int64_t heads = 1;
  int64_t token_base = 0;      // token index of row 0 inside the bitmap
  int64_t words = 0;           // bitmap words per latent
  uint64_t* bitmap = nullptr;  // [F, words], zeroed by the caller; bits are OR-ed in
  // Optional device counter: rows that took the kernel's full-row path instead of the candidate
  // list (k > 128, or more keys above the list's lower bound than it holds); nullptr = not counted.
  uint64_t* full_rows = nullptr;
  // false: every row takes the full-row path (for benchmarks of the candidate list).
  bool candidates = true;
  void* stream = nullptr;  // cudaStream_t
};

// The largest F the kernel takes (its keys live in shared memory); wider SAEs use the ATen path.
int64_t max_latents(int value_bytes);

// Enqueues the kernel on args.stream. Returns an empty string, or the CUDA error's text.
std::string launch_topk_bitmap(const TopKBitmapArgs& args);

}  // namespace s3::sae::cuda_kernels
