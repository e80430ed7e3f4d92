#include "sae/encoder.h"

#include <ATen/ATen.h>

#include <sstream>

#ifdef S3ATTN_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "sae/topk_bitmap_kernel.h"
#endif

#include "core/base/error.h"
#include "sae/device.h"
#include "sae/tensor_io.h"

namespace s3::sae {
namespace {

// Packs a 0/1 byte mask [F * Tp] (latent-major, Tp tokens per latent, Tp % 64 == 0) into
// little-endian uint64 words [F, Tp / 64], bit j of word w = token 64 w + j.
// Each int64 view element holds the bytes of 8 consecutive tokens, b_j at bit 8 j; multiplying
// by M = sum_j 2^(56 - 7 j) moves b_j to bit 56 + j and every cross term b_j 2^(56 + 8 j - 7 i)
// (i != j) to a distinct bit outside 56..63, so no carries reach the top byte: (x * M) >> 56 is
// the byte b_0 | b_1 << 1 | ... | b_7 << 7. The product wraps modulo 2^64, which is intended.
at::Tensor pack_mask(const at::Tensor& mask, int64_t f, int64_t words) {
  constexpr int64_t kGather = 0x0102040810204080;
  const at::Tensor eight = mask.narrow(0, 0, f * words * 64).view(at::kLong);
  const at::Tensor bytes =
      eight.mul(kGather).bitwise_right_shift(56).bitwise_and(0xFF).to(at::kByte);
  return bytes.view(at::kLong).view({f, words});
}

// Whether feature_bitmap runs the fused CUDA kernel (EncoderOptions::bitmap).
bool use_fused_bitmap(BitmapMode choice, const c10::Device& device, int64_t value_bytes,
                      int64_t d_latent) {
  if (choice == BitmapMode::kAten) return false;
  std::string why;
#ifdef S3ATTN_HAVE_CUDA_KERNELS
  if (!device.is_cuda())
    why = "it runs on CUDA devices only";
  else if (d_latent > cuda_kernels::max_latents(static_cast<int>(value_bytes)))
    why = "the SAE has more latents than it takes (" +
          std::to_string(cuda_kernels::max_latents(static_cast<int>(value_bytes))) + ")";
#else
  why = "this build has no CUDA kernels (nvcc was not found, or S3ATTN_CUDA_KERNELS=OFF)";
#endif
  if (why.empty()) return true;
  if (choice == BitmapMode::kFused) throw UsageError("--sae-bitmap fused: " + why);
  return false;
}

}  // namespace

at::Tensor sae_rows_from_keys(const at::Tensor& keys, HeadMode mode) {
  if (keys.dim() != 3) {
    throw Error("SAE input: keys must be [tokens, kv_heads, head_dim], are " + tensor_shape(keys));
  }
  const int64_t t = keys.size(0), h = keys.size(1), d = keys.size(2);
  return mode == HeadMode::kPerHead ? keys.reshape({t * h, d}) : keys.reshape({t, h * d});
}

at::Tensor sae_rows_from_queries(const at::Tensor& queries, int64_t n_kv_heads, HeadMode mode) {
  if (queries.dim() != 3) {
    throw Error("SAE input: queries must be [tokens, heads, head_dim], are " +
                tensor_shape(queries));
  }
  const int64_t t = queries.size(0), hq = queries.size(1), d = queries.size(2);
  if (n_kv_heads < 1 || hq % n_kv_heads != 0) {
    throw Error("SAE input: " + std::to_string(hq) + " query heads are not a multiple of " +
                std::to_string(n_kv_heads) + " KV heads");
  }
  if (mode == HeadMode::kPerHead) return queries.reshape({t * hq, d});
  const int64_t g = hq / n_kv_heads;
  return queries.reshape({t, n_kv_heads, g, d})
      .permute({0, 2, 1, 3})
      .reshape({t * g, n_kv_heads * d});
}

Encoder::Encoder(const SaeWeights& weights, int64_t trained_k, const EncoderOptions& options) {
  options.validate();
  weights.check("SAE weights");
  d_in_ = weights.d_in();
  d_latent_ = weights.d_latent();
  k_ = options.k > 0 ? options.k : trained_k;
  if (k_ < 1 || k_ > d_latent_) {
    throw UsageError("--k " + std::to_string(k_) + " must be between 1 and the SAE's " +
                     std::to_string(d_latent_) + " latents");
  }
  const c10::Device device = resolve_device(options.device);
  w_ = weights.to(device, resolve_dtype(options.dtype, device));
  W_dec_f32_ = weights.W_dec.to(device, at::kFloat).contiguous();
  b_dec_f32_ = weights.b_dec.to(device, at::kFloat).contiguous();
  topk_ = TopKOptions{options.group_size, options.extra_groups, options.exact_rows};
  max_rows_ = options.max_rows;
  fused_bitmap_ = use_fused_bitmap(options.bitmap, device, w_.W_enc.element_size(), d_latent_);
  fused_candidates_ = options.fused_candidates;
  unresolved_ = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  full_rows_ = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
}

at::Tensor Encoder::prepare(const at::Tensor& x, const char* what) const {
  if (x.dim() != 2 || x.size(1) != d_in_) {
    throw Error(std::string(what) + ": input must be [N, " + std::to_string(d_in_) +
                "] (d_in of this SAE), is " + tensor_shape(x));
  }
  if (!at::isFloatingType(x.scalar_type())) {
    throw Error(std::string(what) + ": input must be floating point");
  }
  return x.to(w_.W_enc.device(), w_.W_enc.scalar_type(), /*non_blocking=*/true);
}

at::Tensor Encoder::preactivations(const at::Tensor& x) const {
  return preactivations_of(prepare(x, "SAE preactivations"));
}

at::Tensor Encoder::preactivations_of(const at::Tensor& xr) const {
  return at::addmm(w_.b_enc, xr - w_.b_dec, w_.W_enc.t());
}

TopKResult Encoder::select(const at::Tensor& xr, bool sorted) const {
  const at::Tensor pre = preactivations_of(xr);
  TopKResult r = topk_relu(pre, k_, topk_, sorted);
  unresolved_.add_(r.unresolved);
  return r;
}

Encoder::Output Encoder::encode(const at::Tensor& x) const {
  const at::Tensor xr = prepare(x, "SAE encode");
  const int64_t n = xr.size(0);
  const auto dev = w_.W_enc.device();
  if (n == 0) {
    return {at::empty({0, k_}, at::TensorOptions().dtype(at::kInt).device(dev)),
            at::empty({0, k_}, at::TensorOptions().dtype(at::kFloat).device(dev))};
  }
  std::vector<at::Tensor> ids, vals;
  for (int64_t s = 0; s < n; s += max_rows_) {
    const TopKResult r = select(xr.narrow(0, s, std::min(max_rows_, n - s)), /*sorted=*/true);
    ids.push_back(r.ids.to(at::kInt));
    vals.push_back(r.values.to(at::kFloat));
  }
  if (ids.size() == 1) return {ids[0], vals[0]};
  return {at::cat(ids), at::cat(vals)};
}

at::Tensor Encoder::feature_bitmap(const at::Tensor& x_in, int64_t heads) const {
  if (heads < 1) throw Error("SAE bitmap: heads must be >= 1");
  at::Tensor x = x_in;
  if (x.dim() == 3) {
    if (x.size(1) != heads) {
      throw Error("SAE bitmap: input " + tensor_shape(x) + " does not have " +
                  std::to_string(heads) + " heads");
    }
    x = x.reshape({-1, x.size(2)});
  }
  if (x.dim() != 2 || x.size(0) % heads != 0) {
    throw Error("SAE bitmap: input must be [T * " + std::to_string(heads) + ", " +
                std::to_string(d_in_) + "] or [T, " + std::to_string(heads) + ", " +
                std::to_string(d_in_) + "], is " + tensor_shape(x_in));
  }
  const int64_t t = x.size(0) / heads;
  const int64_t words = (t + 63) / 64;
  const int64_t tp = words * 64;
  const auto dev = w_.W_enc.device();
  if (fused_bitmap_) return feature_bitmap_fused(x, heads, t, words);
  // One byte per (latent, token) plus a sink slot for inactive entries. 64 MiB at F 16,384 and
  // T 4,096: the union over heads costs nothing extra (index_fill_ writes 1 however often).
  at::Tensor mask =
      at::zeros({d_latent_ * tp + 1}, at::TensorOptions().dtype(at::kByte).device(dev));
  const int64_t sink = d_latent_ * tp;
  const int64_t tokens_per_pass = std::max<int64_t>(1, max_rows_ / heads);
  for (int64_t t0 = 0; t0 < t; t0 += tokens_per_pass) {
    const int64_t nt = std::min(tokens_per_pass, t - t0);
    const at::Tensor xr = prepare(x.narrow(0, t0 * heads, nt * heads), "SAE bitmap");
    const TopKResult r = select(xr, /*sorted=*/false);  // the bitmap needs only the set
    const at::Tensor ids = r.ids.view({nt, heads * k_});
    const at::Tensor tok =
        at::arange(t0, t0 + nt, at::TensorOptions().dtype(at::kLong).device(dev)).view({nt, 1});
    const at::Tensor flat = at::where(ids >= 0, ids * tp + tok, at::full({}, sink, ids.options()));
    mask.index_fill_(0, flat.reshape({-1}), 1);
  }
  return pack_mask(mask, d_latent_, words);
}

at::Tensor Encoder::feature_bitmap_fused(const at::Tensor& x, int64_t heads, int64_t tokens,
                                         int64_t words) const {
#ifdef S3ATTN_HAVE_CUDA_KERNELS
  const auto dev = w_.W_enc.device();
  at::Tensor bitmap =
      at::zeros({d_latent_, words}, at::TensorOptions().dtype(at::kLong).device(dev));
  const int64_t tokens_per_pass = std::max<int64_t>(1, max_rows_ / heads);
  for (int64_t t0 = 0; t0 < tokens; t0 += tokens_per_pass) {
    const int64_t nt = std::min(tokens_per_pass, tokens - t0);
    const at::Tensor xr = prepare(x.narrow(0, t0 * heads, nt * heads), "SAE bitmap");
    const at::Tensor pre = preactivations_of(xr).contiguous();
    cuda_kernels::TopKBitmapArgs args;
    args.pre = pre.data_ptr();
    args.value_bytes = static_cast<int>(pre.element_size());
    args.rows = pre.size(0);
    args.ld = pre.size(1);
    args.latents = d_latent_;
    args.k = k_;
    args.heads = heads;
    args.token_base = t0;
    args.words = words;
    args.bitmap = reinterpret_cast<uint64_t*>(bitmap.data_ptr<int64_t>());
    args.full_rows = reinterpret_cast<uint64_t*>(full_rows_.data_ptr<int64_t>());
    args.candidates = fused_candidates_;
    args.stream = c10::cuda::getCurrentCUDAStream(dev.index()).stream();
    if (std::string err = cuda_kernels::launch_topk_bitmap(args); !err.empty()) {
      throw Error("SAE bitmap kernel: " + err);
    }
  }
  return bitmap;
#else
  (void)x, (void)heads, (void)tokens, (void)words;
  throw Error("SAE bitmap kernel: not in this build");
#endif
}

at::Tensor Encoder::decode(const Output& code) const {
  const auto dev = w_.W_enc.device();
  const at::Tensor ids = code.ids.to(dev, at::kLong);
  const at::Tensor vals = code.values.to(dev, at::kFloat);
  if (ids.dim() != 2 || !vals.sizes().equals(ids.sizes())) {
    throw Error("SAE decode: ids and values must both be [N, k]");
  }
  const int64_t n = ids.size(0), k = ids.size(1);
  if (n == 0 || k == 0) return b_dec_f32_.unsqueeze(0).expand({n, d_in_}).clone();
  const at::Tensor offsets = at::arange(0, n * k, k, ids.options());
  const at::Tensor rows = std::get<0>(at::embedding_bag(
      W_dec_f32_, ids.clamp_min(0).reshape({-1}), offsets, /*scale_grad_by_freq=*/false,
      /*mode=sum*/ 0, /*sparse=*/false, at::where(ids >= 0, vals, 0).reshape({-1})));
  return rows + b_dec_f32_;
}

int64_t Encoder::unresolved_rows() const {
  return unresolved_.item<int64_t>();
}

int64_t Encoder::fused_full_rows() const {
  return full_rows_.item<int64_t>();
}

}  // namespace s3::sae
