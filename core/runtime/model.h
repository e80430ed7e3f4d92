// Model: an exported model directory loaded for inference (TorchScript module + model.json +
// tokenizer). The header hides LibTorch behind a pimpl so cli/ never includes it; core/ and sae/
// reach the tensors through core/model_torch.h.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/runtime/device.h"
#include "core/runtime/model_info.h"
#include "core/tokenizer/tokenizer.h"

namespace s3 {

struct ModelLoadOptions {
  DeviceSpec device;           // where the weights live
  std::optional<DType> dtype;  // weights' dtype; default: the exported one
};

class Model {
 public:
  // Reads model.json, the tokenizer and model.ts; throws s3::Error with an actionable message.
  static Model load(const std::filesystem::path& dir, const ModelLoadOptions& options);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelInfo& info() const;
  const Tokenizer& tokenizer() const;
  const DeviceSpec& device() const;
  DType dtype() const;  // the dtype the weights run in

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3
