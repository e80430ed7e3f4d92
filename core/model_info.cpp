#include "core/model_info.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace s3 {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

template <typename T>
T required(const json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    throw DataCorruption(path, std::string("missing field '") + key + "'");
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw DataCorruption(path, std::string("field '") + key + "' has the wrong type");
  }
}

template <typename T>
std::optional<T> optional_field(const json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw DataCorruption(path, std::string("field '") + key + "' has the wrong type");
  }
}

// tokenizer_config.json's clean_up_tokenization_spaces; false when the file or the field is absent
// (transformers' default).
bool read_clean_up_flag(const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return false;
  if (fs::file_size(file, ec) > (16u << 20))
    throw DataCorruption(file.string(), "larger than 16 MiB");
  std::ifstream in(file);
  const json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw DataCorruption(file.string(), "not a JSON object");
  const auto it = j.find("clean_up_tokenization_spaces");
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    throw DataCorruption(file.string(), "field 'clean_up_tokenization_spaces' is not a boolean");
  return it->get<bool>();
}

}  // namespace

ModelInfo ModelInfo::load(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(dir)) throw Error("model directory " + dir.string() + " does not exist");
  if (!fs::is_directory(dir))
    throw Error(dir.string() +
                " is not a directory (expected a model directory made by scripts/export_model.py)");
  const fs::path meta = dir / "model.json";
  const std::string path = meta.string();
  if (!fs::exists(meta))
    throw Error(dir.string() +
                " is not an s3attn model directory (no model.json); export one with "
                "scripts/export_model.py");

  std::ifstream in(meta);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception&) {
    throw DataCorruption(path, "not valid JSON; re-export the model with scripts/export_model.py");
  }
  if (!j.is_object() || j.value("format", "") != "s3attn-model")
    throw DataCorruption(path, "not an s3attn model.json (format field is not 's3attn-model')");
  const int version = required<int>(j, "format_version", path);
  if (version != kFormatVersion)
    throw DataCorruption(path, "format_version " + std::to_string(version) +
                                   " is not supported (this s3attn reads version " +
                                   std::to_string(kFormatVersion) + "); re-export the model");

  ModelInfo m;
  m.dir = dir;
  m.family = required<std::string>(j, "family", path);
  m.architecture = j.value("architecture", "");
  m.dtype = required<std::string>(j, "dtype", path);
  m.n_layers = required<int>(j, "n_layers", path);
  m.hidden_size = required<int>(j, "hidden_size", path);
  m.n_heads = required<int>(j, "n_heads", path);
  m.n_kv_heads = required<int>(j, "n_kv_heads", path);
  m.head_dim = required<int>(j, "head_dim", path);
  m.vocab_size = required<int>(j, "vocab_size", path);
  m.max_position_embeddings = required<int>(j, "max_position_embeddings", path);
  m.bos_token_id = optional_field<int32_t>(j, "bos_token_id", path);
  m.bos_token = optional_field<std::string>(j, "bos_token", path);
  m.add_bos_token = j.value("add_bos_token", false);
  m.stop_token_ids = required<std::vector<int32_t>>(j, "stop_token_ids", path);
  m.default_taps = required<std::vector<int>>(j, "default_taps", path);
  m.fingerprint = required<std::string>(j, "fingerprint", path);
  if (auto ct = j.find("chat_template"); ct != j.end() && !ct->is_null()) {
    m.chat_template = ChatTemplate{required<std::string>(*ct, "prefix", path),
                                   required<std::string>(*ct, "suffix", path)};
  }

  if (m.n_layers <= 0 || m.n_heads <= 0 || m.n_kv_heads <= 0 || m.head_dim <= 0 ||
      m.vocab_size <= 0 || m.n_heads % m.n_kv_heads != 0)
    throw DataCorruption(path, "inconsistent architecture fields (layers/heads/head_dim/vocab)");
  if (m.dtype != "float32" && m.dtype != "bfloat16" && m.dtype != "float16")
    throw DataCorruption(path, "unknown dtype '" + m.dtype + "'");
  for (int t : m.default_taps)
    if (t < 0 || t >= m.n_layers)
      throw DataCorruption(path, "default tap layer " + std::to_string(t) + " out of range");
  for (int32_t id : m.stop_token_ids)
    if (id < 0 || id >= m.vocab_size)
      throw DataCorruption(path, "stop token id " + std::to_string(id) + " out of range");
  if (!fs::exists(m.model_file()))
    throw Error(dir.string() +
                " has no model.ts; re-export the model with scripts/export_model.py");
  if (!fs::exists(m.tokenizer_file()))
    throw Error(dir.string() +
                " has no tokenizer.json; re-export the model with scripts/export_model.py");
  m.clean_up_tokenization_spaces = read_clean_up_flag(dir / "tokenizer_config.json");
  return m;
}

}  // namespace s3
