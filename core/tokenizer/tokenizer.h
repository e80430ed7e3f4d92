// s3::Tokenizer: reads a Hugging Face tokenizer.json and encodes / decodes exactly as the Python
// `tokenizers` library does (Tokenizer.encode(text, add_special_tokens=False)): same ids, same
// offsets, same decoded text. Supported: BPE models (byte-level as in GPT-2 / Llama-3 / Qwen /
// SmolLM2, SentencePiece-style with byte fallback as in Llama-2 / Mistral), WordPiece models with
// BERT's normalizer and pre-tokenizer (BERT, MiniLM sentence encoders), the normalizers,
// pre-tokenizers and decoders those use, and added tokens. Anything else is refused at load with
// an error naming the component. See core/README.md, section "Tokenizer".
//
// No LibTorch, no third-party types in this header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace s3 {

// tokenizer.json files larger than this are refused before they are parsed (the largest real ones,
// with vocabularies of ~250K tokens, are ~35 MB).
inline constexpr uint64_t kMaxTokenizerJsonBytes = uint64_t{256} << 20;

struct Encoding {
  std::vector<int32_t> ids;
  // offsets[i] = [begin, end) byte range of token i in the ORIGINAL input text. Ranges start and
  // end on UTF-8 code point boundaries and never decrease; tokens that share one code point (a
  // character split into several byte tokens) share its range, as in `tokenizers`.
  std::vector<std::pair<uint32_t, uint32_t>> offsets;
};

class Tokenizer {
 public:
  // Throws s3::Error (missing or unreadable file, not a regular file, larger than
  // kMaxTokenizerJsonBytes, unsupported component) or s3::DataCorruption
  // (not JSON, no "model") with a one-line message that names the file.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // The same from the JSON text itself; `origin` names it in error messages.
  static Tokenizer from_json(std::string_view json_text,
                             const std::string& origin = "tokenizer.json");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text` (UTF-8). No special tokens are added (no BOS); added/special-token strings
  // inside the text become their ids. Throws s3::Error if `text` is not valid UTF-8. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // The same ids and the byte range of each token in `text`.
  Encoding encode_with_offsets(std::string_view text) const;

  // Text of `ids` through the tokenizer's decoder (invalid UTF-8 becomes U+FFFD). Ids that are not
  // in the vocabulary are skipped; so are special tokens when skip_special_tokens is set (exactly:
  // tokens whose string is the content of a special added token, which is what tokenizers does).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The vocabulary string of `id` (e.g. "Ġworld", "<0x0A>", "<|begin_of_text|>"; for an added
  // token with normalized=true, its content after the normalizer, as in tokenizers); throws
  // s3::Error for an id outside the vocabulary.
  std::string token_text(int32_t id) const;
  // The id of a vocabulary string, added tokens included.
  std::optional<int32_t> token_id(std::string_view token) const;
  // One past the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  // Whether `id` is an added token marked "special".
  bool is_special(int32_t id) const;

  // Diagnostics, as tokenizers' normalizer.normalize_str and pre_tokenizer.pre_tokenize_str: the
  // normalized text (unchanged without a normalizer), and the words the pre-tokenizer cuts `text`
  // into (one word, the text, without a pre-tokenizer). Throw s3::Error for invalid UTF-8.
  std::string normalize(std::string_view text) const;
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  struct Impl;  // opaque

 private:
  explicit Tokenizer(std::unique_ptr<const Impl> impl);
  std::unique_ptr<const Impl> impl_;
};

}  // namespace s3
