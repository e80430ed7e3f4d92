// index_score_bench: one question's S3 scoring + span selection against a real on-disk index of
// the paper's size (a tool, not a test). Builds a synthetic index once with IndexWriter (or reuses
// the one in --dir), opens it with IndexReader and scores through the same adapter `s3attn ask`
// uses (core/pipeline/index_sources.h), so the time includes the codec's decoding.
//
//   index_score_bench [--dir /tmp/s3attn-score-bench] [--rebuild] [--tokens 131072] [--layers 4]
//                     [--d-latent 16384] [--active 1000] [--dist uniform|lognormal]
//                     [--sigma 1.5] [--codec NAME] [--question-rows 320] [--k 128]
//                     [--caps 0,64,128,256,512,1024] [--max-postings P] [--threads 1]
//                     [--reps 10] [--seed 1]
//
// Index: one document of --tokens tokens, chunked by 4096 like the scan; per layer slot each
// feature f fires independently at each token with rate r_f, with mean sum --active distinct
// features per token (8 KV heads x k 128, unioned, ~1000): 131,072 tokens x 4 layers x 1000 ~
// 524M postings. --dist uniform: every r_f equal (the random SAEs of the paper-size measurement in
// docs/performance.md); lognormal: ln r ~ N(mu, sigma), the shape of trained SAE latent frequency
// histograms, each r capped at 0.95. Question: --question-rows rows (10 tokens x 32 query heads =
// 320) of k distinct features each, drawn with probability proportional to r_f (a feature frequent
// on keys is frequent on queries too) with an exponential(1) activation, summed per feature
// (--aggregate sum). For every --caps value (--max-query-features; 0 = all; with --max-postings as
// --max-query-postings) prints one JSON row:
// features kept, postings read, and ms (median / min over --reps after one warm-up; `cpu`: the
// calling thread's CPU time, steadier on a shared machine) of decoding alone (`decode_ms`: every
// kept list into a buffer), score_positions (`score_ms`) and find_spans (`spans_ms`); for the
// first --caps value also `first_call_score_spans_ms`, the first call of the process, as in `s3attn
// ask`.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/pipeline/index_sources.h"
#include "index/bench/feature_rates.h"
#include "index/codec_registry.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "retrieval/scorer.h"
#include "retrieval/spans.h"

namespace fs = std::filesystem;
using namespace s3::retrieval;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  std::string dir = "/tmp/s3attn-score-bench";
  bool rebuild = false;
  uint32_t tokens = 131072;
  uint32_t layers = 4;
  uint32_t d_latent = 16384;
  double active = 1000;
  double sigma = 1.5;
  std::string dist = "uniform";
  std::string codec = std::string(s3::index::kDefaultCodec);
  uint32_t question_rows = 320;
  uint32_t k = 128;
  std::vector<uint32_t> caps = {0, 64, 128, 256, 512, 1024};
  uint64_t max_postings = 0;
  uint32_t threads = 1;
  int reps = 10;
  uint64_t seed = 1;
};

constexpr uint32_t kChunk = 4096;

// Firing rates r_f, lognormal, scaled so that they sum to `active`; each capped at 0.95.
std::vector<double> make_rates(const Config& c, std::mt19937_64& rng) {
  return s3::index::bench::feature_rates(c.dist, c.d_latent, c.active, c.sigma, rng);
}

void build_index(const Config& c, const fs::path& dir) {
  std::mt19937_64 rng(c.seed);
  s3::index::IndexWriterOptions o;
  o.out = dir;
  o.mode = s3::index::WriteMode::kOverwrite;
  for (uint32_t l = 0; l < c.layers; ++l)
    o.layers.push_back(static_cast<int>(l));
  o.d_latent = c.d_latent;
  o.fsync = false;
  o.codec = c.codec;
  s3::index::IndexWriter w(o);
  // A document of one-letter words (the text matters only to the lexical index).
  std::string text;
  text.reserve(size_t{c.tokens} * 2);
  std::vector<int32_t> ids(c.tokens);
  std::vector<s3::index::TokenOffset> offsets(c.tokens);
  for (uint32_t t = 0; t < c.tokens; ++t) {
    offsets[t] = {static_cast<uint32_t>(text.size()), static_cast<uint32_t>(text.size() + 1)};
    text += static_cast<char>('a' + t % 26);
    text += (t % 20 == 19) ? ". " : " ";
    ids[t] = static_cast<int32_t>(t % 26);
  }
  const s3::index::DocumentRange d = w.add_document("synthetic", text, ids, offsets);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<uint64_t> bits;
  for (uint32_t l = 0; l < c.layers; ++l) {
    const std::vector<double> rate = make_rates(c, rng);
    for (uint32_t b = 0; b < c.tokens; b += kChunk) {
      const uint32_t n = std::min(kChunk, c.tokens - b);
      const size_t words = (n + 63) / 64;
      bits.assign(size_t{c.d_latent} * words, 0);
      for (uint32_t f = 0; f < c.d_latent; ++f) {
        // Independent Bernoulli(r) per token by geometric skips: cost ~ postings.
        const double lq = std::log1p(-rate[f]);
        uint64_t* row = bits.data() + size_t{f} * words;
        for (double t = std::floor(std::log(1.0 - u(rng)) / lq); t < n;
             t += 1 + std::floor(std::log(1.0 - u(rng)) / lq)) {
          const auto ti = static_cast<uint64_t>(t);
          row[ti / 64] |= uint64_t{1} << (ti % 64);
        }
      }
      w.add_feature_bitmap(l, d.token_begin + b, n, bits.data());
    }
    std::fprintf(stderr, "index_score_bench: layer %u: %llu postings\n", l,
                 static_cast<unsigned long long>(w.n_postings(l)));
  }
  w.commit();
}

// The question: rows of k distinct features drawn proportionally to the keys' rates.
QueryFeatures make_question(const Config& c, const s3::index::IndexReader& r) {
  std::mt19937_64 rng(c.seed + 1000);
  std::exponential_distribution<float> act(1.0f);
  QueryFeatures q(c.layers);
  for (uint32_t l = 0; l < c.layers; ++l) {
    const auto df = r.df(l);
    std::discrete_distribution<uint32_t> pick(df.begin(), df.end());
    std::vector<float> w(c.d_latent, 0.0f);
    std::vector<uint32_t> row;
    for (uint32_t i = 0; i < c.question_rows; ++i) {
      row.clear();
      while (row.size() < c.k) {
        const uint32_t f = pick(rng);
        if (std::find(row.begin(), row.end(), f) == row.end()) row.push_back(f);
      }
      for (uint32_t f : row)
        w[f] += act(rng);
    }
    for (uint32_t f = 0; f < c.d_latent; ++f)
      if (w[f] > 0) q[l].push_back({f, w[f]});
  }
  return q;
}

struct Stats {
  double median, min;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v.front()};
}
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}
double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) try {
  Config c;
  CLI::App app{
      "S3 scoring + spans against an on-disk index of the paper's size (see the top of the file)"};
  app.add_option("--dir", c.dir, "index directory (built once, reused)")->capture_default_str();
  app.add_flag("--rebuild", c.rebuild, "rebuild the index in --dir");
  app.add_option("--tokens", c.tokens)->capture_default_str();
  app.add_option("--layers", c.layers)->capture_default_str();
  app.add_option("--d-latent", c.d_latent)->capture_default_str();
  app.add_option("--active", c.active, "mean distinct features per token and layer")
      ->capture_default_str();
  app.add_option("--sigma", c.sigma, "lognormal sigma of the feature rates")->capture_default_str();
  app.add_option("--dist", c.dist, "uniform | lognormal")->capture_default_str();
  app.add_option("--codec", c.codec)->capture_default_str();
  app.add_option("--question-rows", c.question_rows)->capture_default_str();
  app.add_option("--k", c.k)->capture_default_str();
  app.add_option("--caps", c.caps, "--max-query-features values (0 = all)")->delimiter(',');
  app.add_option("--max-postings", c.max_postings, "--max-query-postings (0 = none)")
      ->capture_default_str();
  app.add_option("--threads", c.threads)->capture_default_str();
  app.add_option("--reps", c.reps)->capture_default_str();
  app.add_option("--seed", c.seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (c.tokens == 0 || c.layers == 0 || c.d_latent == 0 || c.k == 0 || c.k > c.d_latent ||
      c.reps < 1 || c.active <= 0 || c.active > 0.95 * c.d_latent ||
      (c.dist != "uniform" && c.dist != "lognormal")) {
    throw s3::UsageError(
        "sizes must be >= 1, k <= d-latent, 0 < active <= 0.95 d-latent, --dist uniform or "
        "lognormal");
  }
  const fs::path dir =
      fs::path(c.dir) /
      ("t" + std::to_string(c.tokens) + "-l" + std::to_string(c.layers) + "-f" +
       std::to_string(c.d_latent) + "-a" + std::to_string(static_cast<int>(c.active)) + "-" +
       c.dist + "-" + c.codec + "-s" + std::to_string(c.seed));
  if (c.rebuild || !fs::exists(dir / "manifest.json")) {
    fs::create_directories(dir.parent_path());
    const auto t0 = Clock::now();
    build_index(c, dir);
    std::fprintf(stderr, "index_score_bench: built %s in %.1f s\n", dir.c_str(),
                 ms(t0, Clock::now()) / 1e3);
  }
  const s3::index::IndexReader reader = s3::index::IndexReader::open(dir, {false});
  const s3::IndexPostingSource source(reader);
  const QueryFeatures query = make_question(c, reader);
  const TokenRange doc{0, reader.n_tokens()};
  size_t q_total = 0;
  for (const auto& l : query)
    q_total += l.size();

  std::vector<float> scores;
  std::vector<uint32_t> buf;
  bool fresh = true;  // no posting of this index read yet in this process
  for (uint32_t cap : c.caps) {
    ScoreOptions so;
    so.max_query_features = cap;
    so.threads = c.threads;
    so.max_query_postings = c.max_postings;
    const std::vector<PlannedFeature> plan = plan_features(source, query, so);
    uint64_t postings = 0;
    for (const PlannedFeature& p : plan)
      postings += p.df;
    const size_t kept = plan.size();
    const int reps = cap == 0 ? std::min(c.reps, 3) : c.reps;
    std::vector<double> t_decode, t_score, t_spans, t_cpu;
    size_t n_spans = 0;
    // The first call of a fresh process (as in `s3attn ask`): nothing of this plan read before,
    // so the posting pages are mapped in by the call itself.
    double first_ms = -1;
    if (fresh) {
      fresh = false;
      rusage r0{}, r1{};
      getrusage(RUSAGE_SELF, &r0);
      const auto t0 = Clock::now();
      score_positions(source, query, doc, so, scores);
      const auto t1 = Clock::now();
      find_spans(scores, doc, SpanOptions{});
      first_ms = ms(t0, Clock::now());
      getrusage(RUSAGE_SELF, &r1);
      std::fprintf(stderr, "first call: score %.2f ms, total %.2f ms, %ld minor faults\n",
                   ms(t0, t1), first_ms, r1.ru_minflt - r0.ru_minflt);
    }
    for (int r = -1; r < reps; ++r) {
      const auto t0 = Clock::now();
      for (const PlannedFeature& p : plan)
        source.postings(p.layer, p.feature, doc, buf);
      const auto t1 = Clock::now();
      const double cpu0 = thread_cpu_ms();
      score_positions(source, query, doc, so, scores);
      const auto t2 = Clock::now();
      n_spans = find_spans(scores, doc, SpanOptions{}).size();
      const auto t3 = Clock::now();
      const double cpu1 = thread_cpu_ms();
      if (r < 0) continue;
      t_decode.push_back(ms(t0, t1));
      t_score.push_back(ms(t1, t2));
      t_spans.push_back(ms(t2, t3));
      t_cpu.push_back(cpu1 - cpu0);
    }
    const Stats d = stats(t_decode), s = stats(t_score), p = stats(t_spans);
    std::vector<double> total(t_score.size());
    for (size_t i = 0; i < total.size(); ++i)
      total[i] = t_score[i] + t_spans[i];
    const Stats tot = stats(total), cpu = stats(t_cpu);
    nlohmann::json row = {
        {"bench", "index_score"},
        {"first_call_score_spans_ms", first_ms >= 0 ? nlohmann::json(first_ms) : nlohmann::json()},
        {"tokens", c.tokens},
        {"layers", c.layers},
        {"d_latent", c.d_latent},
        {"index_postings", reader.total_postings()},
        {"question_features", q_total},
        {"max_query_features", cap},
        {"max_query_postings", c.max_postings},
        {"threads", c.threads},
        {"features_kept", kept},
        {"postings_read", postings},
        {"spans", n_spans},
        {"reps", reps},
        {"decode_ms", {{"median", d.median}, {"min", d.min}}},
        {"score_ms", {{"median", s.median}, {"min", s.min}}},
        {"spans_ms", {{"median", p.median}, {"min", p.min}}},
        {"score_spans_ms", {{"median", tot.median}, {"min", tot.min}}},
        {"score_spans_cpu_ms", {{"median", cpu.median}, {"min", cpu.min}}},
        {"dist", c.dist},
        {"codec", c.codec}};
    std::cout << row.dump() << std::endl;
    std::fprintf(stderr,
                 "cap %5u: %6zu features, %10llu postings: decode %8.2f ms, score %8.2f ms, "
                 "spans %.2f ms, score+spans %8.2f ms (median; min %.2f; calling thread's CPU "
                 "%.2f)\n",
                 cap, kept, static_cast<unsigned long long>(postings), d.median, s.median, p.median,
                 tot.median, tot.min, cpu.median);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "index_score_bench: %s\n", e.what());
  return 1;
}
