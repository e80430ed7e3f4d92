// The device half of a scan. Each chunk of tokens runs through the model up to the tapped layers,
// the SAE encodes its keys into one feature bitmap per layer, the bitmaps are copied to pinned host
// buffers, and one indexer thread per tapped layer adds them to the index writer. run() queues a
// chunk and returns its writer jobs without pushing them, so that a caller can hold a chunk back
// (early chunks, early_chunks.h) or drop it: dropped jobs return their buffers to the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace s3 {

struct ScanOptions;
struct TappedSae;
namespace index {
class IndexWriter;
}

class ChunkRunner {
 public:
  // One writer call for one tapped layer (its slot in TappedSae::layers).
  struct Job {
    size_t slot;
    std::function<void()> add;
  };
  using Jobs = std::vector<Job>;

  // Streams, the pinned buffer pool and the indexer threads for scans into `writer`.
  ChunkRunner(const TappedSae& tapped, const ScanOptions& options, index::IndexWriter& writer);
  ~ChunkRunner();
  ChunkRunner(const ChunkRunner&) = delete;
  ChunkRunner& operator=(const ChunkRunner&) = delete;

  // Runs the first chunk of `ids` and waits for it, indexing nothing: CUDA sets up its kernels,
  // cuBLAS and the allocator on first use, which a timed scan should not include.
  void warm_up(const std::vector<int32_t>& ids);
  // Queues chunk [begin, begin + len) of `ids`, a document whose first token has global position
  // `doc_begin`, on the device and its copies to the host; returns its jobs, not yet pushed.
  Jobs run(const std::vector<int32_t>& ids, uint64_t doc_begin, int64_t begin, int64_t len);
  // Hands jobs to their layers' indexer threads (rethrows an earlier indexer failure first).
  void push(Jobs& jobs);
  // Rethrows the first failure of an indexer thread, if any.
  void rethrow() const;
  // Waits until every pushed job ran and the device is idle; rethrows an indexer failure.
  void finish();

  double indexer_busy_s() const;  // the busiest indexer thread's time in writer calls
  double buffer_wait_s() const;   // time run() waited for a free pinned buffer

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace s3
