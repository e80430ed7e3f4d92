#include "core/pipeline/scan.h"

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/base/error.h"
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

namespace {

// An indexer thread: runs writer jobs in order while the main thread keeps the device busy.
class Indexer {
 public:
  Indexer() : thread_([this] { loop(); }) {}
  ~Indexer() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void push(std::function<void()> job) {
    rethrow();
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  // Waits until every pushed job ran; rethrows the first job failure.
  void drain() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return (jobs_.empty() && !busy_) || error_; });
    lock.unlock();
    rethrow();
  }
  void rethrow() {
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }
  // Seconds spent running jobs; read after drain().
  double busy_s() const { return busy_s_; }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return !jobs_.empty() || closing_; });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
      }
      try {
        const auto t0 = std::chrono::steady_clock::now();
        if (!error_) job();
        busy_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } catch (...) {
        std::lock_guard lock(mutex_);
        error_ = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        busy_ = false;
      }
      cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool closing_ = false;
  double busy_s_ = 0;  // written by the indexer thread only
  std::exception_ptr error_;
  std::thread thread_;
};

// Pinned host buffers for device->host bitmap copies, recycled once the indexer consumed them.
class BufferPool {
 public:
  BufferPool(size_t count, int64_t elements, bool pinned) {
    auto options = torch::TensorOptions().dtype(torch::kLong).pinned_memory(pinned);
    for (size_t i = 0; i < count; ++i)
      free_.push_back(torch::empty({elements}, options));
  }
  torch::Tensor acquire() {
    std::unique_lock lock(mutex_);
    if (free_.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      cv_.wait(lock, [&] { return !free_.empty(); });
      wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    torch::Tensor t = std::move(free_.back());
    free_.pop_back();
    return t;
  }
  void release(torch::Tensor t) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(std::move(t));
    }
    cv_.notify_one();
  }
  double wait_s() const { return wait_s_; }  // time acquire() waited (the caller's thread)

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<torch::Tensor> free_;
  double wait_s_ = 0;
};

}  // namespace

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

ScanStats Scanner::scan(index::IndexWriter& writer, std::span<const Document> all_documents,
                        const IndexShard& shard, const ScanProgress& progress) const {
  const Impl& s = *impl_;
  // The documents this rank tokenizes (all of them in a single-process scan); d below counts from
  // the first.
  const size_t first_doc = shard.first_document();
  const std::span<const Document> documents =
      all_documents.subspan(first_doc, shard.end_document() - first_doc);
  const ModelInfo& info = s.model.info();
  require_chunk_fits_window(info, s.options.chunk, s.options.overlap, s.tapped->chunk_bos);
  torch::NoGradGuard no_grad;
  ScanStats stats;
  const bool cuda = s.model.device().is_cuda();
  const std::vector<int64_t> tap_layers(s.tapped->layers.begin(), s.tapped->layers.end());
  const int64_t heads =
      s.tapped->sae.info.head_mode == sae::HeadMode::kPerHead ? info.n_kv_heads : 1;

  // The model input of tokens [begin, begin + len) of `ids`: BOS if chunks get one, then the
  // warm-up context (up to `overlap` tokens before the chunk), then the chunk. Returns the input
  // and how many leading positions are not indexed.
  auto chunk_input = [&](const std::vector<int32_t>& ids, int64_t begin, int64_t len) {
    const int64_t warm = std::min<int64_t>(s.options.overlap, begin);
    std::vector<int32_t> chunk;
    chunk.reserve(warm + len + 1);
    if (s.tapped->chunk_bos) chunk.push_back(*info.bos_token_id);
    chunk.insert(chunk.end(), ids.begin() + (begin - warm), ids.begin() + begin + len);
    return std::pair{std::move(chunk), (s.tapped->chunk_bos ? 1 : 0) + warm};
  };
  // Streams (ScanOptions::sae_overlap): the forward on a high-priority stream, the encoder and the
  // bitmap copies on a low-priority one that waits for its chunk's forward; the encoder's blocks
  // then fill the gaps of the next chunk's forward instead of queueing between two forwards.
  std::optional<c10::cuda::CUDAStream> forward_stream, encoder_stream;
  if (cuda && s.options.sae_overlap) {
    const auto index = to_torch_device(s.model.device()).index();
    forward_stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/true, index);
    encoder_stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
  }
  // The device part of one chunk: tap on the forward's stream, then the SAE bitmap of every slot on
  // the caller's current stream (the encoder's, when there is one: callers hold an EncoderGuard).
  auto encode_chunk = [&](const std::vector<int32_t>& input, int64_t skip) {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> taps;
    {
      std::optional<c10::cuda::CUDAStreamGuard> guard;
      if (forward_stream) guard.emplace(*forward_stream);
      taps = tap(s.model, ids_tensor(s.model, input), tap_layers, s.options.rope);
    }
    if (encoder_stream) {
      at::cuda::CUDAEvent forward_done;
      forward_done.record(*forward_stream);
      forward_done.block(*encoder_stream);
    }
    std::vector<torch::Tensor> bitmaps;
    for (size_t slot = 0; slot < s.tapped->layers.size(); ++slot) {
      const torch::Tensor keys = taps[slot].second[0].slice(0, skip);  // [len, Hkv, D]
      // The forward's stream allocated the keys: keep their memory until this stream used them.
      if (encoder_stream) keys.record_stream(*encoder_stream);
      const torch::Tensor rows = sae::sae_rows_from_keys(keys, s.tapped->sae.info.head_mode);
      bitmaps.push_back(s.tapped->encoders[slot].feature_bitmap(rows, heads));  // [F, words]
    }
    return bitmaps;
  };
  // Makes the encoder's stream current for its scope (no-op with one stream).
  struct EncoderGuard {
    std::optional<c10::cuda::CUDAStreamGuard> guard;
    explicit EncoderGuard(const std::optional<c10::cuda::CUDAStream>& stream) {
      if (stream) guard.emplace(*stream);
    }
  };

  // Warm-up: the first chunk of the first document of the first scan, once, unindexed (CUDA sets up
  // kernels, cuBLAS and the allocator on first use; reported apart so the scan's rate is the steady
  // one).
  const size_t prefix_bytes = static_cast<size_t>(s.options.chunk) * 8;  // ~2 chunks of tokens
  if (cuda && s.options.warmup && !s.warmed_up && !documents.empty()) {
    s.warmed_up = true;
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids =
        s.model.tokenizer().encode(unicode::utf8_prefix(documents.front().text, prefix_bytes));
    if (!ids.empty()) {
      const int64_t len = std::min<int64_t>(s.options.chunk, static_cast<int64_t>(ids.size()));
      const auto [input, skip] = chunk_input(ids, 0, len);
      const EncoderGuard on_encoder(encoder_stream);
      encode_chunk(input, skip);
      synchronize(s.model.device());
    }
    stats.warmup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  const auto start = std::chrono::steady_clock::now();
  reset_peak_device_memory(s.model.device());

  // Every document is tokenized up front on a helper thread (progress needs the total; tokenizing
  // is ~30x faster than the scan), while the device already runs the first chunks of the first
  // document from windows of its text (below; on the CPU the two share the cores).
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
  std::future<AllTokenized> tokenizing = std::async(std::launch::async, [&s, documents] {
    const auto t0 = std::chrono::steady_clock::now();
    AllTokenized all;
    all.docs.reserve(documents.size());
    for (const Document& doc : documents) {
      Encoding enc = s.model.tokenizer().encode_with_offsets(doc.text);
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
  });

  const int64_t words_max = (s.options.chunk + 63) / 64;
  const int64_t d_latent = s.tapped->sae.info.d_latent;
  BufferPool pool(static_cast<size_t>(s.options.buffers) * s.tapped->layers.size(),
                  d_latent * words_max, cuda);
  // One indexer thread per layer slot: the slots' posting lists are independent, and one thread
  // absorbs ~250M postings/s, slower than the device produces them at the paper's size.
  std::vector<std::unique_ptr<Indexer>> indexers;
  for (size_t slot = 0; slot < s.tapped->layers.size(); ++slot)
    indexers.push_back(std::make_unique<Indexer>());
  using Job = std::pair<size_t, std::function<void()>>;  // (layer slot, writer call)

  // Queues chunk [begin, begin + len) of `ids` (document tokens from global position doc_begin) on
  // the device, with one copy to a pinned buffer and one writer job per layer slot.
  auto run_chunk = [&](const std::vector<int32_t>& ids, uint64_t doc_begin, int64_t begin,
                       int64_t len) {
    // Warm-up context: the `overlap` tokens before the chunk run through the model too, but only
    // the chunk's own positions are indexed (keys of a sequence's first positions are atypical).
    const auto [input, skip] = chunk_input(ids, begin, len);
    const int64_t words = (len + 63) / 64;
    const auto global = static_cast<uint32_t>(doc_begin + begin);
    const EncoderGuard on_encoder(encoder_stream);  // the copies follow the bitmaps on that stream
    const std::vector<torch::Tensor> bitmaps = encode_chunk(input, skip);
    std::vector<Job> jobs;
    for (size_t slot = 0; slot < s.tapped->layers.size(); ++slot) {
      torch::Tensor host = pool.acquire();
      torch::Tensor view = host.narrow(0, 0, d_latent * words).view({d_latent, words});
      std::shared_ptr<at::cuda::CUDAEvent> ready;
      if (cuda) {
        view.copy_(bitmaps[slot], /*non_blocking=*/true);
        ready = std::make_shared<at::cuda::CUDAEvent>();
        ready->record(c10::cuda::getCurrentCUDAStream(to_torch_device(s.model.device()).index()));
      } else {
        view.copy_(bitmaps[slot]);
      }
      // The buffer goes back to the pool when the job is done with: run, or dropped unrun. A copy
      // still in flight into a dropped buffer is harmless: the buffer's next copy is queued after
      // it on the same stream, and its job waits for that one.
      std::shared_ptr<void> lease(nullptr, [&pool, host](void*) { pool.release(host); });
      jobs.emplace_back(slot, [&writer, lease, view, ready, slot, global, len] {
        if (ready) ready->synchronize();
        writer.add_feature_bitmap(static_cast<uint32_t>(slot), global, static_cast<uint32_t>(len),
                                  reinterpret_cast<const uint64_t*>(view.data_ptr<int64_t>()));
      });
    }
    return jobs;
  };
  auto push = [&](std::vector<Job>& jobs) {
    for (auto& [slot, job] : jobs)
      indexers[slot]->push(std::move(job));
  };

  // Early chunks: the first `buffers` chunks of the first document from windows of its text
  // tokenized here, queued while the helper thread tokenizes everything. A window starts at a token
  // of the previous window shortly before the next chunk, preferably one that starts with
  // whitespace (a likely pre-token boundary, where tokenizing can restart). Tokens near a window's
  // cut can differ from the whole text's, so a chunk ends `kMargin` tokens before its window does,
  // and its jobs are pushed only once the full tokenization is known to start with the same ids (a
  // chunk past the first difference is dropped and redone). Their buffers stay leased until then.
  constexpr int64_t kMargin = 64;
  constexpr int64_t kBackoff = 32;  // how far before a chunk its window may start
  struct EarlyChunk {
    int64_t begin, len;
    std::vector<Job> jobs;
  };
  std::vector<int32_t> early_ids;  // the early tokens, global positions [0, size)
  std::vector<EarlyChunk> early;
  const uint64_t first_position = writer.token_end();
  if (!documents.empty() && shard.starts_inside(first_doc)) {
    const std::string_view text = documents.front().text;
    size_t byte = 0;   // where the window starts in the text ...
    int64_t base = 0;  // ... the first byte of global token `base`
    while (static_cast<int>(early.size()) < s.options.buffers) {
      const std::string_view window = unicode::utf8_prefix(text.substr(byte), prefix_bytes);
      const Encoding enc = s.model.tokenizer().encode_with_offsets(window);
      const auto n = static_cast<int64_t>(enc.ids.size());
      const auto begin = static_cast<int64_t>(early_ids.size());
      const int64_t skip = begin - base;  // window tokens before the chunk
      const bool whole = byte + window.size() == text.size();
      if (whole ? n <= skip : n < skip + s.options.chunk + kMargin) break;
      const int64_t len = std::min<int64_t>(s.options.chunk, n - skip);
      early_ids.insert(early_ids.end(), enc.ids.begin() + skip, enc.ids.begin() + skip + len);
      early.push_back({begin, len, run_chunk(early_ids, first_position, begin, len)});
      const int64_t next = skip + len;  // the next chunk's first token, in this window
      if (next == n) break;             // the document's end
      int64_t pick = next;
      for (int64_t i = next; i > std::max(skip, next - kBackoff); --i) {
        const uint32_t at = enc.offsets[static_cast<size_t>(i)].first;
        const char c = window[at];
        if (at > enc.offsets[static_cast<size_t>(i - 1)].first &&
            (c == ' ' || c == '\n' || c == '\t')) {
          pick = i;
          break;
        }
      }
      byte += enc.offsets[static_cast<size_t>(pick)].first;
      base += pick;
    }
  }

  const auto wait_start = std::chrono::steady_clock::now();
  const AllTokenized all = tokenizing.get();
  stats.tokenize_s = all.seconds;
  stats.tokenize_wait_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
  // The chunks of each document this rank scans. A rank without any keeps the document holding its
  // first byte, with no postings, so that its part is an index like the others (index_part.h).
  const int64_t chunk = s.options.chunk;
  struct Share {
    int64_t begin = 0, end = 0;  // token range [begin, end) of the document to scan
    bool keep = false;
  };
  std::vector<Share> shares(all.docs.size());
  uint64_t total = 0;
  bool any = false;
  for (size_t d = 0; d < all.docs.size(); ++d) {
    const auto n = static_cast<int64_t>(all.docs[d].ids.size());
    const IndexShard::Chunks c = shard.chunks(first_doc + d, all.docs[d].offsets, chunk);
    shares[d] = {std::min(c.first * chunk, n), std::min(c.end * chunk, n), c.first < c.end};
    total += static_cast<uint64_t>(shares[d].end - shares[d].begin);
    any = any || shares[d].keep;
  }
  if (!any) shares.front().keep = true;
  if (progress) progress(0, total);

  uint64_t next_position = first_position;
  uint64_t done = 0;
  bool first_kept = true;
  for (size_t d = 0; d < all.docs.size(); ++d) {
    const Tokenized& t = all.docs[d];
    const Share& share = shares[d];
    const int64_t n = static_cast<int64_t>(t.ids.size());
    // The early chunks belong to the first document, if its share starts at its first token.
    std::vector<EarlyChunk> early_here;
    if (d == 0) early_here = std::move(early);
    early.clear();
    if (!share.keep) {
      stats.early_chunks_redone += early_here.size();
      continue;  // dropping the early jobs returns their buffers
    }
    const uint64_t doc_begin = next_position;
    next_position += t.ids.size();
    if (next_position > index::kMaxTokens)
      throw Error("the index would exceed its limit of 2^32-2 tokens");
    for (const auto& indexer : indexers)
      indexer->rethrow();
    writer.add_document(t.doc->name, t.doc->text, t.ids, t.offsets);
    const uint64_t input_doc = first_doc + d;
    if (first_kept) {
      stats.doc_begin = input_doc;
      stats.begin = {input_doc, static_cast<uint32_t>(share.begin)};
      first_kept = false;
    }
    stats.doc_end = input_doc + 1;
    stats.end = {input_doc, static_cast<uint32_t>(share.end)};

    int64_t begin = share.begin;
    if (!early_here.empty()) {
      // The early tokens agree with the full tokenization up to `agree`; a chunk whose input lies
      // before that (and that has the regular chunk's length) computed exactly the regular chunk.
      const auto common = std::min(early_ids.size(), t.ids.size());
      const auto agree = static_cast<int64_t>(
          std::mismatch(early_ids.begin(), early_ids.begin() + static_cast<std::ptrdiff_t>(common),
                        t.ids.begin())
              .first -
          early_ids.begin());
      for (EarlyChunk& early_chunk : early_here) {
        if (early_chunk.begin != begin || early_chunk.begin + early_chunk.len > agree ||
            early_chunk.len != std::min<int64_t>(chunk, n - early_chunk.begin) ||
            early_chunk.begin + early_chunk.len > share.end) {
          ++stats.early_chunks_redone;
          continue;
        }
        push(early_chunk.jobs);
        ++stats.early_chunks;
        begin += early_chunk.len;
        done += static_cast<uint64_t>(early_chunk.len);
        ++stats.chunks;
        if (progress) progress(done, total);
      }
      early_here.clear();  // unpushed jobs return their buffers
    }
    for (; begin < share.end; begin += chunk) {
      const int64_t len = std::min<int64_t>(chunk, n - begin);
      std::vector<Job> jobs = run_chunk(t.ids, doc_begin, begin, len);
      push(jobs);
      ++stats.chunks;
      done += static_cast<uint64_t>(len);
      if (progress) progress(done, total);
    }
    ++stats.documents;
  }
  const auto drain_start = std::chrono::steady_clock::now();
  for (const auto& indexer : indexers)
    indexer->drain();
  synchronize(s.model.device());
  stats.drain_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - drain_start).count();
  for (const auto& indexer : indexers)
    stats.indexer_busy_s = std::max(stats.indexer_busy_s, indexer->busy_s());
  stats.buffer_wait_s = pool.wait_s();
  stats.tokens = total;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats.peak_device_bytes = peak_device_memory(s.model.device());
  return stats;
}

}  // namespace s3
