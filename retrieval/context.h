// Context assembly (docs/method.md §6.4): the selected ranges, in document order, as exact original
// text, joined by a short separator where the document was cut.
#pragma once

#include <functional>
#include <span>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/types.h"

namespace s3::retrieval {

struct ContextOptions {
  // --separator: placed between two selected ranges that are not adjacent in the document (never
  // between adjacent ones, never at the ends). Default "\n...\n": an ellipsis is the conventional
  // mark of omitted text, the newlines keep it from gluing onto a word, and it costs a model only
  // 2–3 tokens. May be empty.
  std::string separator = "\n...\n";

  void validate() const {}  // every string is valid
};
void to_json(nlohmann::json& j, const ContextOptions& o);

// The exact text of a token range [begin, end) (the index's token store provides it).
using RangeText = std::function<std::string(TokenRange)>;

// Joins the ranges' text in order. Ranges must be sorted and non-overlapping (s3::Error
// otherwise); touching ranges are fetched as one range, so the text is exact even where a token's
// bytes are not split cleanly at range boundaries.
std::string assemble_context(std::span<const SelectedRange> ranges, const RangeText& text,
                             const ContextOptions& options = {});

}  // namespace s3::retrieval
