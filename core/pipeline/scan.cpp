#include "core/pipeline/scan.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/base/error.h"
#include "core/pipeline/chunk_runner.h"
#include "core/pipeline/early_chunks.h"
#include "core/pipeline/index_metadata.h"
#include "core/pipeline/lexical_scan.h"
#include "core/pipeline/tapped_sae_torch.h"
#include "core/runtime/chunk_window.h"
#include "core/runtime/model_torch.h"
#include "core/runtime/torch_util.h"
#include "core/tokenizer/unicode.h"
#include "index/index_writer.h"
#include "sae/encoder.h"
#include "sae/weights.h"

namespace s3 {

void ScanOptions::validate() const {
  if (chunk < kMinChunk || chunk > kMaxChunk)
    throw UsageError("--chunk must be between " + std::to_string(kMinChunk) + " and " +
                     std::to_string(kMaxChunk) + " tokens");
  if (buffers < 1 || buffers > 64) throw UsageError("--buffers must be between 1 and 64");
  if (overlap < 0 || overlap >= chunk) throw UsageError("--chunk-overlap must be in [0, --chunk)");
  for (int l : layers)
    if (l < 0) throw UsageError("--layers: layer numbers are non-negative");
}

bool chunk_starts_with_bos(ChunkBos mode, const ModelInfo& info) {
  return mode == ChunkBos::kAlways || (mode == ChunkBos::kAuto && info.add_bos_token);
}

void ScanOptions::fit_chunk_to_window(const ModelInfo& info) {
  const bool bos = chunk_starts_with_bos(chunk_bos, info);
  const int fit = info.max_position_embeddings - (bos ? 1 : 0) - overlap;
  if (fit >= chunk) return;
  if (fit < kMinChunk || fit <= overlap)
    throw UsageError("the model's window of " + std::to_string(info.max_position_embeddings) +
                     " tokens leaves no room for a chunk of at least " + std::to_string(kMinChunk) +
                     " tokens after --chunk-overlap " + std::to_string(overlap) +
                     (bos ? " and BOS" : ""));
  chunk = fit;
}

struct Scanner::Impl {
  const Model& model;
  ScanOptions options;
  std::shared_ptr<const TappedSae> tapped;  // shared with the question side
  std::string tokenizer_fingerprint;
  mutable bool warmed_up = false;  // the warm-up chunk runs once per Scanner (the first scan)
};

Scanner::Scanner(const Model& model, const std::filesystem::path& sae_dir, ScanOptions options) {
  std::shared_ptr<const TappedSae> tapped = load_tapped_sae(model, sae_dir, options);
  impl_ = std::make_unique<Impl>(Impl{model, std::move(options), std::move(tapped),
                                      tokenizer_fingerprint(model.info().tokenizer_file())});
}

Scanner::~Scanner() = default;

const std::vector<int>& Scanner::layers() const {
  return impl_->tapped->layers;
}
int64_t Scanner::d_latent() const {
  return impl_->tapped->sae.info.d_latent;
}
const std::string& Scanner::sae_fingerprint() const {
  return impl_->tapped->sae.fingerprint;
}
std::shared_ptr<const TappedSae> Scanner::tapped_sae() const {
  return impl_->tapped;
}

IndexMetadata Scanner::metadata() const {
  const Impl& s = *impl_;
  IndexMetadata m;
  m.model_fingerprint = s.model.info().fingerprint;
  m.model_dir = s.model.info().dir.string();
  m.sae_fingerprint = s.tapped->sae.fingerprint;
  m.sae_dir = s.tapped->sae.dir.string();
  m.tokenizer_fingerprint = s.tokenizer_fingerprint;
  m.has_scan = true;
  m.scan = {.chunk = static_cast<uint32_t>(s.options.chunk),
            .overlap = static_cast<uint32_t>(s.options.overlap),
            .chunk_bos = s.tapped->chunk_bos,
            .rope = s.options.rope,
            .layers = s.tapped->layers,
            .k = s.tapped->sae.info.k,
            .d_latent = s.tapped->sae.info.d_latent,
            .head_mode = s.tapped->sae.info.head_mode};
  return m;
}

ScanStats Scanner::scan(index::IndexWriter& writer, std::span<const Document> documents,
                        const ScanProgress& progress) const {
  return scan(writer, documents, IndexShard(documents, 0, 1), progress);
}

namespace {

// Every document's tokens and their byte offsets.
struct Tokenized {
  const Document* doc;
  std::vector<int32_t> ids;
  std::vector<index::TokenOffset> offsets;
};
struct AllTokenized {
  std::vector<Tokenized> docs;
  uint64_t total = 0;
  double seconds = 0;
};

AllTokenized tokenize_all(const Tokenizer& tokenizer, std::span<const Document> documents) {
  const auto t0 = std::chrono::steady_clock::now();
  AllTokenized all;
  all.docs.reserve(documents.size());
  for (const Document& doc : documents) {
    Encoding enc = tokenizer.encode_with_offsets(doc.text);
    if (enc.ids.empty()) throw Error("document " + doc.name + " has no tokens");
    Tokenized& t = all.docs.emplace_back();
    t.doc = &doc;
    t.offsets.reserve(enc.offsets.size());
    for (auto [b, e] : enc.offsets)
      t.offsets.push_back({b, e});
    t.ids = std::move(enc.ids);
    all.total += t.ids.size();
  }
  all.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return all;
}

// The token range [begin, end) of one document that this rank scans.
struct Share {
  int64_t begin = 0, end = 0;
  bool keep = false;  // the document goes to this rank's writer
};

// Each document's share under `shard` (`first_doc`: the first document's input number), whole
// chunks of `chunk` tokens. A rank without any keeps the document holding its first byte, with no
// postings, so that its part is an index like the others (index_part.h).
std::vector<Share> plan_shares(const AllTokenized& all, const IndexShard& shard, size_t first_doc,
                               int64_t chunk) {
  std::vector<Share> shares(all.docs.size());
  bool any = false;
  for (size_t d = 0; d < all.docs.size(); ++d) {
    const auto n = static_cast<int64_t>(all.docs[d].ids.size());
    const IndexShard::Chunks c = shard.chunks(first_doc + d, all.docs[d].offsets, chunk);
    shares[d] = {std::min(c.first * chunk, n), std::min(c.end * chunk, n), c.first < c.end};
    any = any || shares[d].keep;
  }
  if (!any && !shares.empty()) shares.front().keep = true;
  return shares;
}

}  // namespace

ScanStats Scanner::scan(index::IndexWriter& writer, std::span<const Document> all_documents,
                        const IndexShard& shard, const ScanProgress& progress) const {
  const Impl& s = *impl_;
  // The documents this rank tokenizes (all of them in a single-process scan); d below counts from
  // the first.
  const size_t first_doc = shard.first_document();
  const std::span<const Document> documents =
      all_documents.subspan(first_doc, shard.end_document() - first_doc);
  require_chunk_fits_window(s.model.info(), s.options.chunk, s.options.overlap,
                            s.tapped->chunk_bos);
  ScanStats stats;
  const bool cuda = s.model.device().is_cuda();
  const int64_t chunk = s.options.chunk;
  const Tokenizer& tokenizer = s.model.tokenizer();
  ChunkRunner runner(*s.tapped, s.options, writer);

  // Warm-up: the first chunk of the first document of the first scan, once, unindexed; reported
  // apart so that the scan's rate is the steady one.
  const size_t window_bytes = static_cast<size_t>(chunk) * 8;  // ~2 chunks of tokens
  if (cuda && s.options.warmup && !s.warmed_up && !documents.empty()) {
    s.warmed_up = true;
    const auto t0 = std::chrono::steady_clock::now();
    runner.warm_up(tokenizer.encode(unicode::utf8_prefix(documents.front().text, window_bytes)));
    stats.warmup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  const auto start = std::chrono::steady_clock::now();
  reset_peak_device_memory(s.model.device());
  // Every document is tokenized up front on a helper thread (progress needs the total; tokenizing
  // is ~30x faster than the scan), while the device already runs the first chunks of the first
  // document (early_chunks.h; on the CPU the two share the cores).
  std::future<AllTokenized> tokenizing = std::async(
      std::launch::async, [&tokenizer, documents] { return tokenize_all(tokenizer, documents); });
  const uint64_t first_position = writer.token_end();
  EarlyChunks early;
  if (!documents.empty() && shard.starts_inside(first_doc))
    early = EarlyChunks::queue(runner, tokenizer, documents.front().text, chunk, s.options.buffers,
                               window_bytes, first_position);

  const auto wait_start = std::chrono::steady_clock::now();
  const AllTokenized all = tokenizing.get();
  stats.tokenize_s = all.seconds;
  stats.tokenize_wait_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
  const std::vector<Share> shares = plan_shares(all, shard, first_doc, chunk);
  uint64_t total = 0;
  for (const Share& share : shares)
    total += static_cast<uint64_t>(share.end - share.begin);
  if (progress) progress(0, total);

  uint64_t next_position = first_position;
  uint64_t done = 0;
  const auto chunk_done = [&](int64_t len) {
    ++stats.chunks;
    done += static_cast<uint64_t>(len);
    if (progress) progress(done, total);
  };
  bool first_kept = true;
  for (size_t d = 0; d < all.docs.size(); ++d) {
    const Tokenized& t = all.docs[d];
    const Share& share = shares[d];
    const auto n = static_cast<int64_t>(t.ids.size());
    // The early chunks belong to the first document, if its share starts at its first token.
    EarlyChunks early_here = d == 0 ? std::exchange(early, {}) : EarlyChunks{};
    if (!share.keep) {
      stats.early_chunks_redone += early_here.size();
      continue;  // dropping the early jobs returns their buffers
    }
    const uint64_t doc_begin = next_position;
    next_position += t.ids.size();
    if (next_position > index::kMaxTokens)
      throw Error("the index would exceed its limit of 2^32-2 tokens");
    runner.rethrow();
    writer.add_document(t.doc->name, t.doc->text, t.ids, t.offsets);
    const uint64_t input_doc = first_doc + d;
    if (first_kept) {
      stats.doc_begin = input_doc;
      stats.begin = {input_doc, static_cast<uint32_t>(share.begin)};
      first_kept = false;
    }
    stats.doc_end = input_doc + 1;
    stats.end = {input_doc, static_cast<uint32_t>(share.end)};

    const EarlyChunks::Claimed claimed =
        early_here.claim(t.ids, share.begin, share.end, runner, chunk_done);
    stats.early_chunks += claimed.used;
    stats.early_chunks_redone += claimed.redone;
    for (int64_t begin = claimed.end; begin < share.end; begin += chunk) {
      const int64_t len = std::min<int64_t>(chunk, n - begin);
      ChunkRunner::Jobs jobs = runner.run(t.ids, doc_begin, begin, len);
      runner.push(jobs);
      chunk_done(len);
    }
    ++stats.documents;
  }
  const auto drain_start = std::chrono::steady_clock::now();
  runner.finish();
  stats.drain_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - drain_start).count();
  stats.indexer_busy_s = runner.indexer_busy_s();
  stats.buffer_wait_s = runner.buffer_wait_s();
  stats.tokens = total;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats.peak_device_bytes = peak_device_memory(s.model.device());
  return stats;
}

}  // namespace s3
