#include "core/pipeline/index_metadata.h"

#include <algorithm>
#include <optional>

#include "core/base/error.h"
#include "core/base/json_fields.h"

namespace s3 {
namespace {

constexpr const char* kModelDir = "model_dir";
constexpr const char* kModelFingerprint = "model_fingerprint";
constexpr const char* kTokenizerFingerprint = "tokenizer_fingerprint";
constexpr const char* kSaeDir = "sae_dir";
constexpr const char* kSaeFingerprint = "sae_fingerprint";
constexpr const char* kScan = "scan";
constexpr const char* kDenseModel = "dense_model";
constexpr const char* kDenseModelDir = "dense_model_dir";

std::string string_field(const nlohmann::json& meta, const char* key) {
  auto it = meta.find(key);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<sae::HeadMode> head_mode_named(const nlohmann::json& value) {
  if (!value.is_string()) return std::nullopt;
  return parse_enum(sae::kHeadModeNames, value.get<std::string>());
}

}  // namespace

nlohmann::json to_json(const IndexMetadata& m) {
  nlohmann::json j = {{kModelFingerprint, m.model_fingerprint},
                      {kModelDir, m.model_dir},
                      {kTokenizerFingerprint, m.tokenizer_fingerprint}};
  if (!m.sae_dir.empty() || !m.sae_fingerprint.empty()) {
    j[kSaeFingerprint] = m.sae_fingerprint;
    j[kSaeDir] = m.sae_dir;
  }
  if (m.has_scan) j[kScan] = to_json(m.scan);
  if (!m.dense_model.is_null()) set_dense_model(j, m.dense_model, m.dense_model_dir);
  return j;
}

nlohmann::json to_json(const ScanRecord& s) {
  return {{"chunk", s.chunk},         {"layers", s.layers},
          {"rope", s.rope},           {"overlap", s.overlap},
          {"chunk_bos", s.chunk_bos}, {"k", s.k},
          {"d_latent", s.d_latent},   {"head_mode", std::string(sae::to_string(s.head_mode))}};
}

void set_dense_model(nlohmann::json& metadata, const nlohmann::json& identity,
                     const std::string& dir) {
  metadata[kDenseModel] = identity;
  metadata[kDenseModelDir] = dir;
}

IndexMetadata read_index_metadata(const nlohmann::json& meta) {
  IndexMetadata m;
  if (!meta.is_object()) return m;
  m.model_dir = string_field(meta, kModelDir);
  m.model_fingerprint = string_field(meta, kModelFingerprint);
  m.tokenizer_fingerprint = string_field(meta, kTokenizerFingerprint);
  m.sae_dir = string_field(meta, kSaeDir);
  m.sae_fingerprint = string_field(meta, kSaeFingerprint);
  m.dense_model_dir = string_field(meta, kDenseModelDir);
  if (auto it = meta.find(kDenseModel); it != meta.end()) {
    m.dense_model = *it;
    if (it->is_object()) m.dense_model_fingerprint = string_field(*it, "fingerprint");
  }
  return m;
}

std::vector<std::string> path_metadata_keys() {
  return {kModelDir, kSaeDir, kDenseModelDir};
}

ScanRecord read_scan_record(const nlohmann::json& metadata, std::span<const int> layers,
                            uint32_t d_latent, const std::string& where) {
  auto bad = [&](const std::string& what) -> void {
    throw DataCorruption(where, "metadata.scan: " + what + "; rebuild the index with --overwrite");
  };
  ScanRecord r;
  r.layers.assign(layers.begin(), layers.end());
  r.d_latent = d_latent;
  if (!metadata.is_object()) bad("the metadata is not an object");
  auto it = metadata.find(kScan);
  if (it == metadata.end() || it->is_null()) return r;
  const nlohmann::json& scan = *it;
  if (!scan.is_object()) bad("not an object");
  auto integer = [&](const char* key, int64_t lo, int64_t hi) -> std::optional<int64_t> {
    auto f = scan.find(key);
    if (f == scan.end()) return std::nullopt;
    const std::optional<int64_t> v = json_integer<int64_t>(*f);
    if (!v || *v < lo || *v > hi)
      bad(std::string("'") + key + "' is not an integer in " + range_text<int64_t>(lo, hi));
    return v;
  };
  auto boolean = [&](const char* key) {
    auto f = scan.find(key);
    if (f == scan.end()) return false;
    if (!f->is_boolean()) bad(std::string("'") + key + "' is not true or false");
    return f->get<bool>();
  };
  if (const auto chunk = integer("chunk", kMinChunk, kMaxChunk))
    r.chunk = static_cast<uint32_t>(*chunk);
  if (const auto overlap = integer("overlap", 0, r.chunk ? r.chunk - 1 : 0))
    r.overlap = static_cast<uint32_t>(*overlap);
  r.chunk_bos = boolean("chunk_bos");
  r.rope = boolean("rope");
  if (const auto k = integer("k", 1, d_latent)) r.k = *k;
  integer("d_latent", d_latent, d_latent);
  if (auto f = scan.find("layers"); f != scan.end()) {
    const std::optional<std::vector<int>> listed = json_integers<int>(*f);
    if (!listed || !std::equal(listed->begin(), listed->end(), layers.begin(), layers.end()))
      bad("'layers' differs from the manifest's layers");
  }
  if (auto f = scan.find("head_mode"); f != scan.end()) {
    const std::optional<sae::HeadMode> mode = head_mode_named(*f);
    if (!mode) bad("'head_mode' is not per-head or concat");
    r.head_mode = *mode;
  }
  return r;
}

}  // namespace s3
