#include "core/pipeline/early_chunks.h"

#include <algorithm>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/unicode.h"

namespace s3 {

EarlyChunks EarlyChunks::queue(ChunkRunner& runner, const Tokenizer& tokenizer,
                               std::string_view text, int64_t chunk, int count, size_t window_bytes,
                               uint64_t doc_begin) {
  EarlyChunks early;
  early.chunk_ = chunk;
  size_t byte = 0;   // where the window starts in the text ...
  int64_t base = 0;  // ... the first byte of token `base`
  while (static_cast<int>(early.chunks_.size()) < count) {
    const std::string_view window = unicode::utf8_prefix(text.substr(byte), window_bytes);
    const Encoding enc = tokenizer.encode_with_offsets(window);
    const auto n = static_cast<int64_t>(enc.ids.size());
    const auto begin = static_cast<int64_t>(early.ids_.size());
    const int64_t skip = begin - base;  // window tokens before the chunk
    const bool whole = byte + window.size() == text.size();
    if (whole ? n <= skip : n < skip + chunk + kMargin) break;
    const int64_t len = std::min<int64_t>(chunk, n - skip);
    early.ids_.insert(early.ids_.end(), enc.ids.begin() + skip, enc.ids.begin() + skip + len);
    early.chunks_.push_back({begin, len, runner.run(early.ids_, doc_begin, begin, len)});
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
  return early;
}

EarlyChunks::Claimed EarlyChunks::claim(const std::vector<int32_t>& ids, int64_t begin, int64_t end,
                                        ChunkRunner& runner,
                                        const std::function<void(int64_t)>& on_chunk) {
  Claimed claimed{.end = begin};
  // The early tokens agree with the full tokenization up to `agree`; a chunk whose input lies
  // before that (and that has the regular chunk's length) computed exactly the regular chunk.
  const auto n = static_cast<int64_t>(ids.size());
  const auto common = std::min(ids_.size(), ids.size());
  const auto agree = static_cast<int64_t>(
      std::mismatch(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(common), ids.begin())
          .first -
      ids_.begin());
  for (Chunk& c : chunks_) {
    if (c.begin != claimed.end || c.begin + c.len > agree ||
        c.len != std::min<int64_t>(chunk_, n - c.begin) || c.begin + c.len > end) {
      ++claimed.redone;
      continue;
    }
    runner.push(c.jobs);
    ++claimed.used;
    claimed.end += c.len;
    on_chunk(c.len);
  }
  chunks_.clear();  // unpushed jobs return their buffers
  return claimed;
}

}  // namespace s3
