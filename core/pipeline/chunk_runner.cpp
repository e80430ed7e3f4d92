#include "core/pipeline/chunk_runner.h"

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "core/pipeline/scan.h"
#include "core/pipeline/tapped_sae_torch.h"
#include "core/runtime/model_torch.h"
#include "core/runtime/torch_util.h"
#include "index/index_writer.h"
#include "sae/encoder.h"
#include "sae/weights.h"

namespace s3 {
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

// Makes a stream current for its scope (no-op without one).
struct StreamScope {
  std::optional<c10::cuda::CUDAStreamGuard> guard;
  explicit StreamScope(const std::optional<c10::cuda::CUDAStream>& stream) {
    if (stream) guard.emplace(*stream);
  }
};

}  // namespace

struct ChunkRunner::Impl {
  const TappedSae& tapped;
  const ScanOptions& options;
  index::IndexWriter& writer;
  const bool cuda;
  const std::vector<int64_t> tap_layers;
  const int64_t heads;  // KV heads per token row of the SAE's input (1 when heads are concatenated)
  // Streams (ScanOptions::sae_overlap): the forward on a high-priority stream, the encoder and the
  // bitmap copies on a low-priority one that waits for its chunk's forward; the encoder's blocks
  // then fill the gaps of the next chunk's forward instead of queueing between two forwards.
  std::optional<c10::cuda::CUDAStream> forward_stream, encoder_stream;
  BufferPool pool;
  // One indexer thread per layer slot: the slots' posting lists are independent, and one thread
  // absorbs ~250M postings/s, slower than the device produces them at the paper's size.
  std::vector<std::unique_ptr<Indexer>> indexers;

  Impl(const TappedSae& t, const ScanOptions& o, index::IndexWriter& w)
      : tapped(t),
        options(o),
        writer(w),
        cuda(t.model.device().is_cuda()),
        tap_layers(t.layers.begin(), t.layers.end()),
        heads(t.sae.info.head_mode == sae::HeadMode::kPerHead ? t.model.info().n_kv_heads : 1),
        pool(static_cast<size_t>(o.buffers) * t.layers.size(),
             t.sae.info.d_latent * ((o.chunk + 63) / 64), cuda) {
    if (cuda && options.sae_overlap) {
      const auto index = to_torch_device(t.model.device()).index();
      forward_stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/true, index);
      encoder_stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
    }
    for (size_t slot = 0; slot < t.layers.size(); ++slot)
      indexers.push_back(std::make_unique<Indexer>());
  }

  // The model input of tokens [begin, begin + len) of `ids`: BOS if chunks get one, then the
  // warm-up context (up to `overlap` tokens before the chunk), then the chunk. Returns the input
  // and how many leading positions are not indexed.
  std::pair<std::vector<int32_t>, int64_t> chunk_input(const std::vector<int32_t>& ids,
                                                       int64_t begin, int64_t len) const {
    const int64_t warm = std::min<int64_t>(options.overlap, begin);
    std::vector<int32_t> chunk;
    chunk.reserve(static_cast<size_t>(warm + len + 1));
    if (tapped.chunk_bos) chunk.push_back(*tapped.model.info().bos_token_id);
    chunk.insert(chunk.end(), ids.begin() + (begin - warm), ids.begin() + begin + len);
    return {std::move(chunk), (tapped.chunk_bos ? 1 : 0) + warm};
  }

  // The device part of one chunk: tap on the forward's stream, then the SAE bitmap of every slot
  // on the current stream (the encoder's, when there is one: callers hold a StreamScope).
  std::vector<torch::Tensor> encode_chunk(const std::vector<int32_t>& input, int64_t skip) const {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> taps;
    {
      const StreamScope on_forward(forward_stream);
      taps = tap(tapped.model, ids_tensor(tapped.model, input), tap_layers, options.rope);
    }
    if (encoder_stream) {
      at::cuda::CUDAEvent forward_done;
      forward_done.record(*forward_stream);
      forward_done.block(*encoder_stream);
    }
    std::vector<torch::Tensor> bitmaps;
    for (size_t slot = 0; slot < tapped.layers.size(); ++slot) {
      const torch::Tensor keys = taps[slot].second[0].slice(0, skip);  // [len, Hkv, D]
      // The forward's stream allocated the keys: keep their memory until this stream used them.
      if (encoder_stream) keys.record_stream(*encoder_stream);
      const torch::Tensor rows = sae::sae_rows_from_keys(keys, tapped.sae.info.head_mode);
      bitmaps.push_back(tapped.encoders[slot].feature_bitmap(rows, heads));  // [F, words]
    }
    return bitmaps;
  }
};

ChunkRunner::ChunkRunner(const TappedSae& tapped, const ScanOptions& options,
                         index::IndexWriter& writer)
    : impl_(std::make_unique<Impl>(tapped, options, writer)) {}

ChunkRunner::~ChunkRunner() = default;

void ChunkRunner::warm_up(const std::vector<int32_t>& ids) {
  if (ids.empty()) return;
  torch::NoGradGuard no_grad;
  const int64_t len = std::min<int64_t>(impl_->options.chunk, static_cast<int64_t>(ids.size()));
  const auto [input, skip] = impl_->chunk_input(ids, 0, len);
  const StreamScope on_encoder(impl_->encoder_stream);
  impl_->encode_chunk(input, skip);
  synchronize(impl_->tapped.model.device());
}

ChunkRunner::Jobs ChunkRunner::run(const std::vector<int32_t>& ids, uint64_t doc_begin,
                                   int64_t begin, int64_t len) {
  torch::NoGradGuard no_grad;
  Impl& s = *impl_;
  // Warm-up context: the `overlap` tokens before the chunk run through the model too, but only
  // the chunk's own positions are indexed (keys of a sequence's first positions are atypical).
  const auto [input, skip] = s.chunk_input(ids, begin, len);
  const int64_t words = (len + 63) / 64;
  const int64_t d_latent = s.tapped.sae.info.d_latent;
  const auto global = static_cast<uint32_t>(doc_begin + begin);
  const StreamScope on_encoder(s.encoder_stream);  // the copies follow the bitmaps on that stream
  const std::vector<torch::Tensor> bitmaps = s.encode_chunk(input, skip);
  Jobs jobs;
  for (size_t slot = 0; slot < s.tapped.layers.size(); ++slot) {
    torch::Tensor host = s.pool.acquire();
    torch::Tensor view = host.narrow(0, 0, d_latent * words).view({d_latent, words});
    std::shared_ptr<at::cuda::CUDAEvent> ready;
    if (s.cuda) {
      view.copy_(bitmaps[slot], /*non_blocking=*/true);
      ready = std::make_shared<at::cuda::CUDAEvent>();
      ready->record(
          c10::cuda::getCurrentCUDAStream(to_torch_device(s.tapped.model.device()).index()));
    } else {
      view.copy_(bitmaps[slot]);
    }
    // The buffer goes back to the pool when the job is done with: run, or dropped unrun. A copy
    // still in flight into a dropped buffer is harmless: the buffer's next copy is queued after
    // it on the same stream, and its job waits for that one.
    BufferPool& pool = s.pool;
    std::shared_ptr<void> lease(nullptr, [&pool, host](void*) { pool.release(host); });
    index::IndexWriter& writer = s.writer;
    jobs.push_back({slot, [&writer, lease, view, ready, slot, global, len] {
                      if (ready) ready->synchronize();
                      writer.add_feature_bitmap(
                          static_cast<uint32_t>(slot), global, static_cast<uint32_t>(len),
                          reinterpret_cast<const uint64_t*>(view.data_ptr<int64_t>()));
                    }});
  }
  return jobs;
}

void ChunkRunner::push(Jobs& jobs) {
  for (Job& job : jobs)
    impl_->indexers[job.slot]->push(std::move(job.add));
  jobs.clear();
}

void ChunkRunner::rethrow() const {
  for (const auto& indexer : impl_->indexers)
    indexer->rethrow();
}

void ChunkRunner::finish() {
  for (const auto& indexer : impl_->indexers)
    indexer->drain();
  synchronize(impl_->tapped.model.device());
}

double ChunkRunner::indexer_busy_s() const {
  double busy = 0;
  for (const auto& indexer : impl_->indexers)
    busy = std::max(busy, indexer->busy_s());
  return busy;
}

double ChunkRunner::buffer_wait_s() const {
  return impl_->pool.wait_s();
}

}  // namespace s3
