#include "sae/topk.h"

#include <ATen/ATen.h>

#include "core/base/error.h"

namespace s3::sae {
namespace {

bool is_16bit(at::ScalarType t) {
  return t == at::kBFloat16 || t == at::kHalf;
}

// Integer keys ordering (value desc, id asc) for values clamped at 0 (every non-positive value,
// and NaN, becomes +0 and so loses to every positive one). ids: int64, broadcastable to v.
// 16-bit floats with ids < 2^16: int32 (bits << 16 | 65535 - id); otherwise int64 over the
// float32 bits (bits << 32 | 2^32 - 1 - id). The bit patterns of non-negative IEEE floats are
// ordered like their values, which is what makes this work.
at::Tensor make_key(const at::Tensor& v, const at::Tensor& ids, bool narrow) {
  const at::Tensor zero = at::zeros({}, v.options());
  const at::Tensor pos = at::where(v > 0, v, zero);
  if (narrow) {
    const at::Tensor bits = pos.view(at::kShort).to(at::kInt);
    return bits.mul(65536).add(at::rsub(ids.to(at::kInt), 65535));
  }
  const at::Tensor bits = pos.to(at::kFloat).view(at::kInt).to(at::kLong);
  return bits.mul(int64_t{1} << 32).add(at::rsub(ids, int64_t{0xFFFFFFFF}));
}

void check_input(const at::Tensor& pre, int64_t k) {
  if (pre.dim() != 2) throw Error("topk_relu: pre-activations must be [n, d_latent]");
  const auto t = pre.scalar_type();
  if (t != at::kFloat && t != at::kBFloat16 && t != at::kHalf) {
    throw Error(std::string("topk_relu: unsupported dtype ") + at::toString(t) +
                " (float32, bfloat16 or float16)");
  }
  if (k < 1 || k > pre.size(1)) {
    throw Error("topk_relu: k " + std::to_string(k) + " must be in [1, " +
                std::to_string(pre.size(1)) + "]");
  }
}

// Marks inactive slots (value <= 0): id -1, value 0.
TopKResult finish(const at::Tensor& ids, const at::Tensor& vals, at::Tensor unresolved) {
  const at::Tensor active = vals > 0;
  return {at::where(active, ids, at::full({}, -1, ids.options())),
          at::where(active, vals, at::zeros({}, vals.options())), std::move(unresolved)};
}

}  // namespace

TopKResult topk_relu_dense(const at::Tensor& pre, int64_t k, bool sorted) {
  check_input(pre, k);
  const int64_t n = pre.size(0), f = pre.size(1);
  const auto long_opts = pre.options().dtype(at::kLong);
  const at::Tensor zero_count = at::zeros({}, long_opts);
  if (n == 0) {
    return {at::empty({0, k}, long_opts), at::empty({0, k}, pre.options()), zero_count};
  }
  const bool narrow = is_16bit(pre.scalar_type()) && f <= 65536;
  const at::Tensor key = make_key(pre, at::arange(f, long_opts).unsqueeze(0), narrow);
  const at::Tensor pos = std::get<1>(key.topk(k, 1, /*largest=*/true, sorted));
  return finish(pos, pre.gather(1, pos), zero_count);
}

TopKResult topk_relu(const at::Tensor& pre_in, int64_t k, const TopKOptions& options, bool sorted) {
  check_input(pre_in, k);
  const at::Tensor pre = pre_in.contiguous();  // no-op for matmul outputs
  const int64_t n = pre.size(0), f = pre.size(1);
  const int64_t gs = options.group_size;
  const int64_t ng = gs > 0 ? f / gs : 0;
  const int64_t keep = k + options.extra_groups;  // groups kept
  const bool grouped = gs > 1 && f % gs == 0 && keep < ng;
  if (!grouped || n == 0) return topk_relu_dense(pre, k, sorted);

  const auto long_opts = pre.options().dtype(at::kLong);
  const bool narrow = is_16bit(pre.scalar_type()) && f <= 65536;

  // 1. Candidates: members of the `keep` strided groups with the largest maxima.
  //    pre.view(n, gs, ng)[r, a, j] is latent a * ng + j, a member of group j. The group max is a
  //    reduction over the outer axis (coalesced), much faster than over a tiny inner one.
  const at::Tensor pv = pre.view({n, gs, ng});
  const at::Tensor gmax = pv.amax(1);                                          // [n, ng]
  auto [gval, gidx] = gmax.topk(keep, 1, /*largest=*/true, /*sorted=*/false);  // [n, keep]
  const at::Tensor theta = gval.amin(1);  // every other latent is <= theta
  const at::Tensor cand =
      pv.gather(2, gidx.unsqueeze(1).expand({n, gs, keep})).reshape({n, gs * keep});
  const at::Tensor cid = (at::arange(gs, long_opts).mul(ng).view({1, gs, 1}) + gidx.unsqueeze(1))
                             .reshape({n, gs * keep});

  // 2. Exact (value desc, id asc) top-k among the candidates.
  const at::Tensor key = make_key(cand, cid, narrow);
  const at::Tensor pos = std::get<1>(key.topk(k, 1, /*largest=*/true, sorted));
  at::Tensor ids = cid.gather(1, pos);
  at::Tensor vals = cand.gather(1, pos);

  // 3. Decided iff tau <= 0 or tau > theta (tau = the k-th value, clamped at 0). Because the kept
  //    groups hold at least keep >= k latents >= theta, tau >= theta always.
  const at::Tensor tau = at::where(vals > 0, vals, at::zeros({}, vals.options())).amin(1);
  const at::Tensor undecided = (tau > 0).logical_and_(theta >= tau);  // [n] bool
  at::Tensor unresolved = undecided.sum().to(at::kLong);
  const int64_t r = std::min(options.exact_rows, n);
  if (r > 0) {
    const at::Tensor rows =
        r == n ? at::arange(n, long_opts)
               : std::get<1>(undecided.to(at::kInt).topk(r, 0, /*largest=*/true, /*sorted=*/false));
    const TopKResult fixed = topk_relu_dense(pre.index_select(0, rows), k, sorted);
    // topk_relu_dense already marked inactive slots; re-marking them below is harmless.
    ids.index_copy_(0, rows, fixed.ids);
    vals.index_copy_(0, rows, fixed.values);
    unresolved = (unresolved - r).clamp_min_(0);
  }
  return finish(ids, vals, unresolved);
}

}  // namespace s3::sae
