#include "core/runtime/model_info.h"

#include <nlohmann/json.hpp>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/base/file_read.h"
#include "core/base/json_fields.h"

namespace s3 {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

[[noreturn]] void bad(const std::string& path, const char* key, const std::string& what) {
  throw DataCorruption(path, std::string("field '") + key + "' " + what +
                                 "; re-export the model with scripts/export_model.py");
}

// A field's JSON value: nullptr when absent or null.
const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

const json& required(const json& j, const char* key, const std::string& path) {
  if (const json* v = find(j, key)) return *v;
  throw DataCorruption(path, std::string("missing field '") + key +
                                 "'; re-export the model with scripts/export_model.py");
}

// Integers must be JSON integers in [lo, hi]: nlohmann's get<int>() would take 7.5, true or 2^40.
int integer(const json& v, const char* key, const std::string& path, int lo, int hi) {
  const std::optional<int> x = json_integer<int>(v);
  if (!x || *x < lo || *x > hi) bad(path, key, "is not an integer in " + range_text<int>(lo, hi));
  return *x;
}

int required_int(const json& j, const char* key, const std::string& path, int lo, int hi) {
  return integer(required(j, key, path), key, path, lo, hi);
}

std::optional<int> optional_int(const json& j, const char* key, const std::string& path, int lo,
                                int hi) {
  const json* v = find(j, key);
  return v ? std::optional<int>(integer(*v, key, path, lo, hi)) : std::nullopt;
}

std::vector<int> int_list(const json& v, const char* key, const std::string& path, int lo, int hi) {
  if (!v.is_array()) bad(path, key, "is not a list of integers");
  std::vector<int> out;
  for (const json& e : v)
    out.push_back(integer(e, key, path, lo, hi));
  return out;
}

std::string string_field(const json& v, const char* key, const std::string& path) {
  if (!v.is_string()) bad(path, key, "is not a string");
  return v.get<std::string>();
}

std::optional<std::string> optional_string(const json& j, const char* key,
                                           const std::string& path) {
  const json* v = find(j, key);
  return v ? std::optional<std::string>(string_field(*v, key, path)) : std::nullopt;
}

bool optional_bool(const json& j, const char* key, const std::string& path, bool fallback) {
  const json* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(path, key, "is not true or false");
  return v->get<bool>();
}

// Fields the runtime does not read (model.ts holds them) are still checked: a model.json that
// says "rope_theta": "1e4" was not made by the exporter.
void check_documented_fields(const json& j, const std::string& path, const ModelInfo& m) {
  for (const char* key : {"rope_theta", "rms_norm_eps"}) {
    if (const json* v = find(j, key); v && (!json_number(*v) || *json_number(*v) <= 0))
      bad(path, key, "is not a positive number");
  }
  optional_int(j, "intermediate_size", path, 1, INT32_MAX);
  optional_int(j, "sliding_window", path, 1, INT32_MAX);
  for (const char* key : {"eos_token_id", "pad_token_id"})
    optional_int(j, key, path, 0, m.vocab_size - 1);
  for (const char* key : {"tie_word_embeddings", "attention_bias"})
    optional_bool(j, key, path, false);
  if (const json* v = find(j, "sliding_window_layers"))
    int_list(*v, "sliding_window_layers", path, 0, m.n_layers - 1);
  if (const json* v = find(j, "rope_scaling"); v && !v->is_object())
    bad(path, "rope_scaling", "is not null or an object");
}

// tokenizer_config.json's clean_up_tokenization_spaces; false when the file or the field is absent
// (transformers' default).
bool read_clean_up_flag(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return false;
  const json j = json::parse(read_regular_file(file, kMaxModelJsonBytes, "tokenizer_config.json"),
                             nullptr, false);
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
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error("model directory " + dir.string() + " does not exist");
  if (!fs::is_directory(dir, ec))
    throw Error(dir.string() +
                " is not a directory (expected a model directory made by scripts/export_model.py)");
  const fs::path meta = dir / "model.json";
  const std::string path = meta.string();
  if (!fs::exists(meta, ec))
    throw Error(dir.string() +
                " is not an s3attn model directory (no model.json); export one with "
                "scripts/export_model.py");

  json j;
  try {
    j = json::parse(read_regular_file(meta, kMaxModelJsonBytes, "model.json"));
  } catch (const json::exception&) {
    throw DataCorruption(path, "not valid JSON; re-export the model with scripts/export_model.py");
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != "s3attn-model")
    throw DataCorruption(path, "not an s3attn model.json (format field is not 's3attn-model')");
  const int version = required_int(j, "format_version", path, 0, INT32_MAX);
  if (version != kFormatVersion)
    throw DataCorruption(path, "format_version " + std::to_string(version) +
                                   " is not supported (this s3attn reads version " +
                                   std::to_string(kFormatVersion) + "); re-export the model");

  // Upper bounds far above any real model, so that sizes computed from them cannot overflow.
  constexpr int kMaxCount = 1 << 16;  // layers, heads
  ModelInfo m;
  m.dir = dir;
  m.family = string_field(required(j, "family", path), "family", path);
  m.architecture = optional_string(j, "architecture", path).value_or("");
  const std::string dtype = string_field(required(j, "dtype", path), "dtype", path);
  const std::optional<DType> parsed_dtype = parse_dtype(dtype);
  if (!parsed_dtype) throw DataCorruption(path, "unknown dtype '" + dtype + "'");
  m.dtype = *parsed_dtype;
  m.n_layers = required_int(j, "n_layers", path, 1, kMaxCount);
  m.hidden_size = required_int(j, "hidden_size", path, 1, INT32_MAX);
  m.n_heads = required_int(j, "n_heads", path, 1, kMaxCount);
  m.n_kv_heads = required_int(j, "n_kv_heads", path, 1, kMaxCount);
  m.head_dim = required_int(j, "head_dim", path, 1, kMaxCount);
  m.vocab_size = required_int(j, "vocab_size", path, 1, INT32_MAX);
  m.max_position_embeddings = required_int(j, "max_position_embeddings", path, 1, kMaxWindow);
  m.bos_token_id = optional_int(j, "bos_token_id", path, 0, m.vocab_size - 1);
  m.bos_token = optional_string(j, "bos_token", path);
  m.add_bos_token = optional_bool(j, "add_bos_token", path, false);
  for (int id :
       int_list(required(j, "stop_token_ids", path), "stop_token_ids", path, 0, m.vocab_size - 1))
    m.stop_token_ids.push_back(id);
  m.default_taps =
      int_list(required(j, "default_taps", path), "default_taps", path, 0, m.n_layers - 1);
  m.fingerprint = string_field(required(j, "fingerprint", path), "fingerprint", path);
  if (const json* ct = find(j, "chat_template")) {
    if (!ct->is_object()) bad(path, "chat_template", "is not null or an object");
    m.chat_template =
        ChatTemplate{string_field(required(*ct, "prefix", path), "chat_template.prefix", path),
                     string_field(required(*ct, "suffix", path), "chat_template.suffix", path)};
  }
  check_documented_fields(j, path, m);

  if (m.n_heads % m.n_kv_heads != 0)
    throw DataCorruption(path, "n_heads " + std::to_string(m.n_heads) +
                                   " is not a multiple of n_kv_heads " +
                                   std::to_string(m.n_kv_heads));
  if (m.add_bos_token && !m.bos_token_id)
    throw DataCorruption(path, "add_bos_token is true but bos_token_id is null");
  for (const fs::path& file : {m.model_file(), m.tokenizer_file()}) {
    if (!fs::exists(file, ec))
      throw Error(dir.string() + " has no " + file.filename().string() +
                  "; re-export the model with scripts/export_model.py");
    regular_file_size(file, file.filename().string());
  }
  m.clean_up_tokenization_spaces = read_clean_up_flag(dir / "tokenizer_config.json");
  return m;
}

}  // namespace s3
