// Fuzz target: the segment files of an index (docs.bin, text.bin, tokens.bin, lexical.bin,
// postings-lNNN.bin) through IndexReader::open and every accessor of the reader it returns.
//
// Input: byte 0, then the new content of one file of a fixture index (fuzz_fixtures.h). Byte 0:
// bit 0 picks the fixture index, bits 2-7 the file (modulo the number of segment files, in sorted
// path order). Bit 1 clear ("resealed"): the file's footer checksum is recomputed over its bytes
// and the manifest's size and checksum for it are updated (the production Manifest::save), as a
// consistent but hostile writer would do, so that mutations reach the body parsers behind the
// checksums. Bit 1 set: the content is written as given and the manifest left alone, which
// exercises the envelope checks (size, magic, version, footer, checksums).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/base/error.h"
#include "index/checksum.h"
#include "index/file_format.h"
#include "index/index_reader.h"
#include "index/manifest.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace {

using namespace s3::fuzz;

struct Fixture {
  fs::path dir;
  std::string manifest_text;
  s3::index::Manifest manifest;
  std::vector<std::pair<std::string, std::string>> files;  // segment files: "seg-x/name" -> bytes
};

struct State {
  ScratchDir scratch;
  Fixture fixtures[kFixtureIndexes];
  State() {
    for (int v = 0; v < kFixtureIndexes; ++v) {
      Fixture& f = fixtures[v];
      f.dir = scratch.path() / ("index-" + std::to_string(v));
      write_fixture_index(f.dir, v);
      f.manifest = s3::index::Manifest::load(f.dir);
      for (auto& [name, bytes] : index_files(f.dir)) {
        if (name == s3::index::kManifestFile) {
          f.manifest_text = bytes;
        } else {
          f.files.emplace_back(name, bytes);
        }
      }
    }
  }
};

State& state() {
  static State s;
  return s;
}

// Makes the chosen fixture and file visible to coverage: runs of the valid seeds are otherwise
// identical, and libFuzzer would keep only one of them (and so mutate only one file kind).
volatile size_t g_marked;
template <size_t N>
[[gnu::noinline]] void mark() {
  g_marked = N;
}
template <size_t... N>
void mark_selection(size_t selection, std::index_sequence<N...>) {
  static void (*const kMarks[])() = {mark<N>...};
  kMarks[selection % sizeof...(N)]();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  state();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Fixture& f = state().fixtures[data[0] & 1];
  const bool raw = (data[0] & 2) != 0;
  const size_t file = (data[0] >> 2) % f.files.size();
  mark_selection((data[0] & 1) * 16 + file, std::make_index_sequence<2 * 16>());
  const auto& [name, original] = f.files[file];
  std::string content(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!raw) {
    using s3::index::kFooterBytes;
    s3::index::FileDigest digest{content.size(), 0};
    if (content.size() >= kFooterBytes) {
      digest.xxh3 = s3::index::xxh3_64(content.data(), content.size() - kFooterBytes);
      std::memcpy(content.data() + content.size() - kFooterBytes, &digest.xxh3, 8);
    }
    s3::index::Manifest m = f.manifest;
    const fs::path rel(name);
    for (s3::index::SegmentEntry& e : m.segments) {
      if (e.dir == rel.parent_path().string()) e.files[rel.filename().string()] = digest;
    }
    m.save(f.dir, /*fsync=*/false);
  }
  write_bytes(f.dir / name, content);
  try {
    const s3::index::IndexReader reader = s3::index::IndexReader::open(f.dir);
    walk_index(reader);
  } catch (const s3::Error&) {
    // The documented refusal of a corrupt index.
  }
  write_bytes(f.dir / name, original);
  if (!raw) write_bytes(f.dir / s3::index::kManifestFile, f.manifest_text);
  return 0;
}
