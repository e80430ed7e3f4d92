#include "retrieval/scorer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace s3::retrieval {

void ScoreOptions::validate() const {
  for (float w : layer_weights) {
    if (!std::isfinite(w) || w < 0) {
      throw UsageError("--layer-weights must be finite and >= 0 (got " + std::to_string(w) + ")");
    }
  }
  if (!(max_df_fraction > 0 && max_df_fraction <= 1)) {
    throw UsageError("--max-df-fraction must be in (0, 1] (got " + std::to_string(max_df_fraction) +
                     ")");
  }
}

void to_json(nlohmann::json& j, const ScoreOptions& o) {
  j = nlohmann::json{{"aggregate", aggregation_name(o.aggregation)},
                     {"layer_weights", o.layer_weights},
                     {"max_df_fraction", o.max_df_fraction},
                     {"max_query_features", o.max_query_features}};
}

void to_json(nlohmann::json& j, const FeatureContribution& c) {
  j = nlohmann::json{{"layer", c.layer},   {"feature", c.feature},
                     {"df", c.df},         {"hits", c.hits},
                     {"weight", c.weight}, {"idf", c.idf},
                     {"unit", c.unit},     {"contribution", c.contribution}};
}

double feature_idf(uint64_t df) {
  return 1.0 / (std::log1p(static_cast<double>(df)) + 1.0);
}

namespace {

// One query feature that survives filtering, with what one of its hits adds to S[t].
struct Planned {
  int layer;
  uint32_t feature;
  uint32_t df;
  float weight;
  double idf;
  double unit;   // λ · w · idf in double (explain)
  float unit_f;  // the same rounded once to float (the accumulator's type)
};

std::vector<Planned> plan(const PostingSource& source, const QueryFeatures& query,
                          const ScoreOptions& options) {
  options.validate();
  const int n_layers = source.n_layers();
  if (query.size() > static_cast<size_t>(n_layers)) {
    throw Error("the question has features for " + std::to_string(query.size()) +
                " layer slots but the index has " + std::to_string(n_layers));
  }
  if (!options.layer_weights.empty() &&
      options.layer_weights.size() != static_cast<size_t>(n_layers)) {
    throw UsageError("--layer-weights has " + std::to_string(options.layer_weights.size()) +
                     " values but the index has " + std::to_string(n_layers) + " tapped layers");
  }
  const double max_df = options.max_df_fraction * static_cast<double>(source.n_tokens());
  const bool stop_filter = options.max_df_fraction < 1.0;

  std::vector<Planned> out;
  std::vector<Planned> layer_plan;
  for (size_t l = 0; l < query.size(); ++l) {
    const double lambda = options.layer_weights.empty() ? 1.0 : options.layer_weights[l];
    layer_plan.clear();
    for (const QueryFeature& qf : query[l]) {
      const uint32_t df = source.df(static_cast<int>(l), qf.feature);
      if (df == 0) continue;  // no postings: contributes nothing
      if (stop_filter && static_cast<double>(df) > max_df) continue;
      const double idf = feature_idf(df);
      const double unit = lambda * static_cast<double>(qf.weight) * idf;
      if (unit == 0) continue;
      layer_plan.push_back(
          {static_cast<int>(l), qf.feature, df, qf.weight, idf, unit, static_cast<float>(unit)});
    }
    if (options.max_query_features > 0 && layer_plan.size() > options.max_query_features) {
      // Keep the N strongest, then restore list order so the float summation order is stable.
      std::vector<size_t> idx(layer_plan.size());
      for (size_t i = 0; i < idx.size(); ++i)
        idx[i] = i;
      std::partial_sort(idx.begin(), idx.begin() + options.max_query_features, idx.end(),
                        [&](size_t a, size_t b) {
                          if (layer_plan[a].unit != layer_plan[b].unit) {
                            return layer_plan[a].unit > layer_plan[b].unit;
                          }
                          return layer_plan[a].feature < layer_plan[b].feature;
                        });
      idx.resize(options.max_query_features);
      std::sort(idx.begin(), idx.end());
      for (size_t i : idx)
        out.push_back(layer_plan[i]);
    } else {
      out.insert(out.end(), layer_plan.begin(), layer_plan.end());
    }
  }
  return out;
}

// [first, last) of the sorted positions that fall inside `r`.
inline std::pair<const uint32_t*, const uint32_t*> clip(const std::vector<uint32_t>& pos,
                                                        TokenRange r) {
  const uint32_t* b = pos.data();
  const uint32_t* e = b + pos.size();
  // Common case: the source already restricted the list to the hint.
  const uint32_t* lo = (b == e || *b >= r.begin) ? b : std::lower_bound(b, e, r.begin);
  const uint32_t* hi = (lo == e || e[-1] < r.end) ? e : std::lower_bound(lo, e, r.end);
  return {lo, hi};
}

}  // namespace

void score_positions(const PostingSource& source, const QueryFeatures& query, TokenRange doc,
                     const ScoreOptions& options, std::vector<float>& scores) {
  const std::vector<Planned> features = plan(source, query, options);
  scores.assign(doc.size(), 0.0f);
  if (doc.empty()) return;
  float* const acc = scores.data();
  const uint32_t base = doc.begin;
  std::vector<uint32_t> buf;
  for (const Planned& p : features) {
    source.postings(p.layer, p.feature, doc, buf);
    auto [it, end] = clip(buf, doc);
    const float c = p.unit_f;
    // The hot loop: scatter-add into an L2-resident accumulator. Positions within one list are
    // distinct, so the four adds of an unrolled step never alias.
    for (; end - it >= 4; it += 4) {
      const uint32_t a = it[0] - base, b = it[1] - base, d = it[2] - base, e = it[3] - base;
      acc[a] += c;
      acc[b] += c;
      acc[d] += c;
      acc[e] += c;
    }
    for (; it != end; ++it)
      acc[*it - base] += c;
  }
}

std::vector<float> score_positions(const PostingSource& source, const QueryFeatures& query,
                                   TokenRange doc, const ScoreOptions& options) {
  std::vector<float> scores;
  score_positions(source, query, doc, options, scores);
  return scores;
}

std::vector<FeatureContribution> explain_range(const PostingSource& source,
                                               const QueryFeatures& query, TokenRange range,
                                               const ScoreOptions& options, size_t top_n) {
  const std::vector<Planned> features = plan(source, query, options);
  std::vector<FeatureContribution> out;
  if (range.empty()) return out;
  std::vector<uint32_t> buf;
  for (const Planned& p : features) {
    source.postings(p.layer, p.feature, range, buf);
    auto [lo, hi] = clip(buf, range);
    const auto hits = static_cast<uint32_t>(hi - lo);
    if (hits == 0) continue;
    out.push_back({p.layer, p.feature, p.df, hits, p.weight, p.idf, p.unit, hits * p.unit});
  }
  std::sort(out.begin(), out.end(), [](const FeatureContribution& a, const FeatureContribution& b) {
    if (a.contribution != b.contribution) return a.contribution > b.contribution;
    if (a.layer != b.layer) return a.layer < b.layer;
    return a.feature < b.feature;
  });
  if (top_n > 0 && out.size() > top_n) out.resize(top_n);
  return out;
}

}  // namespace s3::retrieval
