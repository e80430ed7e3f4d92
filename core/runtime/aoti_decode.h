// The decode step (`decode_at`, docs/model-format.md) compiled ahead of time by AOTInductor
// (scripts/export_aoti.py): MODEL/aoti/decode-<device>-<dtype>.pt2, loaded by LibTorch's
// AOTIModelPackageLoader, beside model.ts. Fused kernels instead of TorchScript's one kernel per
// op: an alternative decode backend (GenerationOptions::decode_backend), chosen by the user;
// model.ts stays the reference. The package's JSON sidecar names the model fingerprint and dtype it
// was compiled for, and a package for another export is refused. Runtime-internal (LibTorch types).
#pragma once

#include <filesystem>
#include <memory>

#include "core/runtime/model_torch.h"

namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace s3 {

class AotiDecode {
 public:
  // The package of `model`'s device type and dtype.
  static std::filesystem::path package_path(const Model& model);
  // Loads and checks the package; throws s3::Error naming it (missing, stale, unloadable).
  explicit AotiDecode(const Model& model);
  ~AotiDecode();
  AotiDecode(const AotiDecode&) = delete;
  AotiDecode& operator=(const AotiDecode&) = delete;

  // decode_at: token [B, 1] at the positions in `pos` [B] (int64, on the model's device) -> logits
  // [B, V]; writes K/V into `cache` in place. Runs on the current CUDA stream (capturable).
  torch::Tensor operator()(const torch::Tensor& token, KvCache& cache,
                           const torch::Tensor& pos) const;

 private:
  c10::Device device_;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
};

// The model's AotiDecode, loaded on first use and kept with the model.
const AotiDecode& aoti_decode(const Model& model);

}  // namespace s3
