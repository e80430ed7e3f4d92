// manifest.json: the index's table of contents and the only mutable file of an index directory.
// It is replaced atomically (write-temp + rename), so it always lists complete segments only.
// Fields are documented in docs/index-format.md ("manifest.json").
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/file_format.h"
#include "index/lexical_index.h"
#include "index/types.h"

namespace s3::index {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kFormatName = "s3attn-index";
// A manifest larger than this is refused before it is parsed (a real one is a few KiB per segment).
inline constexpr uint64_t kMaxManifestBytes = uint64_t{64} << 20;

struct SegmentEntry {
  std::string dir;  // "seg-000000", relative to the index directory
  uint32_t doc_base = 0;
  uint32_t n_docs = 0;
  uint32_t token_base = 0;
  uint32_t n_tokens = 0;
  uint32_t passage_base = 0;
  uint32_t n_passages = 0;
  std::vector<uint64_t> postings;           // per layer slot
  std::vector<uint64_t> postings_bytes;     // encoded posting bytes per layer slot (data area only)
  std::map<std::string, FileDigest> files;  // file name -> size and XXH3-64
};

// Dense passage embeddings (dense.bin in every segment), present when the index was built with
// them.
struct DenseInfo {
  uint32_t dim = 0;
  std::string dtype = "float16";
  friend bool operator==(const DenseInfo&, const DenseInfo&) = default;
};

// The manifest's "content" value of a lexical-only index. Indexes with SAE features have no
// "content" field (every index written before lexical-only ones existed is one of them).
inline constexpr const char* kLexicalOnlyContent = "lexical-only";

struct Manifest {
  uint32_t format_version = kFormatVersion;
  std::string created_by;  // "s3attn-index <version>"
  // kLexicalOnly: `layers` is empty, d_latent 0, and no segment lists a postings file.
  IndexContent content = IndexContent::kSaeFeatures;
  std::vector<int> layers;  // real layer numbers; position = layer slot
  uint32_t d_latent = 0;
  std::string codec;      // codec name
  uint32_t codec_id = 0;  // its stable id
  LexicalOptions lexical;
  uint32_t analyzer_version = 0;
  nlohmann::json metadata =
      nlohmann::json::object();    // caller's fingerprints and scan config, verbatim
  std::optional<DenseInfo> dense;  // absent in indexes without dense embeddings
  std::vector<SegmentEntry> segments;

  uint32_t n_docs() const;
  uint32_t n_tokens() const;
  uint32_t n_passages() const;

  // JSON with derived "totals" and a "checksum" (XXH3-64 of the compact dump without it).
  nlohmann::json to_json() const;
  // Throws DataCorruption(path, ...) on a missing/ill-typed field, a wrong format or version, or a
  // checksum mismatch.
  static Manifest from_json(const nlohmann::json& j, const std::string& path);
  // Reads <dir>/manifest.json. Throws DataCorruption naming it when missing or invalid.
  static Manifest load(const std::filesystem::path& dir);
  // Writes <dir>/manifest.json atomically.
  void save(const std::filesystem::path& dir, bool fsync) const;
};

}  // namespace s3::index
