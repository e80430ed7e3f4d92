#include "index/lexical_index.h"

#include <algorithm>
#include <cstring>

#include "core/base/error.h"
#include "index/passage_splitter.h"

namespace s3::index {

void LexicalOptions::validate() const {
  if (target_words == 0 || target_words > 100000) {
    throw UsageError("lexical passage size must be in [1, 100000] words, got " +
                     std::to_string(target_words));
  }
  analyzer().validate();
}

LexicalBuilder::LexicalBuilder(const LexicalOptions& options)
    : options_(options), analyzer_(options.analyzer()) {
  options_.validate();
}

void LexicalBuilder::add_document(uint32_t local_doc, std::string_view text,
                                  std::span<const TokenOffset> offsets,
                                  uint32_t local_token_begin) {
  std::vector<WordSpan> words;
  TextAnalyzer::split_words(text, words);
  const std::vector<PassageSpan> spans = split_passages(text, words, options_.target_words);
  const auto n_tokens = static_cast<uint32_t>(offsets.size());
  // A token belongs to the passage that holds its first byte.
  auto first_token_at_or_after = [&](uint32_t byte) {
    auto it = std::lower_bound(offsets.begin(), offsets.end(), byte,
                               [](const TokenOffset& o, uint32_t b) { return o.begin < b; });
    return static_cast<uint32_t>(it - offsets.begin());
  };
  std::vector<uint32_t> ids;
  for (size_t s = 0; s < spans.size(); ++s) {
    const PassageSpan& sp = spans[s];
    PassageRecord rec{};
    rec.doc = local_doc;
    rec.token_begin = local_token_begin + (s == 0 ? 0 : first_token_at_or_after(sp.byte_begin));
    rec.token_end = local_token_begin +
                    (s + 1 == spans.size() ? n_tokens : first_token_at_or_after(sp.byte_end));
    rec.byte_begin = sp.byte_begin;
    rec.byte_end = sp.byte_end;
    rec.length = sp.word_end - sp.word_begin;
    const auto pid = static_cast<uint32_t>(passages_.size());
    ids.clear();
    for (uint32_t w = sp.word_begin; w < sp.word_end; ++w) {
      const WordSpan& ws = words[w];
      std::string term = analyzer_.normalize(text.substr(ws.begin, ws.end - ws.begin), ws.cjk);
      auto [it, inserted] =
          term_ids_.try_emplace(std::move(term), static_cast<uint32_t>(terms_.size()));
      if (inserted) {
        terms_.push_back(it->first);
        postings_.emplace_back();
      }
      ids.push_back(it->second);
    }
    std::sort(ids.begin(), ids.end());
    for (size_t i = 0; i < ids.size();) {
      size_t j = i;
      while (j < ids.size() && ids[j] == ids[i])
        ++j;
      postings_[ids[i]].emplace_back(pid, static_cast<uint32_t>(j - i));
      i = j;
    }
    total_length_ += rec.length;
    passages_.push_back(rec);
  }
}

FileDigest LexicalBuilder::write(const std::filesystem::path& path, bool fsync) const {
  std::vector<uint32_t> order(terms_.size());
  for (uint32_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return terms_[a] < terms_[b]; });
  uint64_t n_postings = 0;
  for (const auto& p : postings_)
    n_postings += p.size();

  FileWriter w(path, FileKind::kLexical);
  LexicalHeader h{};
  h.n_passages = static_cast<uint32_t>(passages_.size());
  h.n_terms = static_cast<uint32_t>(terms_.size());
  h.n_postings = n_postings;
  h.total_length = total_length_;
  h.target_words = options_.target_words;
  w.write_pod(h);
  w.write_span(std::span<const PassageRecord>(passages_));
  w.pad_to(8);
  uint64_t off = 0;
  w.write_pod(off);
  for (uint32_t t : order) {
    off += terms_[t].size();
    w.write_pod(off);
  }
  off = 0;
  w.write_pod(off);
  for (uint32_t t : order) {
    off += postings_[t].size();
    w.write_pod(off);
  }
  for (uint32_t t : order) {
    for (const auto& [pid, tf] : postings_[t])
      w.write_pod(pid);
  }
  for (uint32_t t : order) {
    for (const auto& [pid, tf] : postings_[t])
      w.write_pod(tf);
  }
  for (uint32_t t : order)
    w.write(terms_[t].data(), terms_[t].size());
  return w.finish(fsync);
}

LexicalSegment LexicalSegment::parse(std::span<const uint8_t> body, const std::string& path,
                                     uint32_t n_docs, uint32_t n_tokens) {
  BodyReader r(body, path);
  LexicalSegment s;
  s.header = r.read_pod<LexicalHeader>();
  const LexicalHeader& h = s.header;
  s.passages = r.read_array<PassageRecord>(h.n_passages);
  r.skip_to_alignment(8);
  s.term_offsets = r.read_array<uint64_t>(uint64_t{h.n_terms} + 1);
  s.posting_offsets = r.read_array<uint64_t>(uint64_t{h.n_terms} + 1);
  s.passage_ids = r.read_array<uint32_t>(h.n_postings);
  s.tfs = r.read_array<uint32_t>(h.n_postings);
  s.terms_blob = r.read_bytes(r.remaining());
  uint64_t total = 0;
  for (const PassageRecord& p : s.passages) {
    if (p.doc >= n_docs || p.token_begin > p.token_end || p.token_end > n_tokens ||
        p.byte_begin > p.byte_end) {
      r.fail("passage record out of range");
    }
    total += p.length;
  }
  if (total != h.total_length) r.fail("passage lengths do not add up to the header's total");
  if (s.term_offsets[0] != 0 || s.term_offsets[h.n_terms] != s.terms_blob.size() ||
      s.posting_offsets[0] != 0 || s.posting_offsets[h.n_terms] != h.n_postings) {
    r.fail("vocabulary offsets inconsistent");
  }
  for (uint32_t t = 0; t < h.n_terms; ++t) {
    if (s.term_offsets[t] > s.term_offsets[t + 1] ||
        s.posting_offsets[t] > s.posting_offsets[t + 1]) {
      r.fail("vocabulary offsets not increasing");
    }
  }
  for (uint32_t pid : s.passage_ids) {
    if (pid >= h.n_passages) r.fail("passage id out of range");
  }
  return s;
}

std::string_view LexicalSegment::term(uint32_t t) const {
  return {reinterpret_cast<const char*>(terms_blob.data()) + term_offsets[t],
          static_cast<size_t>(term_offsets[t + 1] - term_offsets[t])};
}

int64_t LexicalSegment::find(std::string_view t) const {
  uint32_t lo = 0, hi = header.n_terms;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (term(mid) < t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < header.n_terms && term(lo) == t ? static_cast<int64_t>(lo) : -1;
}

LexicalIndex::LexicalIndex(LexicalOptions options, std::vector<LexicalSegment> segments)
    : options_(std::move(options)), segments_(std::move(segments)) {
  for (const LexicalSegment& s : segments_) {
    n_passages_ += s.header.n_passages;
    total_length_ += s.header.total_length;
  }
}

Passage LexicalIndex::passage(uint32_t p) const {
  if (p >= n_passages_) {
    throw std::out_of_range("passage " + std::to_string(p) + " out of range (" +
                            std::to_string(n_passages_) + " passages)");
  }
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), p,
                       [](uint32_t v, const LexicalSegment& s) { return v < s.passage_base; });
  const LexicalSegment& s = *(it - 1);
  const PassageRecord& r = s.passages[p - s.passage_base];
  return Passage{s.doc_base + r.doc,
                 s.token_base + r.token_begin,
                 s.token_base + r.token_end,
                 r.byte_begin,
                 r.byte_end,
                 r.length};
}

double LexicalIndex::avg_length() const {
  return n_passages_ == 0 ? 0.0 : static_cast<double>(total_length_) / n_passages_;
}

uint32_t LexicalIndex::doc_freq(std::string_view term) const {
  uint32_t df = 0;
  for (const LexicalSegment& s : segments_) {
    const int64_t t = s.find(term);
    if (t >= 0) df += static_cast<uint32_t>(s.posting_offsets[t + 1] - s.posting_offsets[t]);
  }
  return df;
}

void LexicalIndex::term_postings(std::string_view term, std::vector<uint32_t>& passages,
                                 std::vector<uint32_t>& tfs) const {
  passages.clear();
  tfs.clear();
  for (const LexicalSegment& s : segments_) {
    const int64_t t = s.find(term);
    if (t < 0) continue;
    for (uint64_t i = s.posting_offsets[t]; i < s.posting_offsets[t + 1]; ++i) {
      passages.push_back(s.passage_base + s.passage_ids[i]);
      tfs.push_back(s.tfs[i]);
    }
  }
}

uint64_t LexicalIndex::vocabulary_size() const {
  uint64_t n = 0;
  for (const LexicalSegment& s : segments_)
    n += s.header.n_terms;
  return n;
}

}  // namespace s3::index
