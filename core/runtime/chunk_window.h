// The one check that a chunked run's forward passes fit the model's window, shared by the scan
// (`index`, `longbench`) and the SAE runs (`sae train`, `sae eval`), so every command words it
// alike.
#pragma once

#include "core/runtime/model_info.h"

namespace s3 {

// Every forward pass of a chunked run is [BOS] + warm-up context (`overlap` tokens) + chunk.
// Throws UsageError naming --chunk (and --chunk-overlap and BOS where they count) when that is
// longer than the model's window.
void require_chunk_fits_window(const ModelInfo& info, int chunk, int overlap, bool bos);

}  // namespace s3
