// One call from a question's features and terms to the packed selection: what `s3attn ask` runs
// between encoding the question and assembling the prompt. Runs only the stages the method needs.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/bm25.h"
#include "retrieval/context.h"
#include "retrieval/dense.h"
#include "retrieval/packing.h"
#include "retrieval/query.h"
#include "retrieval/scorer.h"
#include "retrieval/sources.h"
#include "retrieval/spans.h"
#include "retrieval/types.h"

namespace s3::retrieval {

// Every retrieval knob, one struct per stage; to_json is what a run's manifest records.
struct RetrievalOptions {
  Method method = Method::kS3Hybrid;  // --method
  ScoreOptions score;
  SpanOptions spans;
  Bm25Options bm25;
  DenseOptions dense;
  BudgetOptions budget;
  ContextOptions context;

  void validate() const;  // validates every stage
};
void to_json(nlohmann::json& j, const RetrievalOptions& o);

struct RetrievalInputs {
  TokenRange doc;                            // the document asked about
  const PostingSource* postings = nullptr;   // needed by s3 and s3-hybrid
  const QueryFeatures* query = nullptr;      // needed by s3 and s3-hybrid
  const LexicalSource* lexical = nullptr;    // needed by bm25 and s3-hybrid
  std::span<const std::string> query_terms;  // analyzed question terms (bm25, s3-hybrid)
  // How the scan saw each position (--score-centering context). Null: the document is one
  // chunk starting at doc.begin (ScanGeometry{} and no document starts).
  const PositionContext* positions = nullptr;
  const DenseSource* dense = nullptr;     // needed by dense and s3-dense
  std::span<const float> query_vector{};  // the question's embedding (dense, s3-dense)
};

struct RetrievalTimings {
  double score_ms = 0;  // score_positions (includes the source's postings decoding) and
                        // center_scores
  double spans_ms = 0;  // smoothing + NMS + growth
  double bm25_ms = 0;
  double dense_ms = 0;  // similarity of every passage (the question's embedding is the caller's)
  double pack_ms = 0;
};
void to_json(nlohmann::json& j, const RetrievalTimings& t);

struct RetrievalResult {
  Selection selection;
  std::vector<Candidate> s3_spans;            // all spans found, best first (for --explain)
  std::vector<ScoredPassage> passages;        // all BM25 passages found, best first
  std::vector<ScoredPassage> dense_passages;  // all dense passages, most similar first
  RetrievalTimings timings;
};

// Throws s3::Error if a source the method needs is missing.
RetrievalResult retrieve(const RetrievalInputs& in, const RetrievalOptions& options);

}  // namespace s3::retrieval
