// merge_bench: merging the parts of a sharded index build (index/index_merge.h) on synthetic
// postings (not a test).
//
// One synthetic document of --tokens tokens, cut into --parts parts of whole chunks the way the
// ranks of a sharded run cut a long document: each part holds the whole document and the postings
// of its chunks (feature-major bitmaps of SAE-like density, as index_bench feeds them), committed
// as a part index. Then merge_parts joins them into one index, timed. With --compare the
// single-writer index of the same input is built too (its commit timed) and the merged files are
// compared with its files byte for byte. One JSON line on stdout.
//
//   merge_bench [--tokens 262144] [--layers 4] [--d-latent 16384] [--active 920] [--chunk 4096]
//               [--parts 8] [--threads 0] [--no-fsync] [--dir /tmp] [--seed 1] [--compare]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "index/bench/feature_rates.h"
#include "index/index_merge.h"
#include "index/index_part.h"
#include "index/index_writer.h"

namespace fs = std::filesystem;
using s3::index::IndexWriter;
using s3::index::IndexWriterOptions;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  uint32_t tokens = 262144;
  uint32_t layers = 4;
  uint32_t d_latent = 16384;
  double active = 920;  // 8 KV heads x k 128, union (docs/index-format.md)
  uint32_t chunk = 4096;
  uint32_t parts = 8;
  unsigned threads = 0;
  bool fsync = true;
  std::string dir = "/tmp";
  uint64_t seed = 1;
  bool compare = false;
  uint32_t distinct_chunks = 8;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool same_files(const fs::path& a, const fs::path& b) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(a)) {
    if (!e.is_regular_file() || e.path().filename() == ".lock") continue;
    ++n;
    const fs::path other = b / fs::relative(e.path(), a);
    if (!fs::exists(other) || read_file(e.path()) != read_file(other)) return false;
  }
  size_t m = 0;
  for (const auto& e : fs::recursive_directory_iterator(b))
    m += e.is_regular_file() && e.path().filename() != ".lock";
  return n == m;
}

}  // namespace

int main(int argc, char** argv) try {
  Config c;
  CLI::App app{
      "Merging the parts of a sharded index build on synthetic postings (see the top of "
      "the file)"};
  app.add_option("--tokens", c.tokens)->capture_default_str()->check(CLI::Range(1u, UINT32_MAX));
  app.add_option("--layers", c.layers)->capture_default_str()->check(CLI::Range(1u, UINT32_MAX));
  app.add_option("--d-latent", c.d_latent)
      ->capture_default_str()
      ->check(CLI::Range(1u, UINT32_MAX));
  app.add_option("--active", c.active, "mean distinct features per token and layer")
      ->capture_default_str();
  app.add_option("--chunk", c.chunk)->capture_default_str()->check(CLI::Range(1u, UINT32_MAX));
  app.add_option("--parts", c.parts, "ranks of the sharded build")
      ->capture_default_str()
      ->check(CLI::Range(1u, UINT32_MAX));
  app.add_option("--threads", c.threads, "merge and commit threads (0 = default)")
      ->capture_default_str();
  app.add_flag("!--no-fsync", c.fsync, "skip fsync at commit");
  app.add_option("--dir", c.dir)->capture_default_str();
  app.add_option("--seed", c.seed)->capture_default_str();
  app.add_flag("--compare", c.compare,
               "also build the single-writer index and compare the merged one with it");
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 rng(c.seed);
  const auto rates = s3::index::bench::feature_rates("lognormal", c.d_latent, c.active, 1.5, rng);
  std::vector<std::vector<uint64_t>> chunks;
  for (uint32_t k = 0; k < c.distinct_chunks; ++k)
    chunks.push_back(s3::index::bench::feature_bitmap(rates, c.chunk, 1.0, rng));

  // One synthetic document, one token per word.
  std::string text;
  std::vector<s3::index::TokenOffset> offsets(c.tokens);
  std::vector<int32_t> ids(c.tokens);
  const char* vocab[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"};
  for (uint32_t t = 0; t < c.tokens; ++t) {
    offsets[t].begin = static_cast<uint32_t>(text.size());
    text += vocab[rng() % 8];
    offsets[t].end = static_cast<uint32_t>(text.size());
    text += (t % 20 == 19) ? ". " : " ";
    ids[t] = static_cast<int32_t>(rng() % 32000);
  }
  const uint32_t n_chunks = (c.tokens + c.chunk - 1) / c.chunk;

  const fs::path root = fs::path(c.dir) / "s3attn-merge-bench";
  fs::remove_all(root);
  fs::create_directories(root);
  IndexWriterOptions o;
  for (uint32_t l = 0; l < c.layers; ++l)
    o.layers.push_back(static_cast<int>(l * 4));
  o.d_latent = c.d_latent;
  o.commit_threads = c.threads;
  o.fsync = c.fsync;
  o.metadata = {{"bench", true}};
  // Chunks [first, end) of the document, fed as the scan feeds them.
  auto build = [&](IndexWriterOptions w, uint32_t first, uint32_t end) {
    IndexWriter writer(w);
    const auto doc = writer.add_document("bench", text, ids, offsets);
    for (uint32_t k = first; k < end; ++k) {
      const uint32_t pos = k * c.chunk, n = std::min(c.chunk, c.tokens - pos);
      for (uint32_t l = 0; l < c.layers; ++l)
        writer.add_feature_bitmap(l, doc.token_begin + pos, n,
                                  chunks[(k + l * 3) % c.distinct_chunks].data());
    }
    return writer.commit();
  };

  const fs::path index = root / "index";
  std::vector<fs::path> parts;
  const auto t_parts = Clock::now();
  for (uint32_t r = 0; r < c.parts; ++r) {
    const uint32_t first = n_chunks * r / c.parts, end = n_chunks * (r + 1) / c.parts;
    s3::index::PartRecord rec;
    rec.rank = r;
    rec.world = c.parts;
    rec.input_documents = 1;
    rec.input_bytes = text.size();
    rec.input_xxh3_64 = "0000000000000000";
    rec.doc_begin = 0;
    rec.doc_end = 1;
    rec.begin = {0, std::min(first * c.chunk, c.tokens)};
    rec.end = {0, std::min(end * c.chunk, c.tokens)};
    IndexWriterOptions w = o;
    w.out = s3::index::part_path(index, r, c.parts);
    w.metadata[s3::index::kPartKey] = rec.to_json();
    build(w, first, end);
    parts.push_back(w.out);
  }
  const double parts_s = seconds_since(t_parts);

  s3::index::MergeOptions m;
  m.out = index;
  m.threads = c.threads;
  m.fsync = c.fsync;
  const s3::index::MergeStats st = s3::index::merge_parts(parts, m);
  uint64_t postings = 0;
  for (const uint64_t n : st.commit.postings)
    postings += n;
  nlohmann::json j = {{"tokens", c.tokens},
                      {"layers", c.layers},
                      {"d_latent", c.d_latent},
                      {"active", c.active},
                      {"chunk", c.chunk},
                      {"parts", c.parts},
                      {"threads", c.threads},
                      {"fsync", c.fsync},
                      {"postings", postings},
                      {"file_bytes", st.commit.file_bytes},
                      {"write_parts_s", parts_s},
                      {"open_s", st.open_s},
                      {"postings_s", st.postings_s},
                      {"commit_s", st.commit.seconds},
                      {"merge_s", st.seconds},
                      {"merge_postings_per_s", postings / st.seconds}};
  if (c.compare) {
    IndexWriterOptions w = o;
    w.out = root / "single";
    const auto single = build(w, 0, n_chunks);
    j["single_commit_s"] = single.seconds;
    j["identical"] = same_files(index, w.out);
  }
  std::fprintf(stderr,
               "%u parts of %u tokens x %u layers (%.0f M postings): merge %.2f s (open %.2f, "
               "postings %.2f, commit %.2f) = %.0f M postings/s\n",
               c.parts, c.tokens, c.layers, postings / 1e6, st.seconds, st.open_s, st.postings_s,
               st.commit.seconds, postings / st.seconds / 1e6);
  std::printf("%s\n", j.dump().c_str());
  fs::remove_all(root);
  return j.value("identical", true) ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "merge_bench: %s\n", e.what());
  return 1;
}
