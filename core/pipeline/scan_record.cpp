#include "core/pipeline/scan_record.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/base/error.h"
#include "core/base/json_fields.h"

namespace s3 {

ScanRecord read_scan_record(const nlohmann::json& metadata, std::span<const int> layers,
                            uint32_t d_latent, const std::string& where) {
  auto bad = [&](const std::string& what) -> void {
    throw DataCorruption(where, "metadata.scan: " + what + "; rebuild the index with --overwrite");
  };
  ScanRecord r;
  if (!metadata.is_object()) bad("the metadata is not an object");
  auto it = metadata.find("scan");
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
  integer("k", 1, d_latent);
  integer("d_latent", d_latent, d_latent);
  if (auto f = scan.find("layers"); f != scan.end()) {
    const std::optional<std::vector<int>> listed = json_integers<int>(*f);
    if (!listed || !std::equal(listed->begin(), listed->end(), layers.begin(), layers.end()))
      bad("'layers' differs from the manifest's layers");
  }
  if (auto f = scan.find("head_mode");
      f != scan.end() && (!f->is_string() || (*f != "per-head" && *f != "concat")))
    bad("'head_mode' is not per-head or concat");
  return r;
}

}  // namespace s3
