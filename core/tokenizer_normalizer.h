// tokenizer.json "normalizer": BertNormalizer, Lowercase, NFC, NFD, Prepend, Replace, StripAccents
// and Sequence of them. Internal.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer_piece.h"

namespace s3::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(Piece& p) const = 0;
};

// nullptr for a JSON null; throws s3::Error naming an unsupported type.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& config);

}  // namespace s3::tok
