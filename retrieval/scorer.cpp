#include "retrieval/scorer.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <exception>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

std::string_view score_centering_name(ScoreCentering c) {
  switch (c) {
    case ScoreCentering::kNone:
      return "none";
    case ScoreCentering::kMean:
      return "mean";
    case ScoreCentering::kContext:
      return "context";
  }
  return "?";
}

ScoreCentering parse_score_centering(std::string_view name) {
  if (name == "none") return ScoreCentering::kNone;
  if (name == "mean") return ScoreCentering::kMean;
  if (name == "context") return ScoreCentering::kContext;
  throw UsageError("--score-centering must be none, mean or context (got '" + std::string(name) +
                   "')");
}

uint32_t context_length(const ScanGeometry& g, uint32_t d) {
  const uint32_t bos = g.bos ? 1 : 0;
  if (g.chunk == 0) return d + bos;
  const uint32_t before = d - d % g.chunk;  // document tokens before the chunk
  return d % g.chunk + std::min(g.overlap, before) + bos;
}

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
  if (score_centering != ScoreCentering::kNone && score_centering != ScoreCentering::kMean &&
      score_centering != ScoreCentering::kContext) {
    throw UsageError("--score-centering must be none, mean or context");
  }
}

void to_json(nlohmann::json& j, const ScoreOptions& o) {
  j = nlohmann::json{{"aggregate", aggregation_name(o.aggregation)},
                     {"query_vectors", o.question_keys ? "keys" : "queries"},
                     {"layer_weights", o.layer_weights},
                     {"max_df_fraction", o.max_df_fraction},
                     {"max_query_features", o.max_query_features},
                     {"max_query_postings", o.max_query_postings},
                     {"score_centering", score_centering_name(o.score_centering)}};
  // `threads` is not recorded: it changes no result (a run's identity, e.g. longbench's resume
  // check, compares this record).
}

void to_json(nlohmann::json& j, const FeatureContribution& c) {
  j = nlohmann::json{{"layer", c.layer},   {"feature", c.feature},
                     {"df", c.df},         {"hits", c.hits},
                     {"weight", c.weight}, {"idf", c.idf},
                     {"unit", c.unit},     {"contribution", c.contribution}};
}

double feature_idf(uint64_t df) {
  // 1 + df is exact in double, so log(1 + df) equals log1p(df) up to rounding and is ~3x faster.
  return 1.0 / (std::log(1.0 + static_cast<double>(df)) + 1.0);
}

std::vector<PlannedFeature> plan_features(const PostingSource& source, const QueryFeatures& query,
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

  // Per slot: a compact key per surviving feature (the cap ranks 15K+ of them at the paper's size),
  // then PlannedFeature rows for the kept ones only.
  struct Key {
    double unit;
    uint32_t feature;
    uint32_t df;
    uint32_t pos;  // index in the question's list (restores list order)
  };
  std::vector<PlannedFeature> out;
  std::vector<Key> keys;
  for (size_t l = 0; l < query.size(); ++l) {
    const double lambda = options.layer_weights.empty() ? 1.0 : options.layer_weights[l];
    const std::vector<QueryFeature>& qs = query[l];
    // "a ranks before b": larger unit, ties lower feature id.
    auto better = [](const Key& a, const Key& b) {
      return a.unit != b.unit ? a.unit > b.unit : a.feature < b.feature;
    };
    const size_t cap = options.max_query_features;
    keys.clear();
    for (size_t i = 0; i < qs.size(); ++i) {
      const uint32_t df = source.df(static_cast<int>(l), qs[i].feature);
      if (df == 0) continue;  // no postings: contributes nothing
      if (stop_filter && static_cast<double>(df) > max_df) continue;
      const double unit = lambda * static_cast<double>(qs[i].weight) * feature_idf(df);
      if (unit == 0) continue;
      const Key k{unit, qs[i].feature, df, static_cast<uint32_t>(i)};
      if (cap == 0 || keys.size() < cap) {
        keys.push_back(k);
        if (cap > 0) std::push_heap(keys.begin(), keys.end(), better);  // front: the weakest kept
      } else if (better(k, keys.front())) {
        // Top-N by a heap of the N best so far: most features fail this one comparison.
        std::pop_heap(keys.begin(), keys.end(), better);
        keys.back() = k;
        std::push_heap(keys.begin(), keys.end(), better);
      }
    }
    // --max-query-postings: in rank order, keep a list while the slot's postings stay within the
    // budget (a list that does not fit is skipped; shorter ones after it may still fit).
    if (options.max_query_postings > 0) {
      std::sort(keys.begin(), keys.end(), better);
      uint64_t total = 0;
      size_t n = 0;
      for (const Key& k : keys) {
        if (total + k.df > options.max_query_postings) continue;
        total += k.df;
        keys[n++] = k;
      }
      keys.resize(n);
    }
    // List order, so the float summation order does not depend on the cap.
    if (cap > 0 || options.max_query_postings > 0) {
      std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) { return a.pos < b.pos; });
    }
    for (const Key& k : keys) {
      out.push_back({static_cast<int>(l), k.feature, k.df, qs[k.pos].weight, feature_idf(k.df),
                     k.unit, static_cast<float>(k.unit)});
    }
  }
  return out;
}

namespace {

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

// Adds every planned feature of [first, last) (one layer slot) into acc (zeroed, doc.size()).
// `buf` is the decoding buffer of sources that need one, reused from list to list.
void accumulate_slot(const PostingSource& source, const PlannedFeature* first,
                     const PlannedFeature* last, TokenRange doc, float* acc,
                     std::vector<uint32_t>& buf) {
  for (const PlannedFeature* p = first; p != last; ++p)
    source.add_postings(p->layer, p->feature, doc, p->unit_f, acc, buf);
}

}  // namespace

void PostingSource::add_postings(int layer, uint32_t feature, TokenRange range, float weight,
                                 float* acc, std::vector<uint32_t>& buf) const {
  postings(layer, feature, range, buf);
  auto [it, end] = clip(buf, range);  // the source may return positions outside the range
  const uint32_t base = range.begin;
  // The hot loop: scatter-add into an L2-resident accumulator. Positions within one list are
  // distinct, so the four adds of an unrolled step never alias.
  for (; end - it >= 4; it += 4) {
    const uint32_t a = it[0] - base, b = it[1] - base, d = it[2] - base, e = it[3] - base;
    acc[a] += weight;
    acc[b] += weight;
    acc[d] += weight;
    acc[e] += weight;
  }
  for (; it != end; ++it)
    acc[*it - base] += weight;
}

void score_positions(const PostingSource& source, const QueryFeatures& query, TokenRange doc,
                     const ScoreOptions& options, std::vector<float>& scores) {
  const std::vector<PlannedFeature> features = plan_features(source, query, options);
  scores.assign(doc.size(), 0.0f);
  if (doc.empty() || features.empty()) return;
  // Slot boundaries in the plan (it is grouped by slot, in slot order).
  std::vector<std::pair<const PlannedFeature*, const PlannedFeature*>> slots;
  for (size_t i = 0; i < features.size();) {
    size_t j = i;
    while (j < features.size() && features[j].layer == features[i].layer)
      ++j;
    slots.push_back({features.data() + i, features.data() + j});
    i = j;
  }
  const size_t n = doc.size();
  // Slot 0 accumulates into `scores`, every later slot into its own buffer; the buffers are added
  // in slot order afterwards. Per-thread scratch survives between calls (no allocation in steady
  // state for the single-threaded path).
  thread_local std::vector<uint32_t> buf;
  thread_local std::vector<float> scratch;
  const size_t wanted =
      options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  const size_t n_threads = std::min<size_t>(wanted, slots.size());
  if (n_threads <= 1) {
    accumulate_slot(source, slots[0].first, slots[0].second, doc, scores.data(), buf);
    for (size_t s = 1; s < slots.size(); ++s) {
      scratch.assign(n, 0.0f);
      accumulate_slot(source, slots[s].first, slots[s].second, doc, scratch.data(), buf);
      float* out = scores.data();
      const float* in = scratch.data();
      for (size_t i = 0; i < n; ++i)
        out[i] += in[i];
    }
    return;
  }
  // Parallel: slots are dealt round-robin to n_threads workers; each slot has its own buffer.
  std::vector<std::vector<float>> partial(slots.size() - 1);
  std::vector<std::exception_ptr> errors(n_threads);
  auto work = [&](size_t w) {
    try {
      std::vector<uint32_t> local_buf;
      for (size_t s = w; s < slots.size(); s += n_threads) {
        float* acc = scores.data();
        if (s > 0) {
          partial[s - 1].assign(n, 0.0f);
          acc = partial[s - 1].data();
        }
        accumulate_slot(source, slots[s].first, slots[s].second, doc, acc, local_buf);
      }
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  {
    std::vector<std::jthread> pool;
    for (size_t w = 1; w < n_threads; ++w)
      pool.emplace_back(work, w);
    work(0);
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  float* out = scores.data();
  for (const std::vector<float>& p : partial) {
    const float* in = p.data();
    for (size_t i = 0; i < n; ++i)
      out[i] += in[i];
  }
}

std::vector<float> score_positions(const PostingSource& source, const QueryFeatures& query,
                                   TokenRange doc, const ScoreOptions& options) {
  std::vector<float> scores;
  score_positions(source, query, doc, options, scores);
  return scores;
}

void center_scores(std::vector<float>& scores, TokenRange doc, ScoreCentering centering,
                   const PositionContext& context) {
  if (scores.size() != doc.size()) {
    throw Error("center_scores: " + std::to_string(scores.size()) + " scores for a range of " +
                std::to_string(doc.size()) + " positions");
  }
  if (doc.empty() || centering == ScoreCentering::kNone) return;
  if (centering == ScoreCentering::kMean) {
    double sum = 0;
    for (float x : scores)
      sum += x;
    const double mean = sum / static_cast<double>(scores.size());
    for (float& x : scores)
      x = static_cast<float>(static_cast<double>(x) - mean);
    return;
  }
  // bin(c) = bit_width(c) <= 32 for a uint32 context length. Inside one chunk of one document c
  // grows by one per position, so the range splits into runs of one bin each: sum per run, then
  // subtract per run (no per-position division or bin lookup).
  constexpr size_t kBins = 33;
  struct Run {
    uint32_t begin, end;  // offsets into scores
    uint8_t bin;
  };
  thread_local std::vector<Run> runs;
  runs.clear();
  std::array<double, kBins> sum{};
  std::array<uint64_t, kBins> count{};
  const ScanGeometry& g = context.geometry;
  const std::vector<uint32_t>& starts = context.doc_starts;
  // The document holding doc.begin (doc.begin itself if no start is at or before it).
  auto next_start = std::upper_bound(starts.begin(), starts.end(), doc.begin);
  uint32_t start = next_start == starts.begin() ? doc.begin : *(next_start - 1);
  uint32_t t = doc.begin;
  while (t < doc.end) {
    while (next_start != starts.end() && *next_start <= t)
      start = *next_start++;
    const uint32_t doc_end = next_start == starts.end() ? doc.end : std::min(doc.end, *next_start);
    // The end of t's chunk (or of its document), then the end of t's bin inside it.
    const uint32_t d = t - start;
    uint64_t piece_end = doc_end;
    if (g.chunk > 0)
      piece_end = std::min<uint64_t>(piece_end, uint64_t{start} + (d - d % g.chunk) + g.chunk);
    const uint32_t c = context_length(g, d);
    const auto bin = static_cast<uint8_t>(std::bit_width(c));
    const uint64_t next_bin_c = c == 0 ? 1 : uint64_t{1} << bin;  // first context of the next bin
    const auto end = static_cast<uint32_t>(std::min<uint64_t>(piece_end, t + (next_bin_c - c)));
    double run_sum = 0;
    for (uint32_t i = t - doc.begin; i < end - doc.begin; ++i)
      run_sum += scores[i];
    sum[bin] += run_sum;
    count[bin] += end - t;
    runs.push_back({t - doc.begin, end - doc.begin, bin});
    t = end;
  }
  std::array<double, kBins> mean{};
  for (size_t b = 0; b < kBins; ++b)
    mean[b] = count[b] ? sum[b] / static_cast<double>(count[b]) : 0.0;
  for (const Run& r : runs) {
    const double m = mean[r.bin];
    for (uint32_t i = r.begin; i < r.end; ++i)
      scores[i] = static_cast<float>(static_cast<double>(scores[i]) - m);
  }
}

std::vector<FeatureContribution> explain_range(const PostingSource& source,
                                               const QueryFeatures& query, TokenRange range,
                                               const ScoreOptions& options, size_t top_n) {
  const std::vector<PlannedFeature> features = plan_features(source, query, options);
  std::vector<FeatureContribution> out;
  if (range.empty()) return out;
  std::vector<uint32_t> buf;
  for (const PlannedFeature& p : features) {
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
