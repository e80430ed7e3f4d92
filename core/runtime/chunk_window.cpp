#include "core/runtime/chunk_window.h"

#include <cstdint>
#include <string>

#include "core/base/error.h"

namespace s3 {

void require_chunk_fits_window(const ModelInfo& info, int chunk, int overlap, bool bos) {
  if (int64_t{bos} + overlap + chunk <= info.max_position_embeddings) return;
  throw UsageError("--chunk " + std::to_string(chunk) +
                   (overlap ? " plus --chunk-overlap " + std::to_string(overlap) : "") +
                   (bos ? " plus BOS" : "") + " is more than the model's window of " +
                   std::to_string(info.max_position_embeddings) + " tokens");
}

}  // namespace s3
