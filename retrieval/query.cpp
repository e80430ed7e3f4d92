#include "retrieval/query.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/base/error.h"

namespace s3::retrieval {

std::string_view aggregation_name(Aggregation a) {
  switch (a) {
    case Aggregation::kSum:
      return "sum";
    case Aggregation::kMax:
      return "max";
  }
  return "?";
}

Aggregation parse_aggregation(std::string_view name) {
  if (name == "sum") return Aggregation::kSum;
  if (name == "max") return Aggregation::kMax;
  throw UsageError("--aggregate must be sum or max (got '" + std::string(name) + "')");
}

std::vector<QueryFeature> aggregate_query_layer(const QueryTopK& topk, Aggregation mode) {
  if (topk.ids.size() != topk.activations.size()) {
    throw Error("query top-k: " + std::to_string(topk.ids.size()) + " ids but " +
                std::to_string(topk.activations.size()) + " activations");
  }
  if (topk.k == 0 ? !topk.ids.empty() : topk.ids.size() % topk.k != 0) {
    throw Error("query top-k: " + std::to_string(topk.ids.size()) +
                " entries is not a whole number of rows of k = " + std::to_string(topk.k));
  }
  std::vector<std::pair<uint32_t, float>> active;
  active.reserve(topk.ids.size());
  for (size_t i = 0; i < topk.ids.size(); ++i) {
    const float a = topk.activations[i];
    if (!std::isfinite(a)) throw Error("query top-k: activation is not finite");
    if (a > 0) active.emplace_back(topk.ids[i], a);
  }
  // Stable sort by id keeps row order within a feature, so the float sum is reproducible.
  std::stable_sort(active.begin(), active.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<QueryFeature> out;
  for (const auto& [id, a] : active) {
    if (out.empty() || out.back().feature != id) {
      out.push_back({id, a});
    } else if (mode == Aggregation::kSum) {
      out.back().weight += a;
    } else {
      out.back().weight = std::max(out.back().weight, a);
    }
  }
  return out;
}

QueryFeatures aggregate_query(std::span<const QueryTopK> layers, Aggregation mode) {
  QueryFeatures out;
  out.reserve(layers.size());
  for (const QueryTopK& l : layers)
    out.push_back(aggregate_query_layer(l, mode));
  return out;
}

}  // namespace s3::retrieval
