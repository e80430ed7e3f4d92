// Exact, deterministic Top-K of ReLU(pre-activations), on any device, without host syncs.
//
// Definition (the tie rule): for each row, order latents by (value desc, latent id asc) and keep
// the first k; a kept latent is *active* iff its value is > 0. Inactive slots are reported as
// id -1 / value 0. Values are compared in the dtype of `pre` (so in bf16 on the GPU, where ties
// are common: about 4 latents share the k-th value's bf16 bucket at the paper's size).
//
// How (docs/sae.md, "Top-k"):
//   1. Candidate prefilter. Latents are split into G = F / group_size strided groups (group j =
//      {a * G + j}); the k + extra_groups groups with the largest maxima are kept (one topk over
//      G group maxima), and every other latent is <= theta, the smallest kept group maximum.
//   2. Exact selection among the candidates with an integer key that encodes (value, -id):
//      (bits of the non-negative value << 16 | 65535 - id) in int32 for 16-bit dtypes, << 32 in
//      int64 otherwise. Keys are unique per row, so ATen's topk has no ties to break.
//   3. A row is decided iff its k-th value tau is <= 0 or > theta. Up to `exact_rows` undecided
//      rows per call are recomputed with the dense key (step 2 over all F latents); rows beyond
//      that are counted in `unresolved`. In practice undecided rows need a run of equal values
//      spanning ~extra_groups ranks at the k-th value and do not occur on real data.
#pragma once

#include <ATen/core/Tensor.h>

namespace s3::sae {

struct TopKOptions {
  int64_t group_size = 8;  // 1 (or not dividing F) disables the prefilter
  int64_t extra_groups = 32;
  int64_t exact_rows = 256;
};

struct TopKResult {
  at::Tensor ids;         // int64 [n, k], -1 where inactive
  at::Tensor values;      // [n, k] in pre's dtype, 0 where inactive
  at::Tensor unresolved;  // int64 scalar on pre's device: rows left undecided (approximate)
};

// pre: [n, F] floating (float32, bfloat16 or float16), any device; 1 <= k <= F. With sorted,
// each row is ordered by (value desc, id asc) and inactive slots come last; otherwise the order
// within a row is unspecified.
TopKResult topk_relu(const at::Tensor& pre, int64_t k, const TopKOptions& options, bool sorted);

// The dense form of step 2 over all F latents: exact for every row, O(n F) integer keys. The
// fallback for undecided rows, and a second oracle for tests.
TopKResult topk_relu_dense(const at::Tensor& pre, int64_t k, bool sorted);

}  // namespace s3::sae
