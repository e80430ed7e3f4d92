#include "retrieval/dense.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

void to_json(nlohmann::json& j, const DenseOptions& o) {
  j = nlohmann::json{{"max_passages", o.max_passages}};
}

namespace {

double norm(std::span<const float> v) {
  double s = 0;
  for (const float x : v)
    s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

}  // namespace

std::vector<ScoredPassage> dense_search(const DenseSource& source, std::span<const float> query,
                                        const DenseOptions& options,
                                        std::optional<TokenRange> within) {
  options.validate();
  if (query.size() != source.dim()) {
    throw Error("the question's embedding has " + std::to_string(query.size()) +
                " values, the index's " + std::to_string(source.dim()));
  }
  const double query_norm = norm(query);
  if (!(query_norm > 0)) throw Error("the question's embedding is zero");
  std::vector<ScoredPassage> out;
  std::vector<float> v(source.dim());
  for (uint32_t p = 0; p < source.n_passages(); ++p) {
    TokenRange r = source.passage_tokens(p);
    if (within) {
      r.begin = std::max(r.begin, within->begin);
      r.end = std::min(r.end, within->end);
      if (r.empty()) continue;
    }
    source.passage_vector(p, v);
    double dot = 0;
    for (size_t i = 0; i < v.size(); ++i)
      dot += static_cast<double>(v[i]) * query[i];
    const double n = norm(v);
    out.push_back({p, r, n > 0 ? dot / (n * query_norm) : 0.0});
  }
  std::sort(out.begin(), out.end(), [](const ScoredPassage& a, const ScoredPassage& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.range.begin != b.range.begin) return a.range.begin < b.range.begin;
    return a.passage < b.passage;
  });
  if (options.max_passages > 0 && out.size() > options.max_passages)
    out.resize(options.max_passages);
  return out;
}

}  // namespace s3::retrieval
