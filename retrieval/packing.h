// Hybrid selection and token-budget packing (docs/method.md §6.2-6.3). Every method hands the model
// the same number of DOCUMENT tokens: exactly min(budget, document length), never more. Separators
// added by context assembly are not counted.
//
// s3-hybrid fills, in this order, each source by descending score:
//   1. lead [doc.begin, +lead) and tail [doc.end − tail, doc.end)   (default 128 + 128; if they
//      would exceed lead_tail_max_share × budget they shrink proportionally to fit it)
//   2. BM25 passages until BM25 has added floor(bm25_share × budget) new tokens (default 25%)
//   3. S3 spans until the union reaches the budget ("the rest S3")
//   4. what is still missing (a source ran out of candidates) goes to S3, then BM25, again
//   5. if every source is exhausted: the lead and tail grow, alternately one token each.
// s3-dense is s3-hybrid with dense passages in BM25's place (quota --bm25-share).
// s3, bm25 and dense use only their own source for steps 2–4 (quota = the whole budget), then
// step 5.
// The union is a set union of positions: a candidate adds (and is charged for) only the positions
// no earlier candidate took. A candidate that does not fit wholly is trimmed around its anchor (S3:
// the peak; BM25: the passage start, so a passage keeps its beginning) to exactly what is left; a
// later round that gives its source more room continues the same candidate outward.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/types.h"

namespace s3::retrieval {

enum class Method : uint8_t {
  kS3 = 0,        // "s3": SAE spans only (S3-Pure)
  kBm25 = 1,      // "bm25": BM25 passages only
  kS3Hybrid = 2,  // "s3-hybrid": spans ∪ passages ∪ lead ∪ tail (default)
  kFull = 3,      // "full": the whole document, middle-truncated to the budget
  kDense = 4,     // "dense": passages by embedding similarity only
  kS3Dense = 5,   // "s3-dense": spans ∪ dense passages ∪ lead ∪ tail
};
// Whether a method reads SAE spans / BM25 passages / dense passages.
bool method_uses_s3(Method m);
bool method_uses_bm25(Method m);
bool method_uses_dense(Method m);
std::string_view method_name(Method m);
Method parse_method(std::string_view name);  // throws s3::UsageError naming --method

struct BudgetOptions {
  // --budget: document tokens handed to the model (>= 1). For `full`, pass the model's window
  // (what LongBench truncates to). Default 2048.
  uint32_t budget = 2048;
  uint32_t lead_tokens = 128;  // --lead: first tokens of the document (s3-hybrid). Default 128.
  uint32_t tail_tokens = 128;  // --tail: last tokens of the document (s3-hybrid). Default 128.
  // --bm25-share: BM25's quota as a fraction of the budget (s3-hybrid), in [0, 1]. Default 0.25.
  double bm25_share = 0.25;
  // --lead-tail-max-share: lead + tail never take more than this fraction of the budget (so a
  // small budget still leaves room for retrieval), in [0, 1]. Default 0.5.
  double lead_tail_max_share = 0.5;

  void validate() const;  // throws s3::UsageError naming the flag
};
void to_json(nlohmann::json& j, const BudgetOptions& o);

struct Selection {
  std::vector<SelectedRange> ranges;  // document order, non-overlapping, merged per source
  uint32_t n_tokens = 0;              // Σ range sizes == min(budget, doc.size())
  std::array<uint32_t, kSourceCount> tokens_by_source{};  // indexed by Source
};
void to_json(nlohmann::json& j, const Selection& s);

// The first / last min(n, doc.size()) positions of the document.
TokenRange lead_range(TokenRange doc, uint32_t n);
TokenRange tail_range(TokenRange doc, uint32_t n);

// `full`: the whole document if it fits in max_tokens, else its first ceil(max/2) and last
// floor(max/2) tokens (LongBench keeps max/2 of each end; rounding up the first half makes an odd
// max_tokens exact instead of one short). Sources "lead" and "tail".
Selection select_full(TokenRange doc, uint32_t max_tokens);

// Every method's candidates; a source the method does not use may be empty.
struct CandidateSets {
  std::span<const Candidate> s3;     // S3 spans
  std::span<const Candidate> bm25;   // BM25 passages
  std::span<const Candidate> dense;  // dense passages
};

// Packs one method's selection. Candidates may be in any order (they are ranked here by score
// descending, ties by earlier start); parts outside `doc` are ignored. kFull ignores them and calls
// select_full with options.budget.
Selection select_ranges(Method method, TokenRange doc, const CandidateSets& candidates,
                        const BudgetOptions& options);
// The same without dense passages.
Selection select_ranges(Method method, TokenRange doc, std::span<const Candidate> s3_spans,
                        std::span<const Candidate> bm25_passages, const BudgetOptions& options);

}  // namespace s3::retrieval
