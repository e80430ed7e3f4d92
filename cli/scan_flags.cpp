#include "cli/scan_flags.h"

#include "cli/enum_option.h"

namespace s3::cli {

void add_scan_flags(CLI::App& app, ScanFlags& f) {
  const char* group = "Scan (docs/sae.md, docs/index-format.md)";
  ScanOptions& s = f.scan;
  app.add_option("--chunk", s.chunk,
                 "tokens per independent chunk (default: 4096, or less to fit the model's window)")
      ->group(group);
  app.add_option("--layers", s.layers, "tapped layers (default: every layer of the SAE)")
      ->delimiter(',')
      ->group(group);
  app.add_flag("--rope", s.rope, "index post-RoPE keys (ablation)")->group(group);
  app.add_option("--chunk-overlap", s.overlap,
                 "warm-up tokens before each chunk, run but not indexed")
      ->capture_default_str()
      ->group(group);
  add_enum_option(app, "--chunk-bos", s.chunk_bos, kChunkBosNames, "prepend BOS to each chunk")
      ->group(group);
  add_enum_option(app, "--sae-bitmap", s.sae_bitmap, sae::kBitmapModeNames,
                  "SAE feature bitmap on CUDA")
      ->group(group);
  app.add_flag("!--no-warmup", s.warmup, "skip the unindexed warm-up chunk on CUDA")->group(group);
  app.add_flag("!--no-sae-overlap", s.sae_overlap,
               "on CUDA, encode on the forward's stream instead of a second stream overlapping the "
               "next chunk")
      ->group(group);
  app.add_option("--passage-words", f.passage_words, "BM25 passage size in words")
      ->capture_default_str()
      ->group(group);
}

}  // namespace s3::cli
