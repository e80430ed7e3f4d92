// Tensor-level access to a loaded Model: the TorchScript methods of docs/model-format.md with
// their shapes. For core/ and sae/ sources only (includes LibTorch).
#pragma once

#include <torch/script.h>

#include <memory>
#include <utility>
#include <vector>

#include "core/runtime/model.h"

namespace s3 {

struct KvCache {
  torch::Tensor k;  // [L, B, Hkv, max_len, D]
  torch::Tensor v;  // [L, B, Hkv, max_len, D]
  int64_t max_len() const { return k.size(3); }
};

class AotiDecode;

struct Model::Impl {
  ModelInfo info;
  Tokenizer tokenizer;
  DeviceSpec device;
  DType dtype;
  c10::Device torch_device{c10::kCPU};
  mutable torch::jit::Module module;
  // The AOTInductor decode step (aoti_decode.h), loaded on first use.
  mutable std::shared_ptr<const AotiDecode> aoti;
};

// Every position's logits [B, T, V] (float32), no cache.
torch::Tensor forward_logits(const Model& model, const torch::Tensor& input_ids);

// Pre-RoPE (or post-RoPE with rope=true) q [B,T,Hq,D] and k [B,T,Hkv,D] of each requested layer,
// in the order given; runs layers 0..max(layers) only.
std::vector<std::pair<torch::Tensor, torch::Tensor>> tap(const Model& model,
                                                         const torch::Tensor& input_ids,
                                                         const std::vector<int64_t>& layers,
                                                         bool rope = false);

KvCache new_cache(const Model& model, int64_t batch, int64_t max_len);

// Last-position logits [B, V] (weights' dtype) after writing K/V of positions start..start+T-1.
torch::Tensor prefill(const Model& model, const torch::Tensor& input_ids, KvCache& cache,
                      int64_t start);
torch::Tensor decode(const Model& model, const torch::Tensor& token, KvCache& cache, int64_t pos);

// int64 [1, T] tensor of ids on the model's device.
torch::Tensor ids_tensor(const Model& model, const std::vector<int32_t>& ids);

}  // namespace s3
