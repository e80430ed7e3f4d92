// On-disk records of a segment's files (bodies inside the common envelope of file_format.h).
// docs/index-format.md draws the layouts; any change here is a format change (bump kFormatVersion).
// All records are little-endian, naturally aligned, without implicit padding.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

namespace s3::index {

// File names inside a segment directory.
inline constexpr const char* kDocsFile = "docs.bin";
inline constexpr const char* kTextFile = "text.bin";
inline constexpr const char* kTokensFile = "tokens.bin";
inline constexpr const char* kLexicalFile = "lexical.bin";
inline constexpr const char* kDenseFile =
    "dense.bin";                            // only in indexes built with dense embeddings
std::string postings_file_name(int layer);  // "postings-l012.bin" (real layer number)

// docs.bin body: DocsHeader, DocRecord[n_docs], names blob (UTF-8, concatenated).
struct DocsHeader {
  uint32_t n_docs;
  uint32_t reserved;
  uint64_t names_bytes;
};
struct DocRecord {
  uint32_t token_begin;  // segment-local token range [token_begin, token_end)
  uint32_t token_end;
  uint64_t text_offset;  // into text.bin's body
  uint64_t text_bytes;
  uint64_t name_offset;  // into the names blob
  uint64_t name_bytes;
};

// text.bin body: the documents' texts, concatenated, no separators.

// tokens.bin body: TokensHeader, int32 ids[n_tokens], pad to 8, TokenOffset offsets[n_tokens].
struct TokensHeader {
  uint32_t n_tokens;
  uint32_t reserved;
};

// postings-lNNN.bin body: PostingsHeader, uint32 df[d_latent], pad to 8,
// uint64 offsets[d_latent + 1] (into data; offsets[0] = 0, offsets[d_latent] = data_bytes), data.
// Positions are segment-local (add the segment's token_base for global positions).
struct PostingsHeader {
  uint32_t codec_id;
  int32_t layer;        // real layer number
  uint32_t layer_slot;  // index into the manifest's layer list
  uint32_t d_latent;
  uint32_t n_tokens;  // of the segment: every position is < n_tokens
  uint32_t reserved;
  uint64_t n_postings;  // sum of df
  uint64_t data_bytes;
};

// lexical.bin body: LexicalHeader, PassageRecord[n_passages], pad to 8,
// uint64 term_offsets[n_terms + 1] (into the terms blob), uint64 posting_offsets[n_terms + 1],
// uint32 passage_ids[n_postings], uint32 tfs[n_postings], terms blob (terms sorted bytewise).
struct LexicalHeader {
  uint32_t n_passages;
  uint32_t n_terms;
  uint64_t n_postings;
  uint64_t total_length;  // sum of passage lengths
  uint32_t target_words;
  uint32_t reserved;
};
struct PassageRecord {
  uint32_t doc;          // segment-local document
  uint32_t token_begin;  // segment-local token range
  uint32_t token_end;
  uint32_t byte_begin;  // byte range in the document's text
  uint32_t byte_end;
  uint32_t length;  // number of terms
};

// dense.bin body: DenseHeader, then uint16 vectors[n_passages][dim] (IEEE binary16), one row per
// passage of lexical.bin in its order: the unit-length embedding of the passage's text.
inline constexpr uint32_t kDenseFloat16 = 1;  // DenseHeader::dtype
struct DenseHeader {
  uint32_t n_passages;  // equals lexical.bin's
  uint32_t dim;
  uint32_t dtype;  // kDenseFloat16
  uint32_t reserved;
};

static_assert(sizeof(DocsHeader) == 16 && sizeof(DocRecord) == 40);
static_assert(sizeof(DenseHeader) == 16);
static_assert(sizeof(TokensHeader) == 8);
static_assert(sizeof(PostingsHeader) == 40);
static_assert(sizeof(LexicalHeader) == 32 && sizeof(PassageRecord) == 24);
static_assert(std::is_trivially_copyable_v<DocRecord> &&
              std::is_trivially_copyable_v<PassageRecord>);

}  // namespace s3::index
