// tokenizer.json "decoder": ByteLevel, ByteFallback, Fuse, Metaspace, Replace, Strip, WordPiece and
// Sequence,
// each a step over the list of token strings as in Hugging Face tokenizers' decode_chain. The
// decoded text is the concatenation of the final list. Internal.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace s3::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for a JSON null; throws s3::Error naming an unsupported type.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& config);

}  // namespace s3::tok
