#include "core/tokenizer/tokenizer_bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "core/base/error.h"
#include "core/tokenizer/tokenizer_config.h"
#include "core/tokenizer/unicode.h"

namespace s3::tok {

namespace {

constexpr const char* kWhere = "model BPE";

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t len;  // bytes; 0 once merged into its left neighbour
};

struct Merge {
  int32_t pos, rank, new_id;
};

struct MergeAfter {  // priority_queue comparator: lowest rank first, then leftmost
  bool operator()(const Merge& x, const Merge& y) const {
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  }
};

}  // namespace

Bpe::Bpe(const json& model) {
  if (auto d = model.find("dropout"); d != model.end() && !d->is_null()) {
    if (!d->is_number() || d->get<double>() != 0.0) {
      throw Error("model BPE with dropout is not supported (tokenization would be random)");
    }
  }
  vocab_ = read_vocab(model, kWhere);
  for (const auto& entry : vocab_)
    longest_token_ = std::max(longest_token_, entry.first.size());

  unk_token_ = get_string(model, "unk_token", "", kWhere);
  if (!unk_token_.empty()) unk_id_ = find(unk_token_).value_or(-1);
  fuse_unk_ = get_bool(model, "fuse_unk", false, kWhere);
  byte_fallback_ = get_bool(model, "byte_fallback", false, kWhere);
  ignore_merges_ = get_bool(model, "ignore_merges", false, kWhere);
  prefix_ = get_string(model, "continuing_subword_prefix", "", kWhere);
  suffix_ = get_string(model, "end_of_word_suffix", "", kWhere);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[static_cast<size_t>(b)] = find(name).value_or(-1);
  }

  // Long words are cut where no merge can join the two sides: between two code points a and b
  // that are vocabulary tokens on their own and never adjacent inside any vocabulary token (every
  // merge that joined them would produce a token holding "ab"). Each side then merges exactly as
  // it would in the whole word, and short sides hit the cache. SentencePiece-style models (no
  // pre-tokenizer: the whole text is one word) depend on this for speed.
  if (prefix_.empty() && suffix_.empty()) {
    for (const auto& [token, id] : vocab_) {
      char32_t prev = 0;
      for (size_t pos = 0; pos < token.size();) {
        size_t len = 0;
        const char32_t c = unicode::decode_utf8(token, pos, &len);
        if (pos > 0) inner_pairs_.insert((static_cast<uint64_t>(prev) << 32) | c);
        prev = c;
        pos += len;
      }
    }
  }

  auto m = model.find("merges");
  if (m == model.end() || m->is_null()) return;  // a BPE without merges: characters only
  if (!m->is_array()) bad_field(kWhere, "merges", "must be a list");
  merges_.reserve(m->size());
  int32_t rank = 0;
  std::string a, b;
  for (const auto& entry : *m) {
    if (entry.is_string()) {
      const std::string& line = entry.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        bad_field(
            kWhere, "merges",
            "entry " + std::to_string(rank + 1) + " is not of the form \"a b\": '" + line + "'");
      }
      a = line.substr(0, space);
      b = line.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      a = entry[0].get<std::string>();
      b = entry[1].get<std::string>();
    } else {
      bad_field(kWhere, "merges",
                "entry " + std::to_string(rank + 1) + " is neither \"a b\" nor [a, b]");
    }
    const auto ida = find(a), idb = find(b);
    if (!ida || !idb)
      bad_field(kWhere, "merges", "uses token '" + (ida ? b : a) + "' that is not in the vocab");
    if (b.size() < prefix_.size())
      bad_field(kWhere, "merges", "entry '" + a + " " + b + "' is shorter than the prefix");
    const std::string merged = a + b.substr(prefix_.size());
    const auto idm = find(merged);
    if (!idm)
      bad_field(kWhere, "merges", "produces token '" + merged + "' that is not in the vocab");
    merges_[pair_key(*ida, *idb)] = {rank, *idm};  // a later duplicate wins, as in tokenizers
    ++rank;
  }
}

std::optional<int32_t> Bpe::find(std::string_view s) const {
  auto it = vocab_.find(s);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void Bpe::tokenize(std::string_view word, std::vector<ModelToken>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = find(word)) {
      out.push_back({*id, 0, static_cast<uint32_t>(word.size())});
      return;
    }
  }
  if (word.size() <= kCacheMaxWordBytes) {
    merge_cached(word, out);
    return;
  }
  const std::vector<size_t> cuts = safe_cuts(word);
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : word.size();
    const size_t first = out.size();
    merge_cached(word.substr(begin, end - begin), out);
    for (size_t k = first; k < out.size(); ++k) {
      out[k].b += static_cast<uint32_t>(begin);
      out[k].e += static_cast<uint32_t>(begin);
    }
    begin = end;
  }
}

void Bpe::merge_cached(std::string_view word, std::vector<ModelToken>& out) const {
  if (word.size() > kCacheMaxWordBytes) {
    merge_word(word, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  std::vector<ModelToken> tokens(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();
  cache_.emplace(std::string(word), std::move(tokens));
}

bool Bpe::can_cut(std::string_view word, size_t pos) const {
  if (inner_pairs_.empty() || pos == 0 || pos >= word.size()) return false;
  size_t begin = pos - 1;  // start of the code point that ends at pos
  while (begin > 0 && (static_cast<unsigned char>(word[begin]) & 0xC0) == 0x80)
    --begin;
  size_t len = 0, next_len = 0;
  const char32_t a = unicode::decode_utf8(word, begin, &len);
  const char32_t b = unicode::decode_utf8(word, pos, &next_len);
  return vocab_.find(word.substr(begin, pos - begin)) != vocab_.end() &&
         vocab_.find(word.substr(pos, next_len)) != vocab_.end() &&
         !inner_pairs_.count((static_cast<uint64_t>(a) << 32) | b);
}

std::vector<size_t> Bpe::safe_cuts(std::string_view word) const {
  std::vector<size_t> cuts;
  if (inner_pairs_.empty()) return cuts;
  char32_t prev = 0;
  bool prev_in_vocab = false;
  size_t last_cut = 0;
  for (size_t pos = 0; pos < word.size();) {
    size_t len = 0;
    const char32_t c = unicode::decode_utf8(word, pos, &len);
    const bool in_vocab = vocab_.find(word.substr(pos, len)) != vocab_.end();
    if (pos > 0 && prev_in_vocab && in_vocab &&
        !inner_pairs_.count((static_cast<uint64_t>(prev) << 32) | c) && pos - last_cut >= 8) {
      cuts.push_back(pos);
      last_cut = pos;
    }
    prev = c;
    prev_in_vocab = in_vocab;
    pos += len;
  }
  return cuts;
}

void Bpe::merge_word(std::string_view word, std::vector<ModelToken>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, size_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, static_cast<uint32_t>(len)});
  };
  int32_t unk_pending = -1;  // an unknown run waiting to be added (fuse_unk)
  size_t unk_len = 0;
  std::string s;
  for (size_t pos = 0; pos < word.size();) {
    const size_t len = unicode::utf8_len(static_cast<unsigned char>(word[pos]));
    const bool is_first = pos == 0, is_last = pos + len >= word.size();
    s.assign(word.substr(pos, len));
    if (!is_first && !prefix_.empty()) s.insert(0, prefix_);
    if (is_last && !suffix_.empty()) s += suffix_;
    pos += len;
    if (auto id = find(s)) {
      if (unk_pending >= 0) {
        add(unk_pending, unk_len);
        unk_pending = -1;
      }
      add(*id, len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : s)
        all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : s)
          add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (!unk_token_.empty()) {
      if (unk_id_ < 0)
        throw Error("tokenizer's unk_token '" + unk_token_ + "' is not in its vocab");
      if (unk_pending >= 0 && fuse_unk_) {
        unk_len += len;
      } else {
        if (unk_pending >= 0) add(unk_pending, unk_len);
        unk_pending = unk_id_;
        unk_len = len;
      }
    }
    // No unk token: the character is dropped, as tokenizers does.
  }
  if (unk_pending >= 0) add(unk_pending, unk_len);

  std::priority_queue<Merge, std::vector<Merge>, MergeAfter> queue;
  auto lookup = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* m = lookup(symbols[i].id, symbols[i + 1].id)) {
      queue.push({static_cast<int32_t>(i), m->first, m->second});
    }
  }
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& cur = symbols[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    const Symbol right = symbols[static_cast<size_t>(cur.next)];
    const auto* m = lookup(cur.id, right.id);
    if (!m || m->second != top.new_id) continue;  // stale entry
    symbols[static_cast<size_t>(cur.next)].len = 0;
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    if (right.next >= 0 && static_cast<size_t>(right.next) < symbols.size()) {
      symbols[static_cast<size_t>(right.next)].prev = top.pos;
    }
    if (cur.prev >= 0) {
      if (const auto* pm = lookup(symbols[static_cast<size_t>(cur.prev)].id, cur.id)) {
        queue.push({cur.prev, pm->first, pm->second});
      }
    }
    if (cur.next >= 0) {
      if (const auto* nm = lookup(cur.id, symbols[static_cast<size_t>(cur.next)].id)) {
        queue.push({top.pos, nm->first, nm->second});
      }
    }
  }
  // Offsets are the running sum of symbol lengths, as tokenizers computes them.
  uint32_t at = 0;
  const auto limit = static_cast<uint32_t>(word.size());
  for (const Symbol& sym : symbols) {
    if (sym.len == 0) continue;
    const uint32_t b = std::min(at, limit), e = std::min(at + sym.len, limit);
    out.push_back({sym.id, b, e});
    at += sym.len;
  }
}

}  // namespace s3::tok
