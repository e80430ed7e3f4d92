// s3attn index: the streaming scan of documents into an on-disk inverted index.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/command.h"
#include "cli/progress.h"
#include "core/documents.h"
#include "core/error.h"
#include "core/dense_model.h"
#include "core/model.h"
#include "core/passage_embeddings.h"
#include "core/scan.h"
#include "index/index_writer.h"
#include "index/segment_format.h"

namespace s3::cli {

Command add_index(CLI::App& root) {
  struct Args {
    std::string model, sae, out, device = "cpu", dtype, codec = "varint-delta", dense_model;
    DocumentSource source;
    ScanOptions scan;
    uint32_t passage_words = 100;
    bool overwrite = false, append = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("index", "Index documents: chunked scan, SAE features, inverted index");
  app->add_option("--model", a->model, "model directory")->required();
  app->add_option("--sae", a->sae, "SAE directory (s3attn sae train)")->required();
  app->add_option("--input", a->source.inputs, "text files, directories or JSONL files")->required();
  app->add_option("--format", a->source.format, "auto | text | jsonl")->capture_default_str();
  app->add_option("--doc-field", a->source.doc_field, "JSONL field holding the text")->capture_default_str();
  app->add_option("--name-field", a->source.name_field, "JSONL field naming each document");
  app->add_option("--chunk", a->scan.chunk, "tokens per independent chunk")->capture_default_str();
  app->add_option("--layers", a->scan.layers, "tapped layers (default: every layer of the SAE)")->delimiter(',');
  app->add_flag("--rope", a->scan.rope, "index post-RoPE keys (ablation)");
  app->add_option("--chunk-overlap", a->scan.overlap, "warm-up tokens before each chunk, run but not indexed")
      ->capture_default_str();
  app->add_option("--chunk-bos", a->scan.chunk_bos, "prepend BOS to each chunk: auto | always | never")->capture_default_str();
  app->add_option("--sae-bitmap", a->scan.sae_bitmap, "SAE bitmap on CUDA: auto | fused | aten")->capture_default_str();
  app->add_flag("!--no-warmup", a->scan.warmup, "skip the unindexed warm-up chunk on CUDA");
  app->add_flag("!--no-sae-overlap", a->scan.sae_overlap,
                "on CUDA, encode on the forward's stream instead of a second stream overlapping the next chunk");
  app->add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  app->add_option("--dtype", a->dtype, "model dtype (default: the exported one)");
  app->add_option("--codec", a->codec, "posting codec: varint-delta | streamvbyte-delta")->capture_default_str();
  app->add_option("--passage-words", a->passage_words, "BM25 passage size in words")->capture_default_str();
  app->add_option("--dense-model", a->dense_model,
                  "also embed every BM25 passage with this sentence-embedding model (for --method dense)");
  app->add_option("--out", a->out, "index directory")->required();
  auto* overwrite = app->add_flag("--overwrite", a->overwrite, "replace an existing index (atomically)");
  auto* append = app->add_flag("--append", a->append, "add the documents to an existing index");
  overwrite->excludes(append);
  app->add_flag("--json", a->json, "print the summary as JSON");

  auto run = [a]() {
    a->scan.validate();
    a->source.validate();
    if (!a->overwrite && !a->append && std::filesystem::exists(a->out))
      throw Error(a->out + " already exists; pass --overwrite to replace it or --append to add to it");
    const std::vector<Document> docs = read_documents(a->source);

    ModelLoadOptions load;
    load.device = DeviceSpec::parse(a->device);
    if (!a->dtype.empty()) load.dtype = validate_dtype(a->dtype);
    const Model model = Model::load(a->model, load);
    const Scanner scanner(model, a->sae, a->scan);
    std::optional<DenseEncoder> dense;
    if (!a->dense_model.empty()) dense.emplace(DenseEncoder::load(a->dense_model, load.device));

    index::IndexWriterOptions w;
    w.out = a->out;
    w.mode = a->overwrite ? index::WriteMode::kOverwrite : a->append ? index::WriteMode::kAppend : index::WriteMode::kCreate;
    w.layers = scanner.layers();
    w.d_latent = static_cast<uint32_t>(scanner.d_latent());
    w.codec = a->codec;
    w.metadata = scanner.metadata();
    w.append_ignore_metadata_keys = {"model_dir", "sae_dir", kDenseModelDirKey};
    w.lexical.target_words = a->passage_words;
    if (dense) {
      add_dense_metadata(w.metadata, *dense);
      w.dense_dim = static_cast<uint32_t>(dense->info().dim);
    }
    w.validate();
    index::IndexWriter writer(w);
    const uint32_t first_doc = writer.doc_base();

    std::optional<ProgressBar> bar;  // the total is known once the documents are tokenized
    const ScanStats stats = scanner.scan(writer, docs, [&](uint64_t done, uint64_t total) {
      if (!bar) bar.emplace("index", total, "tok");
      bar->update(done);
    });
    if (bar) bar->finish();
    DenseStats dense_stats;
    if (dense) dense_stats = embed_passages(*dense, writer, first_doc, docs);
    const index::CommitStats commit = writer.commit();
    uint64_t postings = 0, posting_bytes = 0;
    for (size_t i = 0; i < commit.postings.size(); ++i) {
      postings += commit.postings[i];
      posting_bytes += commit.postings_bytes[i];
    }
    const double total_s = stats.warmup_s + stats.seconds + dense_stats.seconds + commit.seconds;
    nlohmann::json summary = {{"index", a->out},
                              {"documents", stats.documents},
                              {"tokens", stats.tokens},
                              {"chunks", stats.chunks},
                              {"postings", postings},
                              {"posting_bytes", posting_bytes},
                              {"bytes_per_posting", postings ? static_cast<double>(posting_bytes) / postings : 0.0},
                              {"file_bytes", commit.file_bytes},
                              {"warmup_s", stats.warmup_s},
                              {"scan_s", stats.seconds},
                              {"tokenize_s", stats.tokenize_s},
                              {"tokenize_wait_s", stats.tokenize_wait_s},
                              {"early_chunks", stats.early_chunks},
                              {"early_chunks_redone", stats.early_chunks_redone},
                              {"indexer_busy_s", stats.indexer_busy_s},
                              {"buffer_wait_s", stats.buffer_wait_s},
                              {"drain_s", stats.drain_s},
                              {"commit_s", commit.seconds},
                              {"tokens_per_s", total_s > 0 ? stats.tokens / total_s : 0.0},
                              {"peak_device_bytes", stats.peak_device_bytes},
                              {"layers", scanner.layers()},
                              {"device", model.device().name}};
    if (dense) {
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(commit.index_dir / commit.segment / index::kDenseFile, ec);
      summary["dense"] = {{"model", dense->info().name},
                          {"passages", dense_stats.texts},
                          {"tokens", dense_stats.tokens},
                          {"truncated", dense_stats.truncated},
                          {"batches", dense_stats.batches},
                          {"embed_s", dense_stats.seconds},
                          {"file_bytes", ec ? 0 : bytes}};
    }
    if (a->json) {
      std::cout << summary.dump() << "\n";
    } else {
      std::cout << "indexed " << stats.documents << " documents, " << stats.tokens << " tokens, " << postings
                << " postings, " << commit.file_bytes << " bytes in " << total_s << " s -> " << a->out << "\n";
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
