// Context assembly (docs/method.md §6.4): the selected ranges, in document order, as exact original
// text, joined by a short separator where the document was cut; evidence drawn from several
// documents is grouped per document under a header naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/types.h"

namespace s3::retrieval {

struct ContextOptions {
  // --separator: placed between two selected ranges of one document that are not adjacent in it
  // (never between adjacent ones, never at the ends). Default "\n...\n": an ellipsis is the
  // conventional mark of omitted text, the newlines keep it from gluing onto a word, and it costs
  // a model only 2–3 tokens. May be empty.
  std::string separator = "\n...\n";
  // --document-header: placed before each document's ranges when the evidence comes from an index
  // of several documents; "{name}" is replaced by the document's name. Default "[Document:
  // {name}]\n" (a model must know where one document ends and the next begins, and which one it is
  // reading).
  std::string document_header = "[Document: {name}]\n";
  // Between the groups of two documents (never at the ends). Default a blank line.
  std::string document_separator = "\n\n";

  void validate() const {}  // every string is valid
};
void to_json(nlohmann::json& j, const ContextOptions& o);

// The exact text of a token range [begin, end) of one document (the index's token store provides
// it).
using RangeText = std::function<std::string(TokenRange)>;

// The documents of the searched range, for grouping evidence under a header per document.
struct DocumentBoundaries {
  std::span<const uint32_t> starts;           // global first position of each document, ascending
  std::function<std::string(uint32_t)> name;  // a document's name, by its index in `starts`
};

// Joins the ranges' text in order. Ranges must be sorted and non-overlapping (s3::Error
// otherwise); touching ranges of one document are fetched as one range, so the text is exact even
// where a token's bytes are not split cleanly at range boundaries. Without `documents` (or with
// empty starts) the ranges must lie in one document and no header is written; with them, a range
// that crosses a document boundary is cut there, and each document's ranges follow
// `options.document_header`, groups joined by `options.document_separator`.
std::string assemble_context(std::span<const SelectedRange> ranges, const RangeText& text,
                             const ContextOptions& options = {},
                             const DocumentBoundaries& documents = {});

// The ranges cut at document boundaries (a range that spans documents becomes one per document,
// with the same source and score). `starts` as in DocumentBoundaries; empty: returned unchanged.
std::vector<SelectedRange> split_at_documents(std::span<const SelectedRange> ranges,
                                              std::span<const uint32_t> starts);

}  // namespace s3::retrieval
