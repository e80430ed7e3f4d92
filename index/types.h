// Plain value types shared by the index writer and reader. No dependencies beyond the standard
// library.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace s3::index {

// Global token positions are uint32: an index holds at most kMaxTokens tokens over all its
// segments. Position 0xFFFFFFFF is reserved (the posting accumulator uses it as "no posting yet").
inline constexpr uint64_t kMaxTokens = std::numeric_limits<uint32_t>::max() - 1;

// Byte range [begin, end) of one token in its document's text. begin is non-decreasing along a
// document (tokenizers emit offsets in order); begin == end for tokens with no text (e.g. BOS).
struct TokenOffset {
  uint32_t begin = 0;
  uint32_t end = 0;
  friend bool operator==(const TokenOffset&, const TokenOffset&) = default;
};
static_assert(sizeof(TokenOffset) == 8);

// What an index holds besides its documents, tokens and BM25 passages (and dense vectors).
enum class IndexContent : uint8_t {
  kSaeFeatures,  // feature postings of every tapped layer: `s3attn index --sae`
  // No SAE layers and no feature postings: built by tokenizing only (`s3attn index` without
  // --sae). Methods bm25, dense and full read it; the SAE methods refuse it.
  kLexicalOnly,
};

// A document as the reader exposes it. Token positions are global; text points into the mmap.
struct DocumentView {
  uint32_t id = 0;           // global document id (0-based, in insertion order over all segments)
  std::string_view name;     // caller-given name (file path, JSONL key, ...)
  uint32_t token_begin = 0;  // first global token position
  uint32_t token_end = 0;    // one past the last
  std::string_view text;     // exact original bytes
  uint32_t n_tokens() const { return token_end - token_begin; }
};

// What add_document() hands back.
struct DocumentRange {
  uint32_t doc = 0;          // global document id
  uint32_t token_begin = 0;  // global position of its first token
  uint32_t token_end = 0;    // one past its last token
};

// One BM25 passage: a run of whole sentences (~target_words words) of one document.
// Passages of a document tile it: byte ranges are contiguous from 0 to the text's end, and so are
// token ranges (a token belongs to the passage holding its first byte).
struct Passage {
  uint32_t doc = 0;          // global document id
  uint32_t token_begin = 0;  // global token range [token_begin, token_end)
  uint32_t token_end = 0;
  uint32_t byte_begin = 0;  // byte range [byte_begin, byte_end) in the document's text
  uint32_t byte_end = 0;
  uint32_t length = 0;  // number of analyzed terms (the BM25 document length)
  friend bool operator==(const Passage&, const Passage&) = default;
};

}  // namespace s3::index
