// BM25 ranking of passages (docs/method.md §6.1), Lucene's BM25Similarity:
//
//   score(p, q) = Σ_{t ∈ q} qtf(t) · idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·dl/avgdl))
//   idf(t)      = ln(1 + (N − n_t + 0.5) / (n_t + 0.5))        (Lucene's idf, never negative;
//                                                               Robertson's ln((N−n+0.5)/(n+0.5))
//                                                               goes negative for n > N/2)
//
// N = passages, n_t = passages containing t, tf = frequency of t in p, dl = length of p and avgdl
// the mean, both in analyzed terms. Lucene ≥ 8 drops the constant (k1 + 1) factor; we keep it (the
// textbook form) — it scales every score alike and changes no ranking. Unlike Lucene, dl is exact
// (Lucene stores it lossily in one byte).
//
// Repeated query terms: Lucene's query parser turns "a a b" into a BooleanQuery with two SHOULD
// clauses for "a", so a repeated term scores once per occurrence (qtf = its count in the query).
// We do the same by default; --bm25-unique-terms sets qtf = 1.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/sources.h"
#include "retrieval/types.h"

namespace s3::retrieval {

struct Bm25Options {
  double k1 = 1.2;  // --bm25-k1: tf saturation, >= 0 (Lucene's default 1.2)
  double b = 0.75;  // --bm25-b: length normalisation, in [0, 1] (Lucene's default 0.75)
  // --bm25-unique-terms (sets false): count a repeated query term once per occurrence (Lucene).
  bool count_repeated_terms = true;
  // --bm25-max-passages: keep only the N best passages; 0 = all that match (the packer takes
  // what its budget allows).
  uint32_t max_passages = 0;

  void validate() const;  // throws s3::UsageError naming the flag
};
void to_json(nlohmann::json& j, const Bm25Options& o);

// Lucene's idf: ln(1 + (N − n + 0.5) / (n + 0.5)).
double bm25_idf(uint64_t n_passages, uint64_t n_containing);

struct ScoredPassage {
  uint32_t passage = 0;
  TokenRange range;  // the passage's tokens (clipped to `within` when given)
  double score = 0;
};

// Passages with a positive score, best first; ties: earlier range, then lower passage id.
// `terms` are the question's analyzed terms (the index's analyzer made them). When `within` is
// given, only passages overlapping it are returned (collection statistics stay the source's).
std::vector<ScoredPassage> bm25_search(const LexicalSource& source,
                                       std::span<const std::string> terms,
                                       const Bm25Options& options,
                                       std::optional<TokenRange> within = std::nullopt);

// --explain for a BM25 passage: one row per distinct query term found in it.
struct TermContribution {
  std::string term;
  uint32_t qtf = 0;           // occurrences in the query (1 with count_repeated_terms off)
  uint32_t tf = 0;            // occurrences in the passage
  uint32_t n_containing = 0;  // passages containing the term
  double idf = 0;
  double contribution = 0;  // this term's part of the passage's score
};
void to_json(nlohmann::json& j, const TermContribution& c);

// The terms behind passage p's score, by contribution descending (ties: query order). Their
// contributions add up to the score bm25_search gives p.
std::vector<TermContribution> explain_passage(const LexicalSource& source,
                                              std::span<const std::string> terms, uint32_t passage,
                                              const Bm25Options& options);

// Passages as packer candidates: anchor = first token (a passage cut short keeps its beginning).
std::vector<Candidate> passages_to_candidates(std::span<const ScoredPassage> passages);

}  // namespace s3::retrieval
