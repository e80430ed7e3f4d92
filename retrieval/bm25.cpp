#include "retrieval/bm25.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

void Bm25Options::validate() const {
  if (!(k1 >= 0 && std::isfinite(k1))) {
    throw UsageError("--bm25-k1 must be finite and >= 0 (got " + std::to_string(k1) + ")");
  }
  if (!(b >= 0 && b <= 1)) {
    throw UsageError("--bm25-b must be in [0, 1] (got " + std::to_string(b) + ")");
  }
}

void to_json(nlohmann::json& j, const Bm25Options& o) {
  j = nlohmann::json{{"k1", o.k1},
                     {"b", o.b},
                     {"count_repeated_terms", o.count_repeated_terms},
                     {"max_passages", o.max_passages}};
}

double bm25_idf(uint64_t n_passages, uint64_t n_containing) {
  const auto big_n = static_cast<double>(n_passages);
  const auto n = static_cast<double>(n_containing);
  return std::log1p((big_n - n + 0.5) / (n + 0.5));
}

namespace {

// Distinct query terms with their qtf, in first-occurrence order (the summation order is fixed).
std::vector<std::pair<std::string_view, uint32_t>> count_terms(std::span<const std::string> terms,
                                                               bool count_repeated) {
  std::vector<std::pair<std::string_view, uint32_t>> query;
  for (const std::string& t : terms) {
    auto it = std::find_if(query.begin(), query.end(), [&](const auto& q) { return q.first == t; });
    if (it == query.end()) {
      query.emplace_back(t, 1);
    } else if (count_repeated) {
      ++it->second;
    }
  }
  return query;
}

// The tf part: tf·(k1 + 1) / (tf + k1·(1 − b + b·dl/avgdl)); avgdl = 0 (every passage empty)
// counts as dl/avgdl = 1.
double tf_part(double tf, double dl, double avgdl, const Bm25Options& o) {
  const double ratio = avgdl > 0 ? dl / avgdl : 1.0;
  return tf * (o.k1 + 1) / (tf + o.k1 * (1 - o.b + o.b * ratio));
}

void check_postings(std::string_view term, const std::vector<uint32_t>& passages,
                    const std::vector<uint32_t>& tfs, uint32_t n_passages) {
  if (passages.size() != tfs.size()) {
    throw Error("lexical index: term '" + std::string(term) + "' has " +
                std::to_string(passages.size()) + " passages but " + std::to_string(tfs.size()) +
                " frequencies");
  }
  for (const uint32_t p : passages) {
    if (p >= n_passages) {
      throw Error("lexical index: term '" + std::string(term) + "' names passage " +
                  std::to_string(p) + " of " + std::to_string(n_passages));
    }
  }
}

}  // namespace

std::vector<ScoredPassage> bm25_search(const LexicalSource& source,
                                       std::span<const std::string> terms,
                                       const Bm25Options& options,
                                       std::optional<TokenRange> within) {
  options.validate();
  const uint32_t n_passages = source.n_passages();
  std::vector<ScoredPassage> out;
  if (n_passages == 0 || terms.empty()) return out;
  const double avgdl = source.avg_passage_length();
  const auto query = count_terms(terms, options.count_repeated_terms);

  std::vector<double> score(n_passages, 0.0);
  std::vector<uint8_t> touched(n_passages, 0);
  std::vector<uint32_t> touched_list;
  std::vector<uint32_t> passages, tfs;
  for (const auto& [term, qtf] : query) {
    source.term_postings(term, passages, tfs);
    check_postings(term, passages, tfs, n_passages);
    if (passages.empty()) continue;
    const double w = qtf * bm25_idf(n_passages, passages.size());
    for (size_t i = 0; i < passages.size(); ++i) {
      const uint32_t p = passages[i];
      score[p] += w * tf_part(tfs[i], source.passage_length(p), avgdl, options);
      if (!touched[p]) {
        touched[p] = 1;
        touched_list.push_back(p);
      }
    }
  }
  for (uint32_t p : touched_list) {
    if (!(score[p] > 0)) continue;
    TokenRange r = source.passage_tokens(p);
    if (within) {
      r.begin = std::max(r.begin, within->begin);
      r.end = std::min(r.end, within->end);
      if (r.empty()) continue;
    }
    out.push_back({p, r, score[p]});
  }
  std::sort(out.begin(), out.end(), [](const ScoredPassage& x, const ScoredPassage& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.range.begin != y.range.begin) return x.range.begin < y.range.begin;
    return x.passage < y.passage;
  });
  if (options.max_passages > 0 && out.size() > options.max_passages) {
    out.resize(options.max_passages);
  }
  return out;
}

void to_json(nlohmann::json& j, const TermContribution& c) {
  j = nlohmann::json{{"term", c.term}, {"qtf", c.qtf},
                     {"tf", c.tf},     {"n_containing", c.n_containing},
                     {"idf", c.idf},   {"contribution", c.contribution}};
}

std::vector<TermContribution> explain_passage(const LexicalSource& source,
                                              std::span<const std::string> terms, uint32_t passage,
                                              const Bm25Options& options) {
  options.validate();
  const uint32_t n_passages = source.n_passages();
  std::vector<TermContribution> out;
  if (passage >= n_passages) return out;
  const double avgdl = source.avg_passage_length();
  std::vector<uint32_t> passages, tfs;
  for (const auto& [term, qtf] : count_terms(terms, options.count_repeated_terms)) {
    source.term_postings(term, passages, tfs);
    check_postings(term, passages, tfs, n_passages);
    const auto it = std::lower_bound(passages.begin(), passages.end(), passage);
    if (it == passages.end() || *it != passage) continue;
    const uint32_t tf = tfs[static_cast<size_t>(it - passages.begin())];
    const double idf = bm25_idf(n_passages, passages.size());
    const double c = qtf * idf * tf_part(tf, source.passage_length(passage), avgdl, options);
    out.push_back({std::string(term), qtf, tf, static_cast<uint32_t>(passages.size()), idf, c});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TermContribution& a, const TermContribution& b) {
                     return a.contribution > b.contribution;
                   });
  return out;
}

std::vector<Candidate> passages_to_candidates(std::span<const ScoredPassage> passages) {
  std::vector<Candidate> out;
  out.reserve(passages.size());
  for (const ScoredPassage& p : passages) {
    if (p.range.empty()) continue;
    out.push_back({p.range, p.range.begin, static_cast<float>(p.score)});
  }
  return out;
}

}  // namespace s3::retrieval
