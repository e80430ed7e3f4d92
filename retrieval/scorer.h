// Feature co-activation scoring (method.md §4):
//
//   S[t] = Σ_l Σ_{f ∈ F_q(l)} 1[t ∈ postings_l(f)] · λ_l · w_q(l, f) · idf_l(f),
//   idf_l(f) = 1 / (ln(1 + df_l(f)) + 1)
//
// λ_l is an optional per-slot layer weight (default 1, i.e. the paper's formula). Term-at-a-time:
// one dense float accumulator over the document, one pass over each query feature's postings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/query.h"
#include "retrieval/sources.h"
#include "retrieval/types.h"

namespace s3::retrieval {

struct ScoreOptions {
  // --aggregate: how the question's activations combine into w_q (method.md §4, open). Recorded
  // here with the other scoring knobs; the caller passes it to aggregate_query(), since
  // score_positions() takes F_q already aggregated. Default sum.
  Aggregation aggregation = Aggregation::kSum;
  // --layer-weights: λ_l per layer slot, each finite and >= 0; empty = 1 for every slot (paper).
  std::vector<float> layer_weights;
  // --max-df-fraction: stop features. A feature with df_l(f) > fraction × n_tokens is dropped from
  // the question. 1 = off (default: the paper prunes nothing, idf already damps frequent
  // features). Must be in (0, 1].
  double max_df_fraction = 1.0;
  // --max-query-features: keep only the N features per layer slot with the largest λ·w·idf (ties:
  // lower feature id). 0 = all (default, the paper's formula).
  uint32_t max_query_features = 0;

  void validate() const;  // throws s3::UsageError naming the flag
};
void to_json(nlohmann::json& j, const ScoreOptions& o);

// idf_l(f) = 1 / (ln(1 + df) + 1), in (0, 1]; df = 0 gives 1 (such a feature has no postings).
double feature_idf(uint64_t df);

// Writes S[t] for t in `doc` to scores[t - doc.begin] (scores is resized to doc.size()).
// Contributions are summed in float in (layer slot, list order) order. Throws s3::UsageError if
// layer_weights does not have one value per slot of `source`, s3::Error if the question has more
// layer slots than the source.
void score_positions(const PostingSource& source, const QueryFeatures& query, TokenRange doc,
                     const ScoreOptions& options, std::vector<float>& scores);
std::vector<float> score_positions(const PostingSource& source, const QueryFeatures& query,
                                   TokenRange doc, const ScoreOptions& options);

// --explain: why a range scored. One row per query feature that fires inside the range.
struct FeatureContribution {
  int layer = 0;  // layer slot
  uint32_t feature = 0;
  uint32_t df = 0;          // df_l(f)
  uint32_t hits = 0;        // positions of the range in postings_l(f)
  float weight = 0;         // w_q(l, f)
  double idf = 0;           // idf_l(f)
  double unit = 0;          // λ_l · w_q(l, f) · idf_l(f): what one hit adds to S[t]
  double contribution = 0;  // hits · unit = this feature's share of Σ_{t ∈ range} S[t]
};
void to_json(nlohmann::json& j, const FeatureContribution& c);

// The `top_n` features contributing most to Σ_{t ∈ range} S[t] (after the same stop-feature and
// max-features filtering as scoring), by contribution descending; ties: lower slot, then lower
// feature id. top_n = 0 returns all.
std::vector<FeatureContribution> explain_range(const PostingSource& source,
                                               const QueryFeatures& query, TokenRange range,
                                               const ScoreOptions& options, size_t top_n = 10);

}  // namespace s3::retrieval
