// Fuzz target: the index manifest reader (index/manifest.*) and what IndexReader::open does with
// the values it accepts (layer and feature counts, segment list, file digests).
//
// Input: byte 0, then the text of manifest.json. Bit 0 of byte 0 picks the fixture index whose
// segments the manifest describes (fuzz_fixtures.h). Bit 1 set: when the text parses as a JSON
// object, its "checksum" is recomputed before it is written, so that mutations reach the field
// checks behind the checksum (the text is written as parsed, re-serialized); clear: the text is
// written as given, which exercises the JSON parser and the checksum check themselves.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/base/error.h"
#include "index/checksum.h"
#include "index/index_reader.h"
#include "index/manifest.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace {

using namespace s3::fuzz;

struct State {
  ScratchDir scratch;
  fs::path dirs[kFixtureIndexes];
  State() {
    for (int v = 0; v < kFixtureIndexes; ++v) {
      dirs[v] = scratch.path() / ("index-" + std::to_string(v));
      write_fixture_index(dirs[v], v);
    }
  }
};

State& state() {
  static State s;
  return s;
}

// The checksum Manifest::to_json writes: XXH3-64 of the compact dump without it.
std::string resealed(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::string(text);
  j.erase("checksum");
  j["checksum"] = s3::index::checksum_hex(s3::index::xxh3_64(j.dump()));
  return j.dump();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  state();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const fs::path& dir = state().dirs[data[0] & 1];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string original = read_bytes(dir / s3::index::kManifestFile);
  write_bytes(dir / s3::index::kManifestFile, (data[0] & 2) ? resealed(text) : std::string(text));
  try {
    const s3::index::IndexReader reader = s3::index::IndexReader::open(dir);
    walk_index(reader);
  } catch (const s3::Error&) {
    // The documented refusal of a bad manifest.
  }
  write_bytes(dir / s3::index::kManifestFile, original);
  return 0;
}
