// Early chunks: the first chunks of a scan's first document, run from windows of its text tokenized
// on the spot while a helper thread tokenizes every document (which the scan needs for its
// progress total), so the device starts at once. A window starts at a token of the previous window
// shortly before the next chunk, preferably one that starts with whitespace (a likely pre-token
// boundary, where tokenizing can restart). Tokens near a window's cut can differ from the whole
// text's, so a chunk ends `kMargin` tokens before its window does, and its jobs are pushed only
// once the full tokenization is known to start with the same ids (a chunk past the first difference
// is dropped and redone). Their buffers stay leased until then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/pipeline/chunk_runner.h"

namespace s3 {

class Tokenizer;

class EarlyChunks {
 public:
  static constexpr int64_t kMargin = 64;   // tokens between a chunk's end and its window's
  static constexpr int64_t kBackoff = 32;  // how far before a chunk its window may start

  EarlyChunks() = default;  // none

  // Queues up to `count` chunks of `chunk` tokens of `text` (a document whose first token has
  // global position `doc_begin`) through `runner`; `window_bytes` bounds each window's text.
  static EarlyChunks queue(ChunkRunner& runner, const Tokenizer& tokenizer, std::string_view text,
                           int64_t chunk, int count, size_t window_bytes, uint64_t doc_begin);

  struct Claimed {
    int64_t end = 0;    // the first token the regular chunks start from
    size_t used = 0;    // early chunks pushed
    size_t redone = 0;  // early chunks dropped (their tokens are scanned again)
  };
  // Pushes, in order, the early chunks that computed exactly the regular chunks of the document
  // whose full tokenization is `ids`, for a share of it starting at `begin` and ending at `end`;
  // `on_chunk(len)` after each. Drops the others (their buffers return to the pool).
  Claimed claim(const std::vector<int32_t>& ids, int64_t begin, int64_t end, ChunkRunner& runner,
                const std::function<void(int64_t)>& on_chunk);

  size_t size() const { return chunks_.size(); }

 private:
  struct Chunk {
    int64_t begin, len;
    ChunkRunner::Jobs jobs;
  };
  int64_t chunk_ = 0;
  std::vector<int32_t> ids_;  // the early tokens, positions [0, size) of the document
  std::vector<Chunk> chunks_;
};

}  // namespace s3
