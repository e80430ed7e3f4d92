// Feature co-activation scoring (docs/method.md §4.2):
//
//   S[t] = Σ_l Σ_{f ∈ F_q(l)} 1[t ∈ postings_l(f)] · λ_l · w_q(l, f) · idf_l(f),
//   idf_l(f) = 1 / (ln(1 + df_l(f)) + 1)
//
// λ_l is an optional per-slot layer weight (default 1, i.e. the paper's formula). Term-at-a-time:
// one dense float accumulator per layer slot over the document, one pass over each query
// feature's postings; the slots' sums are added in slot order (so the result does not depend on
// how many threads scored the slots).
//
// Centering (--score-centering, docs/retrieval.md §2.1), applied after scoring:
//   mean:     S'[t] = S[t] − mean{S[u] : u in the document range}
//   context:  S'[t] = S[t] − mean{S[u] : u in the document range, bin(u) = bin(t)},
//             bin(t) = bit_width(c(t)), c(t) = the tokens the key at t had before it in its chunk's
//             forward pass (ScanGeometry): log2 bins 0, 1, 2-3, 4-7, ..., 2048-4095.
// The question's features overlap ~every position's by chance, so S has a large question-wide
// baseline; and keys with little context (a chunk's first few hundred positions) share extra
// features with the queries of any question. Centering removes both, so spans grow by the excess
// over what a position of the same kind scores, not by the baseline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/query.h"
#include "retrieval/sources.h"
#include "retrieval/types.h"

namespace s3::retrieval {

enum class ScoreCentering : uint8_t {
  kNone = 0,     // "none": S[t] as docs/method.md §4.2 writes it
  kMean = 1,     // "mean": S[t] minus the mean S of the document range
  kContext = 2,  // "context": S[t] minus the mean S of the positions in the same context bin
};
std::string_view score_centering_name(ScoreCentering c);
ScoreCentering parse_score_centering(std::string_view name);  // UsageError naming the flag

// How the scan ran the model over a document: chunks of `chunk` tokens from the document's first
// token, each preceded by up to `overlap` earlier tokens of the document (run, not indexed) and by
// BOS when `bos`. chunk = 0: unknown, the whole document counts as one chunk.
struct ScanGeometry {
  uint32_t chunk = 0;
  uint32_t overlap = 0;
  bool bos = false;
};

// c: the number of tokens before the key at offset `d` (from its document's first token) in its
// chunk's forward pass: d mod chunk, plus min(overlap, the document tokens before the chunk), plus
// 1 with BOS.
uint32_t context_length(const ScanGeometry& g, uint32_t d);

// Where the documents start, for mapping a position to its offset in its document.
struct PositionContext {
  ScanGeometry geometry;
  // Global first positions of the index's documents, ascending. Empty: the scored range is one
  // document starting at its first position.
  std::vector<uint32_t> doc_starts;
};

struct ScoreOptions {
  // --aggregate: how the question's activations combine into w_q (docs/method.md §4.1, open).
  // Recorded here with the other scoring knobs; the caller passes it to aggregate_query(), since
  // score_positions() takes F_q already aggregated. Default max, with question_keys (measured:
  // docs/retrieval.md §2.3); the paper's is sum.
  Aggregation aggregation = Aggregation::kMax;
  // --query-vectors: which projections of the question the SAE encodes (docs/method.md §4.1, open):
  // its attention queries (false, the paper) or its own keys (true: the vectors the SAE was trained
  // on, so no key/query shift). The caller encodes the question accordingly; recorded here. Default
  // keys (docs/retrieval.md §2.3).
  bool question_keys = true;
  // --layer-weights: λ_l per layer slot, each finite and >= 0; empty = 1 for every slot (paper).
  std::vector<float> layer_weights;
  // --max-df-fraction: stop features. A feature with df_l(f) > fraction × n_tokens is dropped from
  // the question. 1 = off (default: the paper prunes nothing, idf already damps frequent
  // features). Must be in (0, 1].
  double max_df_fraction = 1.0;
  // --max-query-features: keep only the N features per layer slot with the largest λ·w·idf (ties:
  // lower feature id). 0 = all (the paper's formula). Default 256: no loss of needle recall on the
  // default model, and with the postings budget below scoring + spans stay under 10 ms at the
  // paper's size (docs/retrieval.md §2.2).
  uint32_t max_query_features = 256;
  // --max-query-postings: per layer slot, after the cap, keep features in the same rank order while
  // the kept lists' postings (Σ df) stay within this budget; a list that does not fit is skipped.
  // Bounds scoring time whatever the list lengths (the cap alone does not: the strongest features
  // are often the most frequent ones). 0 = no budget. With max_query_features = 0 every feature
  // of the slot is ranked (a full sort). Default 1,500,000 per slot (~1.5 ms of decoding and
  // scatter-add per slot at ~1 ns per posting; docs/retrieval.md §2.2).
  uint64_t max_query_postings = 1'500'000;
  // --score-centering: none (the paper's S[t]), mean or context (see above). The measurement
  // behind the default: docs/retrieval.md §2.1.
  ScoreCentering score_centering = ScoreCentering::kContext;
  // --score-threads: threads scoring the layer slots in parallel (at most one per slot is used;
  // 0 = one per slot, up to the hardware threads). The result is identical for every value, so
  // to_json does not record it.
  uint32_t threads = 0;

  void validate() const;  // throws s3::UsageError naming the flag
};
void to_json(nlohmann::json& j, const ScoreOptions& o);

// One query feature that survives the stop-feature rule and the --max-query-features cap, with
// what one of its hits adds to S[t].
struct PlannedFeature {
  int layer = 0;  // layer slot
  uint32_t feature = 0;
  uint32_t df = 0;
  float weight = 0;  // w_q(l, f)
  double idf = 0;    // idf_l(f)
  double unit = 0;   // λ_l · w_q(l, f) · idf_l(f), in double (explain)
  float unit_f = 0;  // the same rounded once to float (the accumulator's type)
};

// The features scoring reads, by slot, in the question's list order within a slot. Throws as
// score_positions.
std::vector<PlannedFeature> plan_features(const PostingSource& source, const QueryFeatures& query,
                                          const ScoreOptions& options);

// idf_l(f) = 1 / (ln(1 + df) + 1), in (0, 1]; df = 0 gives 1 (such a feature has no postings).
double feature_idf(uint64_t df);

// Writes S[t] for t in `doc` to scores[t - doc.begin] (scores is resized to doc.size()): the
// paper's formula; options.score_centering is applied by the caller (center_scores; retrieve()
// does). Contributions are summed in float per layer slot in list order, then the slot
// sums are added in slot order. Throws s3::UsageError if layer_weights does not have one value per
// slot of `source`, s3::Error if the question has more layer slots than the source.
void score_positions(const PostingSource& source, const QueryFeatures& query, TokenRange doc,
                     const ScoreOptions& options, std::vector<float>& scores);
std::vector<float> score_positions(const PostingSource& source, const QueryFeatures& query,
                                   TokenRange doc, const ScoreOptions& options);

// --score-centering: scores[i] (position doc.begin + i) minus the mean score of the positions of
// `doc` in its group (kMean: all of them; kContext: the same bin, bin = std::bit_width(
// context_length(...)); kNone: nothing). Means in double; results rounded once to float. Throws
// s3::Error if scores.size() != doc.size().
void center_scores(std::vector<float>& scores, TokenRange doc, ScoreCentering centering,
                   const PositionContext& context);

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
