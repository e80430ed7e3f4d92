// The scan knobs of `s3attn index` (how documents are cut into chunks and which keys are encoded),
// declared once for every command that indexes: index, and longbench (each sample's context).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>

#include "core/pipeline/scan.h"

namespace s3::cli {

struct ScanFlags {
  ScanOptions scan;
  uint32_t passage_words = 100;  // BM25 passage size in words
};

void add_scan_flags(CLI::App& app, ScanFlags& flags);

}  // namespace s3::cli
