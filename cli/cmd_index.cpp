// s3attn index: the streaming scan of documents into an on-disk inverted index. Under torchrun or
// srun each rank scans its share into a part and rank 0 merges the parts (docs/scale-out.md).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "cli/progress.h"
#include "cli/scan_flags.h"
#include "core/base/error.h"
#include "core/base/fs_util.h"
#include "core/pipeline/documents.h"
#include "core/pipeline/index_shard.h"
#include "core/pipeline/launch.h"
#include "core/pipeline/lexical_scan.h"
#include "core/pipeline/passage_embeddings.h"
#include "core/pipeline/scan.h"
#include "core/runtime/dense_model.h"
#include "core/runtime/model.h"
#include "index/index_merge.h"
#include "index/index_part.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "index/segment_format.h"

namespace s3::cli {

namespace {

namespace fs = std::filesystem;

struct ShardFlags {
  bool no_merge = false;     // rank 0 leaves the parts for `s3attn merge`
  bool keep_parts = false;   // keep the parts after rank 0 merged them
  double merge_timeout = 0;  // seconds rank 0 waits for the other parts (0 = no limit)
};

void add_shard_flags(CLI::App& app, ShardFlags& f) {
  const char* group = "Sharded runs: torchrun, srun (docs/scale-out.md)";
  app.add_flag("--no-merge", f.no_merge,
               "rank 0 leaves the parts <out>.part-R-of-W for `s3attn merge` instead of waiting "
               "for them and merging")
      ->group(group);
  app.add_flag("--keep-parts", f.keep_parts, "keep the parts after rank 0 merged them")
      ->group(group);
  app.add_option("--merge-timeout", f.merge_timeout,
                 "seconds rank 0 waits for the other ranks' parts (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber)
      ->group(group);
}

nlohmann::json scan_summary(const ScanStats& stats, const index::CommitStats& commit) {
  uint64_t postings = 0, posting_bytes = 0;
  for (size_t i = 0; i < commit.postings.size(); ++i) {
    postings += commit.postings[i];
    posting_bytes += commit.postings_bytes[i];
  }
  const double total_s = stats.warmup_s + stats.seconds + commit.seconds;
  return {{"documents", stats.documents},
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
          {"peak_device_bytes", stats.peak_device_bytes}};
}

// The progress callback of a scan: a bar created once the total is known.
class ScanProgressBar {
 public:
  explicit ScanProgressBar(std::string label, std::string unit = "tok")
      : label_(std::move(label)), unit_(std::move(unit)) {}
  void operator()(uint64_t done, uint64_t total) {
    if (!bar_) bar_.emplace(label_, total, unit_);
    bar_->update(done);
  }
  void finish() {
    if (bar_) bar_->finish();
  }

 private:
  std::string label_;
  std::string unit_;
  std::optional<ProgressBar> bar_;
};

// The options of `s3attn index` that only the SAE scan reads: given without --sae (a lexical-only
// build), they would silently do nothing.
constexpr const char* kSaeScanOptions[] = {
    "--chunk",      "--layers",    "--rope",           "--chunk-overlap", "--chunk-bos",
    "--sae-bitmap", "--no-warmup", "--no-sae-overlap", "--codec",         "--dtype"};

struct LexicalBuild {
  std::filesystem::path model, out, dense_model;
  index::WriteMode mode = index::WriteMode::kCreate;
  uint32_t passage_words = 100;
  std::string device;
  bool json = false;
};

// `s3attn index` without --sae: a lexical-only index (BM25 passages, and dense vectors with
// --dense-model) from the model's tokenizer alone. The model itself (model.ts) is never loaded.
int build_lexical(const LexicalBuild& b, const std::vector<Document>& docs) {
  const ModelInfo info = ModelInfo::load(b.model);
  const Tokenizer tokenizer = Tokenizer::from_file(info.tokenizer_file());
  std::optional<DenseEncoder> dense;
  if (!b.dense_model.empty())
    dense.emplace(DenseEncoder::load(b.dense_model, DeviceSpec::parse(b.device)));
  index::IndexWriterOptions w = lexical_writer_options(b.out, info, b.passage_words);
  w.mode = b.mode;
  if (dense) {
    add_dense_metadata(w.metadata, *dense);
    w.dense_dim = static_cast<uint32_t>(dense->info().dim);
  }
  w.validate();
  index::IndexWriter writer(w);
  const uint32_t first_doc = writer.doc_base();
  ScanProgressBar bar("index (lexical)", "B");
  const ScanStats stats = scan_lexical(tokenizer, writer, docs, std::ref(bar));
  bar.finish();
  DenseStats dense_stats;
  if (dense) dense_stats = embed_passages(*dense, writer, first_doc, docs);
  const index::CommitStats commit = writer.commit();
  nlohmann::json summary = scan_summary(stats, commit);
  summary["index"] = b.out.string();
  summary["content"] = index::kLexicalOnlyContent;
  summary["layers"] = nlohmann::json::array();
  summary["device"] = dense ? nlohmann::json(b.device) : nlohmann::json();  // no model runs
  if (dense) {
    summary["dense"] = {{"model", dense->info().name},    {"passages", dense_stats.texts},
                        {"tokens", dense_stats.tokens},   {"truncated", dense_stats.truncated},
                        {"batches", dense_stats.batches}, {"embed_s", dense_stats.seconds}};
  }
  if (b.json) {
    std::cout << summary.dump() << "\n";
  } else {
    std::cout << "indexed " << stats.documents << " documents, " << stats.tokens
              << " tokens, lexical-only (no SAE), " << commit.file_bytes << " bytes in "
              << stats.seconds + commit.seconds << " s -> " << b.out.string() << "\n";
  }
  return 0;
}

// One rank of a sharded run: scans its share into <out>.part-R-of-W (or finds it already there),
// then rank 0 waits for the other parts and merges them into <out>.
int run_shard(const LaunchEnvironment& launch, const ShardFlags& flags, bool json,
              const Scanner& scanner, const std::string& scanner_device,
              const std::vector<Document>& docs, index::IndexWriterOptions w,
              index::WriteMode final_mode) {
  const fs::path out = w.out;
  const auto rank = static_cast<uint32_t>(launch.rank), world = static_cast<uint32_t>(launch.world);
  const std::string who = "rank " + std::to_string(rank) + " of " + std::to_string(world);
  const IndexShard shard(docs, launch.rank, launch.world);
  index::PartRecord record = shard.part_record();
  w.out = index::part_path(out, rank, world);
  w.mode = final_mode == index::WriteMode::kOverwrite ? index::WriteMode::kOverwrite
                                                      : index::WriteMode::kCreate;
  w.metadata[index::kPartKey] = record.to_json();

  // A part this build already committed (the rank ran before and the job was cut short) is kept.
  bool reused = false;
  if (fs::exists(fs::symlink_status(w.out))) {
    std::string why;
    try {
      why = index::part_mismatch(w.out, w);
      // Every checksum too: a damaged part is built again (with --overwrite), not merged.
      if (why.empty()) index::IndexReader::open(w.out);
    } catch (const DataCorruption& e) {
      why = e.what();
    }
    if (why.empty()) {
      reused = true;
      spdlog::info("{}: {} is already committed by this build; not scanning again", who,
                   w.out.string());
    } else if (final_mode != index::WriteMode::kOverwrite) {
      throw Error(w.out.string() + " exists but is not this build's part: " + why +
                  "; pass --overwrite to rebuild it");
    }
  }
  nlohmann::json summary = {{"rank", rank},
                            {"world", world},
                            {"part", w.out.string()},
                            {"reused", reused},
                            {"device", scanner_device}};
  if (!reused) {
    index::IndexWriter writer(w);
    ScanProgressBar bar("index [" + std::to_string(rank) + "/" + std::to_string(world) + "]");
    const ScanStats stats = scanner.scan(writer, docs, shard, std::ref(bar));
    bar.finish();
    record.doc_begin = stats.doc_begin;
    record.doc_end = stats.doc_end;
    record.begin = stats.begin;
    record.end = stats.end;
    nlohmann::json metadata = w.metadata;
    metadata[index::kPartKey] = record.to_json();
    writer.set_metadata(std::move(metadata));
    const index::CommitStats commit = writer.commit();
    summary.update(scan_summary(stats, commit));
  }
  if (rank != 0 || flags.no_merge) {
    if (json) {
      std::cout << summary.dump() << "\n";
    } else {
      std::cout << who << ": " << (reused ? "kept" : "wrote") << " " << w.out.string() << "\n";
    }
    return 0;
  }

  // Rank 0: the rendezvous through the file system, then the merge.
  const std::vector<fs::path> parts = index::wait_for_parts(
      out, w, world, flags.merge_timeout, 60, [&](const std::vector<uint32_t>& missing) {
        spdlog::info("rank 0: waiting for the parts of {} of {} ranks (first: rank {})",
                     missing.size(), world, missing.front());
      });
  index::MergeOptions m;
  m.out = out;
  m.mode = final_mode;
  m.ignore_metadata_keys = w.append_ignore_metadata_keys;
  m.threads = w.commit_threads;
  m.fsync = w.fsync;
  const index::MergeStats merged = index::merge_parts(parts, m);
  if (!flags.keep_parts) {
    for (const fs::path& p : parts)
      remove_tree_quietly(p);
  }
  summary["merge"] = merge_summary(merged);
  summary["index"] = out.string();
  if (json) {
    std::cout << summary.dump() << "\n";
  } else {
    std::cout << "merged " << world << " parts: " << merged.documents << " documents, "
              << merged.tokens << " tokens in " << merged.seconds << " s -> " << out.string()
              << "\n";
  }
  return 0;
}

}  // namespace

Command add_index(CLI::App& root) {
  struct Args {
    std::string model, sae, out, device = "cpu", codec = "varint-delta", dense_model;
    std::optional<DType> dtype;
    DocumentSource source;
    ScanFlags scan;
    ShardFlags shard;
    bool overwrite = false, append = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app =
      root.add_subcommand("index", "Index documents: chunked scan, SAE features, inverted index");
  app->add_option("--model", a->model, "model directory")->required();
  app->add_option("--sae", a->sae,
                  "SAE directory (s3attn sae train); without it the index is lexical-only: "
                  "tokenized, no model forward, for --method bm25, dense, full");
  app->add_option("--input", a->source.inputs, "text files, directories or JSONL files")
      ->required();
  app->add_option("--format", a->source.format, "auto | text | jsonl")->capture_default_str();
  app->add_option("--doc-field", a->source.doc_field, "JSONL field holding the text")
      ->capture_default_str();
  app->add_option("--name-field", a->source.name_field, "JSONL field naming each document");
  add_scan_flags(*app, a->scan);
  add_device_option(*app, a->device, DeviceScope::kPerRank);
  add_model_dtype_option(*app, a->dtype);
  app->add_option("--codec", a->codec, "posting codec: varint-delta | streamvbyte-delta")
      ->capture_default_str();
  app->add_option("--dense-model", a->dense_model,
                  "also embed every BM25 passage with this sentence-embedding model (for --method "
                  "dense, s3-dense)");
  app->add_option("--out", a->out, "index directory")->required();
  auto* overwrite =
      app->add_flag("--overwrite", a->overwrite, "replace an existing index (atomically)");
  auto* append = app->add_flag("--append", a->append, "add the documents to an existing index");
  overwrite->excludes(append);
  add_shard_flags(*app, a->shard);
  app->add_flag("--json", a->json, "print the summary as JSON");

  auto run = [a, app]() {
    a->scan.scan.validate();
    a->source.validate();
    const LaunchEnvironment launch = LaunchEnvironment::from_environment();
    if (!a->dense_model.empty() && launch.sharded()) {
      throw UsageError(
          "--dense-model is not supported in sharded builds (torchrun, srun) yet: build an index "
          "with dense passage embeddings in one process");
    }
    if (!a->overwrite && !a->append && std::filesystem::exists(a->out))
      throw Error(a->out +
                  " already exists; pass --overwrite to replace it or --append to add to it");
    if (a->sae.empty()) {
      for (const char* name : kSaeScanOptions)
        if (app->get_option(name)->count() > 0)
          throw UsageError(std::string(name) +
                           " applies to the SAE scan; without --sae the index is lexical-only "
                           "(tokenized only)");
      if (launch.sharded())
        throw UsageError(
            "a lexical-only index (no --sae) is built in one process: it only tokenizes; run "
            "s3attn index without torchrun / srun");
    }
    const std::vector<Document> docs = read_documents(a->source);
    if (a->sae.empty()) {
      LexicalBuild b;
      b.model = a->model;
      b.out = a->out;
      b.dense_model = a->dense_model;
      b.mode = a->overwrite ? index::WriteMode::kOverwrite
               : a->append  ? index::WriteMode::kAppend
                            : index::WriteMode::kCreate;
      b.passage_words = a->scan.passage_words;
      b.device = a->device;
      b.json = a->json;
      return build_lexical(b, docs);
    }

    ModelLoadOptions load;
    load.device = DeviceSpec::parse(a->device).for_local_rank(launch.local_rank);
    load.device.make_current();
    load.dtype = a->dtype;
    const Model model = Model::load(a->model, load);
    // The default chunk is lowered to fit the model's window; a --chunk that does not fit is
    // refused.
    if (app->get_option("--chunk")->count() == 0) a->scan.scan.fit_chunk_to_window(model.info());
    const Scanner scanner(model, a->sae, a->scan.scan);
    std::optional<DenseEncoder> dense;
    if (!a->dense_model.empty()) dense.emplace(DenseEncoder::load(a->dense_model, load.device));

    index::IndexWriterOptions w;
    w.out = a->out;
    w.mode = a->overwrite ? index::WriteMode::kOverwrite
             : a->append  ? index::WriteMode::kAppend
                          : index::WriteMode::kCreate;
    w.layers = scanner.layers();
    w.d_latent = static_cast<uint32_t>(scanner.d_latent());
    w.codec = a->codec;
    w.metadata = to_json(scanner.metadata());
    w.append_ignore_metadata_keys = path_metadata_keys();
    w.lexical.target_words = a->scan.passage_words;
    if (dense) {
      add_dense_metadata(w.metadata, *dense);
      w.dense_dim = static_cast<uint32_t>(dense->info().dim);
    }
    w.validate();
    if (launch.sharded()) {
      return run_shard(launch, a->shard, a->json, scanner, model.device().name, docs, w, w.mode);
    }

    index::IndexWriter writer(w);
    const uint32_t first_doc = writer.doc_base();
    ScanProgressBar bar("index");
    const ScanStats stats = scanner.scan(writer, docs, std::ref(bar));
    bar.finish();
    DenseStats dense_stats;
    if (dense) dense_stats = embed_passages(*dense, writer, first_doc, docs);
    const index::CommitStats commit = writer.commit();
    nlohmann::json summary = scan_summary(stats, commit);
    summary["index"] = a->out;
    summary["layers"] = scanner.layers();
    summary["device"] = model.device().name;
    if (dense) {
      std::error_code ec;
      const auto bytes =
          std::filesystem::file_size(commit.index_dir / commit.segment / index::kDenseFile, ec);
      summary["dense"] = {
          {"model", dense->info().name},    {"passages", dense_stats.texts},
          {"tokens", dense_stats.tokens},   {"truncated", dense_stats.truncated},
          {"batches", dense_stats.batches}, {"embed_s", dense_stats.seconds},
          {"file_bytes", ec ? 0 : bytes},
      };
    }
    if (a->json) {
      std::cout << summary.dump() << "\n";
    } else {
      const double total_s = stats.warmup_s + stats.seconds + commit.seconds;
      std::cout << "indexed " << stats.documents << " documents, " << stats.tokens << " tokens, "
                << summary["postings"].get<uint64_t>() << " postings, " << commit.file_bytes
                << " bytes in " << total_s << " s -> " << a->out << "\n";
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
