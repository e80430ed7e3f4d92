// retrieval_bench: time one question's S3 scoring, span selection and packing over a synthetic
// document of the size (128K tokens, 4 layer slots × 300 query features, posting lists of
// ~8K positions). Postings live uncompressed in memory; the source copies each list into the
// scorer's buffer (a stand-in for the index's decoding, timed separately as `source_ms`).
//
// Usage: retrieval_bench [--tokens N] [--layers L] [--features F] [--avg-postings P]
//                        [--budget B] [--reps R] [--seed S]
// Prints one JSON row on stdout (parameters + timings in ms: median, mean, stdev, min over R
// repetitions after 2 warm-ups; wall time per stage, and the thread's CPU time for score + spans +
// pack), a readable summary on stderr. On a shared machine, read the min and the CPU time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "retrieval/packing.h"
#include "retrieval/scorer.h"
#include "retrieval/spans.h"

namespace {

using namespace s3::retrieval;
using Clock = std::chrono::steady_clock;

class MemoryPostings final : public PostingSource {
 public:
  MemoryPostings(int layers, uint64_t tokens)
      : lists_(static_cast<size_t>(layers)), tokens_(tokens) {}
  int n_layers() const override { return static_cast<int>(lists_.size()); }
  uint64_t n_tokens() const override { return tokens_; }
  uint32_t df(int layer, uint32_t f) const override {
    const auto& m = lists_[static_cast<size_t>(layer)];
    auto it = m.find(f);
    return it == m.end() ? 0 : static_cast<uint32_t>(it->second.size());
  }
  void postings(int layer, uint32_t f, TokenRange, std::vector<uint32_t>& out) const override {
    const auto& m = lists_[static_cast<size_t>(layer)];
    auto it = m.find(f);
    if (it == m.end()) {
      out.clear();
    } else {
      out.assign(it->second.begin(), it->second.end());
    }
  }
  std::vector<std::map<uint32_t, std::vector<uint32_t>>> lists_;

 private:
  uint64_t tokens_;
};

struct Stats {
  double median, mean, stdev, min;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0, sq = 0;
  for (double x : v)
    sum += x;
  const double mean = sum / static_cast<double>(v.size());
  for (double x : v)
    sq += (x - mean) * (x - mean);
  const double med = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return {med, mean, v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0,
          v.front()};
}
nlohmann::json to_json_stats(const Stats& s) {
  return {{"median", s.median}, {"mean", s.mean}, {"stdev", s.stdev}, {"min", s.min}};
}
double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
// CPU time of this thread in ms: unlike wall time, not inflated while the thread is descheduled
// (the development machine is shared), though cache pollution from neighbours still counts.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, uint64_t> p = {
      {"tokens", 131072}, {"layers", 4}, {"features", 300}, {"avg-postings", 8192},
      {"budget", 2048},   {"reps", 30},  {"seed", 1}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || i + 1 >= argc || !p.count(a.substr(2))) {
      std::cerr << "usage: retrieval_bench [--tokens N] [--layers L] [--features F] "
                   "[--avg-postings P] [--budget B] [--reps R] [--seed S]\n";
      return 2;
    }
    p[a.substr(2)] = std::strtoull(argv[++i], nullptr, 10);
  }
  const auto n = static_cast<uint32_t>(p["tokens"]);
  const int layers = static_cast<int>(p["layers"]);
  const auto n_features = static_cast<uint32_t>(p["features"]);
  const auto avg = static_cast<uint32_t>(p["avg-postings"]);
  if (n == 0 || layers == 0 || avg == 0 || avg > n || p["reps"] == 0) {
    std::cerr << "retrieval_bench: sizes must be >= 1 and avg-postings <= tokens\n";
    return 2;
  }

  // Synthetic index: each query feature's list holds a uniform random length in [avg/2, 3avg/2]
  // of distinct random positions.
  std::mt19937_64 rng(p["seed"]);
  MemoryPostings source(layers, n);
  QueryFeatures query(static_cast<size_t>(layers));
  std::uniform_int_distribution<uint32_t> pos(0, n - 1);
  std::uniform_int_distribution<uint32_t> len(std::max(1u, avg / 2), std::min(n, avg + avg / 2));
  std::uniform_real_distribution<float> act(0.1f, 3.0f);
  uint64_t total_postings = 0;
  for (int l = 0; l < layers; ++l) {
    for (uint32_t k = 0; k < n_features; ++k) {
      const uint32_t f = k * 53 + 7;  // any distinct ids
      std::vector<uint32_t> v(len(rng));
      for (auto& x : v)
        x = pos(rng);
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
      total_postings += v.size();
      source.lists_[static_cast<size_t>(l)][f] = std::move(v);
      query[static_cast<size_t>(l)].push_back({f, act(rng)});
    }
  }
  const TokenRange doc{0, n};
  ScoreOptions score_opts;
  SpanOptions span_opts;
  BudgetOptions budget_opts;
  budget_opts.budget = static_cast<uint32_t>(p["budget"]);
  // BM25 stand-in for the packer: 40 random passages of 128 tokens.
  std::vector<Candidate> passages;
  for (int i = 0; i < 40; ++i) {
    const uint32_t b = pos(rng) / 128 * 128;
    passages.push_back({{b, std::min(n, b + 128)}, b, act(rng)});
  }

  std::vector<double> t_source, t_score, t_spans, t_pack, t_total, t_cpu;
  std::vector<float> scores;
  std::vector<uint32_t> buf;
  size_t n_spans = 0;
  const auto reps = static_cast<int>(p["reps"]);
  for (int r = -2; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (int l = 0; l < layers; ++l) {
      for (const QueryFeature& qf : query[static_cast<size_t>(l)]) {
        source.postings(l, qf.feature, doc, buf);
      }
    }
    const auto t1 = Clock::now();
    const double cpu0 = thread_cpu_ms();
    score_positions(source, query, doc, score_opts, scores);
    const auto t2 = Clock::now();
    const std::vector<Candidate> spans = find_spans(scores, doc, span_opts);
    const auto t3 = Clock::now();
    const Selection sel = select_ranges(Method::kS3Hybrid, doc, spans, passages, budget_opts);
    const auto t4 = Clock::now();
    const double cpu1 = thread_cpu_ms();
    if (sel.n_tokens != std::min(budget_opts.budget, n)) return 1;
    n_spans = spans.size();
    if (r < 0) continue;
    t_source.push_back(ms(t0, t1));
    t_score.push_back(ms(t1, t2));
    t_spans.push_back(ms(t2, t3));
    t_pack.push_back(ms(t3, t4));
    t_total.push_back(ms(t1, t4));
    t_cpu.push_back(cpu1 - cpu0);
  }
  nlohmann::json row = {
      {"bench", "retrieval"},
      {"tokens", n},
      {"layers", layers},
      {"features_per_layer", n_features},
      {"avg_postings", avg},
      {"total_postings", total_postings},
      {"budget", budget_opts.budget},
      {"reps", reps},
      {"spans", n_spans},
      {"source_ms", to_json_stats(stats(t_source))},
      {"score_ms", to_json_stats(stats(t_score))},
      {"spans_ms", to_json_stats(stats(t_spans))},
      {"pack_ms", to_json_stats(stats(t_pack))},
      {"score_spans_pack_ms", to_json_stats(stats(t_total))},
      {"score_spans_pack_cpu_ms", to_json_stats(stats(t_cpu))},
  };
  std::cout << row.dump() << "\n";
  const Stats sc = stats(t_score), sp = stats(t_spans), pk = stats(t_pack), src = stats(t_source),
              tot = stats(t_total), cpu = stats(t_cpu);
  std::fprintf(stderr,
               "%u tokens, %d layers x %u features, %llu postings: score %.2f ms (of which the "
               "source's copying ~%.2f), spans %.2f ms, pack %.2f ms, total %.2f ms (medians; "
               "total min %.2f, thread CPU time median %.2f)\n",
               n, layers, n_features, static_cast<unsigned long long>(total_postings), sc.median,
               src.median, sp.median, pk.median, tot.median, tot.min, cpu.median);
  return 0;
}
