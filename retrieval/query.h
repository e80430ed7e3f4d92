// The question's SAE features, F_q(l) with weights w_q(l, f) (docs/method.md §4.1), and the helper
// that aggregates the question's raw top-k over its tokens (and heads) into them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace s3::retrieval {

// One active feature of the question at one layer slot.
struct QueryFeature {
  uint32_t feature = 0;
  float weight = 0;  // w_q(l, f): aggregated activation, > 0
  friend bool operator==(const QueryFeature&, const QueryFeature&) = default;
};

// F_q: one list per layer slot (index = slot, as in PostingSource). Each list should hold a
// feature at most once (aggregate_query_layer guarantees it); repeated entries simply add up.
using QueryFeatures = std::vector<std::vector<QueryFeature>>;

// How w_q(l, f) combines the activations of f over the question's rows (docs/method.md §4.1, open).
enum class Aggregation : uint8_t {
  kSum = 0,  // the paper's: a feature active on many question tokens votes more
  kMax = 1,  // default (--aggregate): each feature votes with its strongest activation only
};

std::string_view aggregation_name(Aggregation a);  // "sum" | "max"
// Throws s3::UsageError naming --aggregate for anything else.
Aggregation parse_aggregation(std::string_view name);

// The SAE top-k of the question at one layer slot, row-major [n_rows][k]: a row is one question
// token (or one (token, head) pair under head mode (a); rows are aggregated alike). Slots whose
// activation is <= 0 are inactive and ignored (docs/method.md §2: they are not indexed either).
struct QueryTopK {
  std::span<const uint32_t> ids;       // [n_rows * k] latent ids
  std::span<const float> activations;  // [n_rows * k] post-TopK activations
  size_t k = 0;                        // slots per row
};

// Aggregates one layer slot: per feature, the sum (or max) of its positive activations over all
// rows. Result sorted by feature id. Throws s3::Error if the spans' sizes disagree or an
// activation is not finite.
std::vector<QueryFeature> aggregate_query_layer(const QueryTopK& topk, Aggregation mode);

// All layer slots: result[l] = aggregate_query_layer(layers[l], mode).
QueryFeatures aggregate_query(std::span<const QueryTopK> layers, Aggregation mode);

}  // namespace s3::retrieval
