// The lexical-only index build (`s3attn index` without --sae, `longbench --method bm25`): each
// document is tokenized exactly as Scanner::scan tokenizes it and added to an IndexWriter opened
// with IndexContent::kLexicalOnly. No model forward, no SAE, no device: only the tokenizer. The
// writer cuts the BM25 passages from the text and these tokens, so they, and the BM25 evidence, are
// those of an index the SAE scan builds from the same documents. Free of LibTorch.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "core/pipeline/documents.h"
#include "core/pipeline/scan.h"
#include "core/runtime/model_info.h"
#include "core/tokenizer/tokenizer.h"
#include "index/index_writer.h"

namespace s3 {

// XXH3-64 (16 hex digits) of a tokenizer.json: the index metadata's tokenizer_fingerprint.
std::string tokenizer_fingerprint(const std::filesystem::path& tokenizer_json);

// The metadata of a lexical-only index: the model whose tokenizer made the tokens (fingerprint,
// directory) and the tokenizer's fingerprint. No "scan" record: nothing was scanned in chunks.
IndexMetadata lexical_metadata(const ModelInfo& model);

// The writer options of a lexical-only index at `out` built with `model`'s tokenizer (mode, fsync
// and dense vectors are the caller's to set).
index::IndexWriterOptions lexical_writer_options(const std::filesystem::path& out,
                                                 const ModelInfo& model, uint32_t passage_words);

// Tokenizes the documents and adds them to `writer` (opened lexical-only). Fills documents,
// tokens, tokenize_s and seconds of the stats (chunks 0: no chunk runs through a model). Throws
// s3::Error for a document without tokens, as the scan does.
ScanStats scan_lexical(const Tokenizer& tokenizer, index::IndexWriter& writer,
                       std::span<const Document> documents, const ScanProgress& progress = {});

}  // namespace s3
