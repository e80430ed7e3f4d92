// The tokenizer pipeline, in the order of Hugging Face tokenizers' TokenizerImpl::encode:
//   1. added tokens with normalized=false are cut out of the original text;
//   2. every other piece is normalized, then added tokens with normalized=true are cut out of it;
//   3. the pre-tokenizer splits the remaining pieces into words;
//   4. the model (BPE or WordPiece) turns each word into tokens.
// Each piece keeps the original byte range of each of its bytes, which gives the token offsets.
// Steps 2-4 run on pieces of at most ~64 KiB of a long text, cut where they cannot change the
// tokens (tokenizer_cuts.h), so memory does not grow with the length of a text or of a line.
#include "core/tokenizer/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_set>

#include "core/base/error.h"
#include "core/base/file_read.h"
#include "core/tokenizer/tokenizer_added.h"
#include "core/tokenizer/tokenizer_bpe.h"
#include "core/tokenizer/tokenizer_config.h"
#include "core/tokenizer/tokenizer_cuts.h"
#include "core/tokenizer/tokenizer_decoder.h"
#include "core/tokenizer/tokenizer_normalizer.h"
#include "core/tokenizer/tokenizer_pretokenizer.h"
#include "core/tokenizer/tokenizer_wordpiece.h"
#include "core/tokenizer/unicode.h"

namespace s3 {

using tok::json;

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Model> model;
  std::unique_ptr<tok::Decoder> decoder;
  tok::AddedMatcher raw_added;         // added tokens matched in the original text
  tok::AddedMatcher normalized_added;  // added tokens matched in the normalized text
  tok::Vocab added_ids;                // added token content -> id
  std::vector<tok::AddedToken> added;  // every added token, specials first
  std::vector<std::string> tokens;     // id -> vocabulary string
  std::vector<uint8_t> known;          // id -> 1 when `tokens[id]` is a real entry
  std::vector<uint8_t> special;        // id -> 1 for added tokens marked special
  std::vector<uint8_t> skip;           // id -> 1 when decode(ids, true) drops it
  bool streamed = false;               // long texts are tokenized piece by piece (tokenizer_cuts.h)

  void encode(std::string_view text, std::vector<int32_t>& ids,
              std::vector<tok::Span>* offsets) const;
  // Steps 2-4 for text[b, e), which holds no added token matched in the original text.
  void encode_text(std::string_view text, size_t b, size_t e, std::vector<int32_t>& ids,
                   std::vector<tok::Span>* offsets) const;
  // Steps 2-3: the words of text[b, e); `continued`: it does not start the text.
  std::vector<tok::Piece> words(std::string_view text, size_t b, size_t e, bool continued) const;
  // Step 4.
  void model_tokens(const std::vector<tok::Piece>& words, std::vector<int32_t>& ids,
                    std::vector<tok::Span>* offsets) const;
};

namespace {

// Added tokens as tokenizers' AddedVocabulary::add_tokens registers them: the id is the model's
// id for that string when it has one, else the next free id after the vocabulary (the "id" field
// of the file is not used, as in tokenizers); a repeated content keeps its first id and place,
// with the flags of its last entry.
void load_added_tokens(const json& list, Tokenizer::Impl& impl, size_t model_vocab_entries) {
  if (list.is_null()) return;
  if (!list.is_array()) tok::bad_field("tokenizer", "added_tokens", "must be a list");
  std::vector<tok::AddedToken> specials, plain;
  int32_t max_added = -1;
  for (const auto& entry : list) {
    if (!entry.is_object()) tok::bad_field("tokenizer", "added_tokens", "must hold objects");
    const char* where = "added_tokens entry";
    tok::AddedToken t;
    t.content = tok::get_string(entry, "content", "", where);
    t.special = tok::get_bool(entry, "special", false, where);
    t.single_word = tok::get_bool(entry, "single_word", false, where);
    t.lstrip = tok::get_bool(entry, "lstrip", false, where);
    t.rstrip = tok::get_bool(entry, "rstrip", false, where);
    t.normalized = tok::get_bool(entry, "normalized", !t.special, where);
    if (t.content.empty()) continue;
    if (unicode::first_invalid_utf8(t.content) != t.content.size()) {
      throw Error("added token content is not valid UTF-8");
    }
    if (auto it = impl.added_ids.find(t.content); it != impl.added_ids.end()) {
      t.id = it->second;
    } else if (auto m = impl.model->vocab().find(t.content); m != impl.model->vocab().end()) {
      t.id = m->second;
    } else {
      const auto n = static_cast<int32_t>(model_vocab_entries);
      t.id = max_added < 0 ? n : (max_added >= n || n == 0 ? max_added + 1 : n);
    }
    impl.added_ids[t.content] = t.id;
    max_added = std::max(max_added, t.id);
    tok::AddedToken* existing = nullptr;
    for (auto* l : {&specials, &plain}) {
      for (auto& other : *l) {
        if (other.content == t.content) existing = &other;
      }
    }
    if (existing) {
      *existing = t;
    } else {
      (t.special ? specials : plain).push_back(t);
    }
  }
  impl.added = std::move(specials);
  impl.added.insert(impl.added.end(), plain.begin(), plain.end());
}

// The matchers, and the strings ids decode to: a normalized added token is matched, and decoded,
// as its content after the normalizer (what tokenizers does too).
void index_added_tokens(Tokenizer::Impl& impl, std::vector<std::string>& added_strings) {
  std::vector<std::string> raw_patterns, norm_patterns;
  std::vector<tok::AddedToken> raw_tokens, norm_tokens;
  for (const tok::AddedToken& t : impl.added) {
    if (t.normalized) {
      tok::Piece p = tok::make_piece(t.content, 0);
      if (impl.normalizer) impl.normalizer->normalize(p);
      norm_patterns.push_back(p.text);
      norm_tokens.push_back(t);
      added_strings.push_back(p.text);
    } else {
      raw_patterns.push_back(t.content);
      raw_tokens.push_back(t);
      added_strings.push_back(t.content);
    }
  }
  impl.raw_added = tok::AddedMatcher(std::move(raw_patterns), std::move(raw_tokens));
  impl.normalized_added = tok::AddedMatcher(std::move(norm_patterns), std::move(norm_tokens));
}

std::unique_ptr<Tokenizer::Impl> build(const json& doc) {
  if (!doc.is_object()) throw Error("not a tokenizer.json: the top level is not a JSON object");
  for (const char* field : {"truncation", "padding"}) {
    if (auto it = doc.find(field); it != doc.end() && !it->is_null()) {
      throw Error(std::string("unsupported ") + field + " settings (set \"" + field +
                  "\" to null)");
    }
  }
  const json& model = doc.at("model");
  if (!model.is_object()) tok::bad_field("tokenizer", "model", "must be an object");
  const std::string model_type = tok::type_of(model);
  auto impl = std::make_unique<Tokenizer::Impl>();
  if (model_type == "BPE" || (model_type.empty() && model.contains("merges"))) {
    impl->model = std::make_unique<tok::Bpe>(model);
  } else if (model_type == "WordPiece") {
    impl->model = std::make_unique<tok::WordPiece>(model);
  } else {
    tok::unsupported("model", model_type.empty() ? "(none)" : model_type, "BPE, WordPiece");
  }
  auto component = [&](const char* key) -> const json& {
    static const json null_json;
    auto it = doc.find(key);
    return it == doc.end() ? null_json : *it;
  };
  impl->normalizer = tok::make_normalizer(component("normalizer"));
  impl->pre_tokenizer = tok::make_pre_tokenizer(component("pre_tokenizer"));
  impl->decoder = tok::make_decoder(component("decoder"));
  // post_processor only acts when special tokens are added (add_special_tokens=True), which this
  // tokenizer never does; it is ignored.
  load_added_tokens(component("added_tokens"), *impl, impl->model->vocab().size());
  std::vector<std::string> added_strings;
  index_added_tokens(*impl, added_strings);

  size_t size = 0;  // one past the largest id
  for (const auto& [s, id] : impl->model->vocab()) {
    size = std::max(size, static_cast<size_t>(id) + 1);
  }
  for (const tok::AddedToken& t : impl->added)
    size = std::max(size, static_cast<size_t>(t.id) + 1);
  // The id tables below are dense: ids far apart would cost memory out of all proportion to the
  // vocabulary (one id near 2^31 asked for tens of GB). Real tokenizers number tokens 0..n-1.
  const size_t entries = impl->model->vocab().size() + impl->added.size();
  if (size > 2 * entries + 1024) {
    tok::bad_field("model", "vocab",
                   "has token ids up to " + std::to_string(size - 1) + " for " +
                       std::to_string(entries) + " tokens (ids must be nearly contiguous from 0)");
  }
  impl->tokens.resize(size);
  impl->known.assign(size, 0);
  impl->special.assign(size, 0);
  impl->skip.assign(size, 0);
  for (const auto& [s, id] : impl->model->vocab()) {
    impl->tokens[static_cast<size_t>(id)] = s;
    impl->known[static_cast<size_t>(id)] = 1;
  }
  // Added tokens take precedence over the model's strings for their ids, as in tokenizers.
  std::unordered_set<std::string> special_contents;
  for (size_t i = 0; i < impl->added.size(); ++i) {
    const auto id = static_cast<size_t>(impl->added[i].id);
    impl->tokens[id] = added_strings[i];
    impl->known[id] = 1;
    if (impl->added[i].special) {
      impl->special[id] = 1;
      special_contents.insert(impl->added[i].content);
    }
  }
  // Long texts are cut only where every step is known to act locally (tokenizer_cuts.h).
  // Only BPE models: the cuts rely on what BPE can merge (tok::Bpe::can_cut); WordPiece
  // tokenizers (sentence encoders, which read passages) tokenize a text in one go.
  const auto* bpe = dynamic_cast<const tok::Bpe*>(impl->model.get());
  impl->streamed = bpe != nullptr && (!impl->normalizer || impl->normalizer->local()) &&
                   bpe->longest_token() < tok::kStreamMinPieceBytes;
  // tokenizers skips a token in decode(skip_special_tokens) when its string is the content of a
  // special token (so a normalized special token whose string the normalizer changed is kept).
  for (size_t id = 0; id < size; ++id) {
    impl->skip[id] = impl->known[id] && special_contents.count(impl->tokens[id]) ? 1 : 0;
  }
  return impl;
}

}  // namespace

void Tokenizer::Impl::encode(std::string_view text, std::vector<int32_t>& ids,
                             std::vector<tok::Span>* offsets) const {
  if (const size_t bad = unicode::first_invalid_utf8(text); bad != text.size()) {
    throw Error("text is not valid UTF-8 (bad byte at offset " + std::to_string(bad) + ")");
  }
  if (text.size() > UINT32_MAX) throw Error("text is too long to tokenize (4 GiB or more)");

  // 1. Added tokens matched in the original text; the text between them goes on alone.
  for (const tok::AddedSplit& s : raw_added.split(text)) {
    if (s.b == s.e) continue;
    if (s.id >= 0) {
      ids.push_back(s.id);
      if (offsets) offsets->push_back({static_cast<uint32_t>(s.b), static_cast<uint32_t>(s.e)});
    } else {
      encode_text(text, s.b, s.e, ids, offsets);
    }
  }
}

void Tokenizer::Impl::encode_text(std::string_view text, size_t b, size_t e,
                                  std::vector<int32_t>& ids,
                                  std::vector<tok::Span>* offsets) const {
  // A long text is cut into pieces that give exactly the whole text's tokens, so the working
  // memory (~50 bytes per byte of a piece) does not grow with the text.
  std::optional<tok::TextCutter> cutter;
  if (streamed && e - b >= tok::kStreamPieceBytes + tok::kStreamMinPieceBytes) {
    cutter.emplace(
        [this](std::string_view t, size_t wb, size_t we) { return words(t, wb, we, true); },
        static_cast<const tok::Bpe&>(*model));
  }
  for (size_t start = b; start < e;) {
    const size_t stop = cutter ? cutter->next_cut(text, start, e) : e;
    model_tokens(words(text, start, stop, start != b), ids, offsets);
    start = stop;
  }
}

std::vector<tok::Piece> Tokenizer::Impl::words(std::string_view text, size_t b, size_t e,
                                               bool continued) const {
  std::vector<tok::Piece> pieces;
  tok::Piece p = tok::make_piece(text.substr(b, e - b), static_cast<uint32_t>(b));
  // 2. Normalization, then added tokens matched in the normalized text.
  if (normalizer) normalizer->normalize(p, continued);
  if (normalized_added.empty()) {
    if (!p.text.empty()) pieces.push_back(std::move(p));
  } else {
    for (const tok::AddedSplit& s : normalized_added.split(p.text)) {
      if (s.b == s.e) continue;
      if (s.id >= 0) {
        pieces.push_back(tok::make_token_piece(s.id, p.original(s.b, s.e)));
      } else {
        pieces.push_back(tok::slice(p, s.b, s.e));
      }
    }
  }
  // 3. Pre-tokenization.
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
  return pieces;
}

void Tokenizer::Impl::model_tokens(const std::vector<tok::Piece>& words, std::vector<int32_t>& ids,
                                   std::vector<tok::Span>* offsets) const {
  std::vector<tok::ModelToken> word;
  for (const tok::Piece& p : words) {
    if (p.is_token()) {
      ids.push_back(p.token_id);
      if (offsets) offsets->push_back(p.token_span);
      continue;
    }
    word.clear();
    model->tokenize(p.text, word);
    for (const tok::ModelToken& t : word) {
      ids.push_back(t.id);
      if (offsets) offsets->push_back(p.original(t.b, t.e));
    }
  }
}

std::string Tokenizer::normalize(std::string_view text) const {
  if (unicode::first_invalid_utf8(text) != text.size()) throw Error("text is not valid UTF-8");
  tok::Piece p = tok::make_piece(text, 0);
  if (impl_->normalizer) impl_->normalizer->normalize(p);
  return p.text;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  if (unicode::first_invalid_utf8(text) != text.size()) throw Error("text is not valid UTF-8");
  std::vector<tok::Piece> pieces;
  if (!text.empty()) pieces.push_back(tok::make_piece(text, 0));
  if (impl_->pre_tokenizer) impl_->pre_tokenizer->pre_tokenize(pieces);
  std::vector<std::string> words;
  for (const tok::Piece& p : pieces)
    words.push_back(p.text);
  return words;
}

Tokenizer::Tokenizer(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    throw DataCorruption(origin, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!doc.is_object() || !doc.contains("model")) {
    throw DataCorruption(origin, "no \"model\" section: not a Hugging Face tokenizer.json");
  }
  try {
    return Tokenizer(build(doc));
  } catch (const DataCorruption&) {
    throw;
  } catch (const Error& e) {
    throw Error(origin + ": " + e.what());
  } catch (const json::exception& e) {
    throw DataCorruption(origin, std::string("malformed tokenizer.json (") + e.what() + ")");
  }
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  const std::string name = tokenizer_json.string();
  std::error_code ec;
  if (!std::filesystem::exists(tokenizer_json, ec)) throw Error(name + ": no such tokenizer file");
  return from_json(read_regular_file(tokenizer_json, kMaxTokenizerJsonBytes, "tokenizer file"),
                   name);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  impl_->encode(text, ids, nullptr);
  return ids;
}

Encoding Tokenizer::encode_with_offsets(std::string_view text) const {
  Encoding e;
  impl_->encode(text, e.ids, &e.offsets);
  return e;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (const int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size() ||
        !impl_->known[static_cast<size_t>(id)])
      continue;
    if (skip_special_tokens && impl_->skip[static_cast<size_t>(id)]) continue;
    pieces.push_back(impl_->tokens[static_cast<size_t>(id)]);
  }
  std::string out;
  if (impl_->decoder) {
    impl_->decoder->decode_chain(pieces);
    for (const std::string& p : pieces)
      out += p;
  } else {
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i) out += ' ';
      out += pieces[i];
    }
  }
  return out;
}

std::string Tokenizer::token_text(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size() ||
      !impl_->known[static_cast<size_t>(id)]) {
    throw Error("token id " + std::to_string(id) + " is not in the tokenizer's vocabulary (size " +
                std::to_string(impl_->tokens.size()) + ")");
  }
  return impl_->tokens[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  if (auto it = impl_->model->vocab().find(token); it != impl_->model->vocab().end())
    return it->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->tokens.size());
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() &&
         impl_->special[static_cast<size_t>(id)];
}

}  // namespace s3
