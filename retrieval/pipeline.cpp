#include "retrieval/pipeline.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

void RetrievalOptions::validate() const {
  score.validate();
  spans.validate();
  bm25.validate();
  dense.validate();
  budget.validate();
  context.validate();
}

void to_json(nlohmann::json& j, const RetrievalOptions& o) {
  j = nlohmann::json{{"method", method_name(o.method)},
                     {"score", o.score},
                     {"spans", o.spans},
                     {"bm25", o.bm25},
                     {"dense", o.dense},
                     {"budget", o.budget},
                     {"context", o.context}};
}

void to_json(nlohmann::json& j, const RetrievalTimings& t) {
  j = nlohmann::json{{"score_ms", t.score_ms},
                     {"spans_ms", t.spans_ms},
                     {"bm25_ms", t.bm25_ms},
                     {"dense_ms", t.dense_ms},
                     {"pack_ms", t.pack_ms}};
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

RetrievalResult retrieve(const RetrievalInputs& in, const RetrievalOptions& options) {
  options.validate();
  RetrievalResult r;
  const Method m = options.method;
  if (method_uses_s3(m)) {
    if (in.postings == nullptr || in.query == nullptr) {
      throw Error("method " + std::string(method_name(m)) + " needs feature postings and the " +
                  "question's features");
    }
    auto t0 = Clock::now();
    std::vector<float> scores;
    score_positions(*in.postings, *in.query, in.doc, options.score, scores);
    static const PositionContext kOneChunk;
    center_scores(scores, in.doc, options.score.score_centering,
                  in.positions ? *in.positions : kOneChunk);
    r.timings.score_ms = ms_since(t0);
    t0 = Clock::now();
    r.s3_spans = find_spans(scores, in.doc, options.spans);
    r.timings.spans_ms = ms_since(t0);
  }
  if (method_uses_bm25(m)) {
    if (in.lexical == nullptr) {
      throw Error("method " + std::string(method_name(m)) + " needs the lexical index");
    }
    const auto t0 = Clock::now();
    r.passages = bm25_search(*in.lexical, in.query_terms, options.bm25, in.doc);
    r.timings.bm25_ms = ms_since(t0);
  }
  if (method_uses_dense(m)) {
    if (in.dense == nullptr) {
      throw Error("method " + std::string(method_name(m)) +
                  " needs the index's dense passage embeddings");
    }
    const auto t0 = Clock::now();
    r.dense_passages = dense_search(*in.dense, in.query_vector, options.dense, in.doc);
    r.timings.dense_ms = ms_since(t0);
  }
  const auto t0 = Clock::now();
  const std::vector<Candidate> passages = passages_to_candidates(r.passages);
  const std::vector<Candidate> dense = passages_to_candidates(r.dense_passages);
  r.selection =
      select_ranges(m, in.doc, CandidateSets{r.s3_spans, passages, dense}, options.budget);
  r.timings.pack_ms = ms_since(t0);
  return r;
}

}  // namespace s3::retrieval
