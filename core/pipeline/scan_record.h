// The scan configuration an index records in its metadata (Scanner::metadata()["scan"]), read back
// and checked for `ask` and `longbench`. The manifest's checksum catches accidents; this catches a
// hand-made or foreign manifest whose numbers would otherwise be used as they are (a chunk of -5
// read as 4294967291). Free of LibTorch.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>

namespace s3 {

// Chunk sizes the scan accepts (--chunk).
inline constexpr int kMinChunk = 16;
inline constexpr int kMaxChunk = 1 << 20;

struct ScanRecord {
  uint32_t chunk = 0;    // 0: not recorded (indexes written before it was)
  uint32_t overlap = 0;  // < chunk
  bool chunk_bos = false;
  bool rope = false;
};

// Reads metadata["scan"] of an index whose manifest is `where`, with `layers` and `d_latent` the
// manifest's. Absent fields take the defaults above; present ones must have their type and range
// (chunk in [kMinChunk, kMaxChunk], overlap in [0, chunk), k in [1, d_latent], d_latent and layers
// equal to the manifest's). Throws s3::DataCorruption(where, ...).
ScanRecord read_scan_record(const nlohmann::json& metadata, std::span<const int> layers,
                            uint32_t d_latent, const std::string& where);

}  // namespace s3
