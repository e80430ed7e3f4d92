// ModelInfo: the architecture facts of an exported model directory, read from model.json
// (docs/model-format.md). Free of LibTorch so the CLI and index metadata can use it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/base/dtype.h"

namespace s3 {

// model.json files larger than this are refused before they are parsed (a real one is a few KiB).
inline constexpr uint64_t kMaxModelJsonBytes = uint64_t{16} << 20;
// The largest context window (max_position_embeddings) a model.json may declare.
inline constexpr int kMaxWindow = 1 << 24;

struct ChatTemplate {
  std::string prefix;  // text before the user's message (may start with the BOS token's text)
  std::string suffix;  // text after it, ending with the assistant's generation prompt
};

struct ModelInfo {
  std::filesystem::path dir;
  std::string family;             // llama | mistral | qwen2
  std::string architecture;       // the Hugging Face class it was exported from
  DType dtype = DType::kFloat32;  // dtype of the saved weights
  int n_layers = 0;
  int hidden_size = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  std::optional<int32_t> bos_token_id;
  std::optional<std::string> bos_token;
  bool add_bos_token = false;
  std::vector<int32_t> stop_token_ids;
  std::optional<ChatTemplate> chat_template;
  std::vector<int> default_taps;
  std::string fingerprint;  // sha256 of model.ts, computed at export
  // tokenizer_config.json's clean_up_tokenization_spaces: whether Hugging Face's decode removes the
  // space before punctuation and contractions (LongBench's pred.py decodes so). Absent: false.
  bool clean_up_tokenization_spaces = false;

  std::filesystem::path model_file() const { return dir / "model.ts"; }
  std::filesystem::path tokenizer_file() const { return dir / "tokenizer.json"; }

  // Reads and validates DIR/model.json; throws s3::Error / s3::DataCorruption with the path.
  static ModelInfo load(const std::filesystem::path& dir);
};

}  // namespace s3
