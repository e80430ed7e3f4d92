// What the fuzz targets of tests/fuzz share: small valid inputs built with the project's own
// writers (the seed corpus and the templates the targets mutate), scratch directories, and a walk
// over a successfully opened index that touches everything the reader hands out.
//
// Conventions of every target (docs/fuzzing.md): the documented failure of a reader, a thrown
// s3::Error (DataCorruption included), is a normal outcome; a crash, a sanitizer report, a hang, an
// exception of another type, or a broken documented invariant of what a reader accepted is a
// finding (the target aborts through fuzz_check).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace s3::index {
class IndexReader;
}

namespace s3::fuzz {

namespace fs = std::filesystem;

// Aborts with `what` on stderr when `ok` is false (a finding).
void fuzz_check(bool ok, const char* what);

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_bytes(const fs::path& path);
void write_bytes(const fs::path& path, std::string_view bytes);

// Small valid indexes written by IndexWriter from the index tests' random documents (fixed seeds):
//   0: varint-delta codec, one segment of three documents;
//   1: streamvbyte-delta codec, two segments (a create and an append) of two documents each.
inline constexpr int kFixtureIndexes = 2;
void write_fixture_index(const fs::path& dir, int variant);

// Every file of an index directory, relative path -> bytes (manifest.json included), sorted.
std::vector<std::pair<std::string, std::string>> index_files(const fs::path& dir);

// Calls every accessor of an opened index over its whole range and checks the reader's documented
// invariants (sorted postings inside the index, passages inside their documents, ...). A thrown
// s3::Error (a posting list that does not decode) is the documented lazy failure.
void walk_index(const s3::index::IndexReader& reader);

// Valid safetensors images written by SafetensorsWriter: an SAE layer file as `s3attn sae train`
// writes it (F32 W_enc, b_enc, W_dec, b_dec), one with mixed dtypes and metadata, an empty one.
std::vector<std::string> fixture_safetensors();

// JSONL inputs of `s3attn index --input rows.jsonl`: rows with text and name fields, blank lines,
// escapes and non-ASCII text.
std::vector<std::string> fixture_jsonl();

// Small tokenizer.json files: the tokenizer tests' hand-written shapes (byte-level BPE and
// SentencePiece-style BPE with byte fallback).
std::vector<std::string> fixture_tokenizers();

// A real tokenizer.json cut down to its first `keep` vocabulary entries and the merges among them,
// every other part (normalizer, pre-tokenizer, decoder, added tokens) unchanged: a seed of the
// real shape small enough to mutate quickly.
std::string shrink_tokenizer(std::string_view tokenizer_json, int keep);

}  // namespace s3::fuzz
