// tokenizer.json "pre_tokenizer": Split, ByteLevel, BertPreTokenizer, Digits, Metaspace and
// Sequence of them. Each one cuts every text piece into smaller pieces (and may rewrite them);
// added-token pieces pass through untouched; empty pieces are dropped. Internal.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "core/tokenizer/tokenizer_piece.h"

namespace s3::tok {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// nullptr for a JSON null; throws s3::Error naming an unsupported type.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& config);

}  // namespace s3::tok
