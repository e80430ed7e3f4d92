// tokenizer.json "normalizer": BertNormalizer, Lowercase, NFC, NFD, Prepend, Replace, StripAccents
// and Sequence of them. Internal.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/tokenizer_piece.h"

namespace s3::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `continued`: `p` continues a text that the tokenizer cut into pieces (long inputs are
  // tokenized piece by piece, core/tokenizer/tokenizer.cpp), so steps that act at the start of a
  // text only (Prepend) leave it alone.
  virtual void normalize(Piece& p, bool continued = false) const = 0;
  // Whether the result on the two sides of a cut equals the result on the whole text, whenever
  // the cut is before an ASCII space that follows a non-space and no match of the step's own
  // pattern crosses it (the tokenizer checks the latter on the text around each cut). False for
  // steps whose reach is not local (a Replace regex may match across any distance).
  virtual bool local() const = 0;
};

// nullptr for a JSON null; throws s3::Error naming an unsupported type.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& config);

}  // namespace s3::tok
