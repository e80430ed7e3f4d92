// What an index records about how it was built, in the metadata blob its writer stores
// (index/index_writer.h): the model, SAE and tokenizer, the scan's configuration (SAE indexes) and
// the dense model of its passage embeddings. The scan, the lexical scan and the passage embedder
// fill it; ask, evidence, longbench and inspect read it back. Its JSON keys live in
// index_metadata.cpp only. Free of LibTorch.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "sae/options.h"

namespace s3 {

// Chunk sizes the scan accepts (--chunk).
inline constexpr int kMinChunk = 16;
inline constexpr int kMaxChunk = 1 << 20;

// metadata["scan"]: how the SAE scan cut and encoded the documents.
struct ScanRecord {
  uint32_t chunk = 0;    // 0: not recorded (indexes written before it was)
  uint32_t overlap = 0;  // < chunk
  bool chunk_bos = false;
  bool rope = false;
  std::vector<int> layers;
  int64_t k = 0;
  int64_t d_latent = 0;
  sae::HeadMode head_mode = sae::HeadMode::kPerHead;
};

struct IndexMetadata {
  std::string model_dir;  // where the model was loaded from (may differ between appends)
  std::string model_fingerprint;
  std::string tokenizer_fingerprint;
  std::string sae_dir;          // SAE indexes; empty for a lexical-only one
  std::string sae_fingerprint;  // likewise
  bool has_scan = false;        // SAE indexes: `scan` below is recorded
  ScanRecord scan;
  std::string dense_model_dir;  // indexes with passage embeddings (--dense-model)
  // The dense model's identity (DenseModelInfo::identity()), null when none; and its fingerprint
  // (empty when it records none).
  nlohmann::json dense_model;
  std::string dense_model_fingerprint;
};

nlohmann::json to_json(const IndexMetadata& metadata);
nlohmann::json to_json(const ScanRecord& scan);  // metadata["scan"]

// Records the dense model of an index's passage embeddings in its metadata blob.
void set_dense_model(nlohmann::json& metadata, const nlohmann::json& identity,
                     const std::string& dir);

// Reads the recorded names and fingerprints; a key that is absent or not a string reads as empty
// (indexes written before it was recorded). The scan is read by read_scan_record.
IndexMetadata read_index_metadata(const nlohmann::json& metadata);

// The keys of paths, which may differ between an index and an --append to it (or the parts of a
// merge): the same model, SAE or dense model copied elsewhere.
std::vector<std::string> path_metadata_keys();

// Reads metadata["scan"] of an index whose manifest is `where`, with `layers` and `d_latent` the
// manifest's. The manifest's checksum catches accidents; this catches a hand-made or foreign
// manifest whose numbers would otherwise be used as they are (a chunk of -5 read as 4294967291).
// Absent fields take ScanRecord's defaults (layers and d_latent the manifest's); present ones must
// have their type and range (chunk in [kMinChunk, kMaxChunk], overlap in [0, chunk), k in [1,
// d_latent], d_latent and layers equal to the manifest's, head_mode one of its names). Throws
// s3::DataCorruption(where, ...).
ScanRecord read_scan_record(const nlohmann::json& metadata, std::span<const int> layers,
                            uint32_t d_latent, const std::string& where);

}  // namespace s3
