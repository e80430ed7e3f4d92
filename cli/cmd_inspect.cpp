// s3attn inspect: what an index holds: documents, tokens, postings and bytes per layer, df
// distribution, configuration and fingerprints.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/pipeline/index_metadata.h"
#include "index/index_reader.h"
#include "index/segment_format.h"

namespace s3::cli {
namespace {

nlohmann::json df_distribution(std::span<const uint32_t> df) {
  std::vector<uint32_t> sorted(df.begin(), df.end());
  std::sort(sorted.begin(), sorted.end());
  const auto at = [&](double q) {
    return sorted.empty() ? 0u : sorted[static_cast<size_t>(q * (sorted.size() - 1))];
  };
  const auto zero = static_cast<size_t>(std::count(sorted.begin(), sorted.end(), 0u));
  return {{"features", sorted.size()},
          {"never_active", zero},
          {"min", at(0)},
          {"median", at(0.5)},
          {"p90", at(0.9)},
          {"p99", at(0.99)},
          {"max", at(1.0)}};
}

}  // namespace

Command add_inspect(CLI::App& root) {
  struct Args {
    std::string index;
    bool json = false, documents = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("inspect", "Describe an index");
  app->add_option("index", a->index, "index directory")->required();
  app->add_flag("--json", a->json, "print JSON");
  app->add_flag("--documents", a->documents, "list every document (default: the first 20)");

  auto run = [a]() {
    const index::IndexReader reader = index::IndexReader::open(a->index);
    nlohmann::json docs = nlohmann::json::array();
    const uint32_t shown =
        a->documents ? reader.n_documents() : std::min<uint32_t>(reader.n_documents(), 20);
    for (uint32_t d = 0; d < shown; ++d) {
      const index::DocumentView v = reader.document(d);
      docs.push_back(
          {{"id", d}, {"name", v.name}, {"tokens", v.n_tokens()}, {"bytes", v.text.size()}});
    }
    nlohmann::json layers = nlohmann::json::array();
    for (uint32_t slot = 0; slot < reader.layers().size(); ++slot) {
      const index::LayerTotals t = reader.totals(slot);
      layers.push_back(
          {{"layer", t.layer},
           {"postings", t.postings},
           {"posting_bytes", t.postings_bytes},
           {"file_bytes", t.file_bytes},
           {"bytes_per_posting",
            t.postings ? static_cast<double>(t.postings_bytes) / t.postings : 0.0},
           {"postings_per_token",
            reader.n_tokens() ? static_cast<double>(t.postings) / reader.n_tokens() : 0.0},
           {"df", df_distribution(reader.df(slot))}});
    }
    nlohmann::json segments = nlohmann::json::array();
    for (const index::SegmentSummary& s : reader.segments())
      segments.push_back({{"dir", s.dir},
                          {"documents", s.n_docs},
                          {"tokens", s.n_tokens},
                          {"passages", s.n_passages},
                          {"file_bytes", s.file_bytes}});
    nlohmann::json dense = nullptr;
    if (const index::DenseIndex* d = reader.dense()) {
      uint64_t bytes = 0;  // dense.bin of every segment
      for (const index::SegmentSummary& s : reader.segments()) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(reader.dir() / s.dir / index::kDenseFile, ec);
        bytes += ec ? 0 : size;
      }
      dense = {{"passages", d->n_passages()},
               {"dim", d->dim()},
               {"dtype", "float16"},
               {"file_bytes", bytes},
               {"model", read_index_metadata(reader.metadata()).dense_model}};
    }
    const bool lexical_only = reader.content() == index::IndexContent::kLexicalOnly;
    const nlohmann::json out = {{"index", a->index},
                                {"content", lexical_only ? "lexical-only" : "sae-features"},
                                {"documents", reader.n_documents()},
                                {"tokens", reader.n_tokens()},
                                {"passages", reader.lexical().n_passages()},
                                {"postings", reader.total_postings()},
                                {"file_bytes", reader.total_file_bytes()},
                                {"d_latent", reader.d_latent()},
                                {"codec", std::string(reader.codec().name())},
                                {"layers", layers},
                                {"dense", dense},
                                {"segments", segments},
                                {"configuration", reader.metadata()},
                                {"document_list", docs}};
    // Names and metadata are the user's bytes: JSON escapes control characters, and bytes that are
    // not UTF-8 become U+FFFD instead of failing the dump.
    constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
    if (a->json) {
      std::cout << out.dump(2, ' ', false, kReplace) << "\n";
      return 0;
    }
    std::printf(
        "index %s: %u documents, %u tokens, %u BM25 passages, %llu postings, %llu bytes on disk\n",
        printable(a->index).c_str(), reader.n_documents(), reader.n_tokens(),
        reader.lexical().n_passages(), static_cast<unsigned long long>(reader.total_postings()),
        static_cast<unsigned long long>(reader.total_file_bytes()));
    if (lexical_only) {
      std::printf(
          "lexical-only: no SAE layers or feature postings (built without --sae; methods bm25, "
          "dense, full), %zu segment(s)\n",
          reader.segments().size());
    } else {
      std::printf("codec %s, d_latent %u, %zu segment(s)\n",
                  std::string(reader.codec().name()).c_str(), reader.d_latent(),
                  reader.segments().size());
      std::printf("%-6s %14s %14s %10s %10s %9s %9s %9s\n", "layer", "postings", "bytes",
                  "B/posting", "per-token", "df-med", "df-p99", "df=0");
    }
    for (const auto& l : layers)
      std::printf("%-6d %14llu %14llu %10.3f %10.1f %9u %9u %9zu\n", l["layer"].get<int>(),
                  static_cast<unsigned long long>(l["postings"].get<uint64_t>()),
                  static_cast<unsigned long long>(l["posting_bytes"].get<uint64_t>()),
                  l["bytes_per_posting"].get<double>(), l["postings_per_token"].get<double>(),
                  l["df"]["median"].get<uint32_t>(), l["df"]["p99"].get<uint32_t>(),
                  l["df"]["never_active"].get<size_t>());
    if (dense.is_null()) {
      std::printf("dense passage embeddings: none (index --dense-model)\n");
    } else {
      std::printf(
          "dense passage embeddings: %u vectors of %u float16 values, %llu bytes, model %s\n",
          dense["passages"].get<uint32_t>(), dense["dim"].get<uint32_t>(),
          static_cast<unsigned long long>(dense["file_bytes"].get<uint64_t>()),
          dense["model"].dump(-1, ' ', false, kReplace).c_str());
    }
    std::printf("configuration: %s\n", reader.metadata().dump(-1, ' ', false, kReplace).c_str());
    for (const auto& d : docs)
      std::printf("  doc %u: %s (%u tokens)\n", d["id"].get<uint32_t>(),
                  printable(d["name"].get<std::string>()).c_str(), d["tokens"].get<uint32_t>());
    if (shown < reader.n_documents())
      std::printf("  ... %u more (--documents)\n", reader.n_documents() - shown);
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
