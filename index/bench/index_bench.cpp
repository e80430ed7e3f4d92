// index_bench: microbenchmark of the index writer (not a test).
//
// Feeds synthetic feature-major bitmaps of SAE-like density to IndexWriter exactly as the scan does
// (one document, chunk by chunk, layer by layer), then commits, then decodes every list back.
// Prints a human summary on stderr and one JSON object per codec on stdout.
//
//   index_bench [--tokens 131072] [--layers 4] [--d-latent 16384] [--active 1000] [--chunk 4096]
//               [--dist lognormal|zipf|uniform] [--sigma 1.5] [--run 1] [--codecs a,b]
//               [--ids] [--slots 1024] [--threads 0] [--no-fsync] [--dir /tmp] [--seed 1]
//
// --active is the mean number of distinct active features per token per layer (8 heads x k 128
// union ~ 1000). Feature firing rates follow --dist (lognormal: ln-rate ~ N(mu, sigma), the shape
// of SAE latent frequency histograms); --run is the mean length of a feature's runs of consecutive
// active tokens (1 = independent tokens). --ids feeds token-major ids instead of bitmaps.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "index/bench/feature_rates.h"
#include "index/codec_registry.h"
#include "index/index_reader.h"
#include "index/index_writer.h"

namespace fs = std::filesystem;
using s3::index::IndexReader;
using s3::index::IndexWriter;
using s3::index::IndexWriterOptions;
using s3::index::TokenOffset;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  uint32_t tokens = 131072;
  uint32_t layers = 4;
  uint32_t d_latent = 16384;
  double active = 1000;
  uint32_t chunk = 4096;
  std::string dist = "lognormal";
  double sigma = 1.5;
  double run = 1;
  std::vector<std::string> codecs;
  bool ids = false;
  uint32_t slots = 1024;
  unsigned threads = 0;
  bool fsync = true;
  std::string dir = "/tmp";
  uint64_t seed = 1;
  uint32_t distinct_chunks = 8;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Per-feature firing rates with mean sum `active`, each capped at 0.95.
std::vector<double> make_rates(const Config& c, std::mt19937_64& rng) {
  return s3::index::bench::feature_rates(c.dist, c.d_latent, c.active, c.sigma, rng);
}

// One chunk's feature-major bitmap: runs of mean length `run` separated by geometric gaps.
std::vector<uint64_t> make_chunk(const Config& c, const std::vector<double>& rate,
                                 std::mt19937_64& rng) {
  return s3::index::bench::feature_bitmap(rate, c.chunk, c.run, rng);
}

// Token-major ids of a bitmap chunk: each active feature once, some repeated (as other heads
// would), padded with -1 to `slots` per token.
std::vector<int32_t> to_ids(const Config& c, const std::vector<uint64_t>& bits,
                            std::mt19937_64& rng) {
  const size_t words = (c.chunk + 63) / 64;
  std::vector<std::vector<int32_t>> per_token(c.chunk);
  for (uint32_t f = 0; f < c.d_latent; ++f) {
    for (size_t w = 0; w < words; ++w) {
      uint64_t x = bits[f * words + w];
      while (x) {
        per_token[w * 64 + static_cast<size_t>(__builtin_ctzll(x))].push_back(
            static_cast<int32_t>(f));
        x &= x - 1;
      }
    }
  }
  std::vector<int32_t> ids(size_t{c.chunk} * c.slots, -1);
  for (uint32_t t = 0; t < c.chunk; ++t) {
    auto& v = per_token[t];
    const size_t n = v.size();
    while (v.size() < c.slots && n > 0 && v.size() < n * 2)
      v.push_back(v[rng() % n]);  // duplicates
    std::shuffle(v.begin(), v.end(), rng);
    std::copy_n(v.begin(), std::min<size_t>(v.size(), c.slots), ids.begin() + size_t{t} * c.slots);
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) try {
  Config c;
  CLI::App app{
      "Index writer ingestion, commit and codecs on synthetic postings (see the top of the file)"};
  app.add_option("--tokens", c.tokens)->capture_default_str();
  app.add_option("--layers", c.layers)->capture_default_str();
  app.add_option("--d-latent", c.d_latent)->capture_default_str();
  app.add_option("--active", c.active, "mean distinct features per token and layer")
      ->capture_default_str();
  app.add_option("--chunk", c.chunk)->capture_default_str();
  app.add_option("--dist", c.dist, "lognormal | zipf | uniform")->capture_default_str();
  app.add_option("--sigma", c.sigma)->capture_default_str();
  app.add_option("--run", c.run, "mean run length of consecutive active tokens")
      ->capture_default_str();
  app.add_flag("--ids", c.ids, "feed token-major ids instead of bitmaps");
  app.add_option("--slots", c.slots)->capture_default_str();
  app.add_option("--threads", c.threads, "commit threads (0 = default)")->capture_default_str();
  app.add_flag("!--no-fsync", c.fsync, "skip fsync at commit");
  app.add_option("--dir", c.dir)->capture_default_str();
  app.add_option("--seed", c.seed)->capture_default_str();
  app.add_option("--codecs", c.codecs, "codec names (default: all)")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  if (c.codecs.empty()) {
    for (const auto* codec : s3::index::all_codecs())
      c.codecs.emplace_back(codec->name());
  }
  std::mt19937_64 rng(c.seed);
  const auto rates = make_rates(c, rng);
  auto t_gen = Clock::now();
  std::vector<std::vector<uint64_t>> chunks;
  std::vector<std::vector<int32_t>> id_chunks;
  for (uint32_t k = 0; k < c.distinct_chunks; ++k) {
    chunks.push_back(make_chunk(c, rates, rng));
    if (c.ids) id_chunks.push_back(to_ids(c, chunks.back(), rng));
  }
  std::fprintf(stderr, "generated %u distinct %u-token chunks in %.2f s\n", c.distinct_chunks,
               c.chunk, seconds_since(t_gen));

  // One synthetic document: "w0 w1 ... " with one token per word.
  std::string text;
  std::vector<TokenOffset> offsets(c.tokens);
  std::vector<int32_t> token_ids(c.tokens);
  const char* vocab[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"};
  for (uint32_t t = 0; t < c.tokens; ++t) {
    offsets[t].begin = static_cast<uint32_t>(text.size());
    text += vocab[rng() % 8];
    offsets[t].end = static_cast<uint32_t>(text.size());
    text += (t % 20 == 19) ? ". " : " ";
    token_ids[t] = static_cast<int32_t>(rng() % 32000);
  }

  for (const std::string& codec : c.codecs) {
    const fs::path out = fs::path(c.dir) / ("s3attn-index-bench-" + codec);
    IndexWriterOptions o;
    o.out = out;
    o.mode = s3::index::WriteMode::kOverwrite;
    for (uint32_t l = 0; l < c.layers; ++l)
      o.layers.push_back(static_cast<int>(l * 4));
    o.d_latent = c.d_latent;
    o.codec = codec;
    o.commit_threads = c.threads;
    o.fsync = c.fsync;
    o.metadata = {{"bench", true}};
    IndexWriter w(o);
    auto doc = w.add_document("bench", text, token_ids, offsets);

    auto t0 = Clock::now();
    const double cpu0 = thread_cpu_seconds();
    uint32_t k = 0;
    for (uint32_t pos = 0; pos < c.tokens; pos += c.chunk, ++k) {
      const uint32_t n = std::min(c.chunk, c.tokens - pos);
      for (uint32_t l = 0; l < c.layers; ++l) {
        const size_t which = (k + l * 3) % c.distinct_chunks;
        if (c.ids) {
          w.add_feature_ids(l, doc.token_begin + pos, n, c.slots, id_chunks[which].data());
        } else {
          w.add_feature_bitmap(l, doc.token_begin + pos, n, chunks[which].data());
        }
      }
    }
    const double absorb = seconds_since(t0);
    const double absorb_cpu = thread_cpu_seconds() - cpu0;
    uint64_t postings = 0;
    for (uint32_t l = 0; l < c.layers; ++l)
      postings += w.n_postings(l);

    auto st = w.commit();
    uint64_t bytes = 0;
    for (uint64_t b : st.postings_bytes)
      bytes += b;

    auto t2 = Clock::now();
    IndexReader r = IndexReader::open(out);
    const double open_s = seconds_since(t2);
    auto t3 = Clock::now();
    std::vector<uint32_t> list;
    uint64_t decoded = 0;
    for (uint32_t l = 0; l < c.layers; ++l) {
      for (uint32_t f = 0; f < c.d_latent; ++f) {
        r.postings(l, f, list);
        decoded += list.size();
      }
    }
    const double decode_s = seconds_since(t3);

    std::fprintf(stderr,
                 "%-18s %s: %.0f M postings (%.0f per token per layer) absorbed in %.3f s (%.3f s "
                 "CPU) = %.0f M postings/s; commit %.3f s; %.3f bytes/posting; open+verify %.3f s; "
                 "decode %.0f M postings/s; files %.1f MiB\n",
                 codec.c_str(), c.ids ? "ids" : "bitmap", postings / 1e6,
                 double(postings) / c.tokens / c.layers, absorb, absorb_cpu,
                 postings / absorb / 1e6, st.seconds, double(bytes) / postings, open_s,
                 decoded / decode_s / 1e6, st.file_bytes / 1048576.0);
    nlohmann::json j = {{"codec", codec},
                        {"input", c.ids ? "ids" : "bitmap"},
                        {"tokens", c.tokens},
                        {"layers", c.layers},
                        {"d_latent", c.d_latent},
                        {"active", c.active},
                        {"dist", c.dist},
                        {"sigma", c.sigma},
                        {"run", c.run},
                        {"postings", postings},
                        {"absorb_s", absorb},
                        {"absorb_cpu_s", absorb_cpu},
                        {"postings_per_s", postings / absorb},
                        {"commit_s", st.seconds},
                        {"bytes_per_posting", double(bytes) / postings},
                        {"open_verify_s", open_s},
                        {"decode_postings_per_s", decoded / decode_s},
                        {"file_bytes", st.file_bytes},
                        {"threads", c.threads},
                        {"fsync", c.fsync}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    std::error_code ec;
    fs::remove_all(out, ec);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "index_bench: %s\n", e.what());
  return 1;
}
