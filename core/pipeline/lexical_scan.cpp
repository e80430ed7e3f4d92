#include "core/pipeline/lexical_scan.h"

#include <chrono>

#include <vector>

#include "core/base/error.h"
#include "core/base/file_hash.h"

namespace s3 {

std::string tokenizer_fingerprint(const std::filesystem::path& tokenizer_json) {
  return hex64(xxh3_64_file(tokenizer_json, "tokenizer file"));
}

IndexMetadata lexical_metadata(const ModelInfo& model) {
  IndexMetadata m;
  m.model_fingerprint = model.fingerprint;
  m.model_dir = model.dir.string();
  m.tokenizer_fingerprint = tokenizer_fingerprint(model.tokenizer_file());
  return m;
}

index::IndexWriterOptions lexical_writer_options(const std::filesystem::path& out,
                                                 const ModelInfo& model, uint32_t passage_words) {
  index::IndexWriterOptions w;
  w.out = out;
  w.content = index::IndexContent::kLexicalOnly;
  w.metadata = to_json(lexical_metadata(model));
  w.append_ignore_metadata_keys = path_metadata_keys();
  w.lexical.target_words = passage_words;
  return w;
}

ScanStats scan_lexical(const Tokenizer& tokenizer, index::IndexWriter& writer,
                       std::span<const Document> documents, const ScanProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  ScanStats stats;
  uint64_t total_bytes = 0, done_bytes = 0;
  for (const Document& doc : documents)
    total_bytes += doc.text.size();
  if (progress) progress(0, total_bytes);
  double tokenize_s = 0;
  for (const Document& doc : documents) {
    const auto t0 = std::chrono::steady_clock::now();
    // The scan's own call (Scanner::scan): the same ids and offsets, hence the same passages.
    const Encoding enc = tokenizer.encode_with_offsets(doc.text);
    tokenize_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (enc.ids.empty()) throw Error("document " + doc.name + " has no tokens");
    std::vector<index::TokenOffset> offsets;
    offsets.reserve(enc.offsets.size());
    for (auto [b, e] : enc.offsets)
      offsets.push_back({b, e});
    writer.add_document(doc.name, doc.text, enc.ids, offsets);
    ++stats.documents;
    stats.tokens += enc.ids.size();
    done_bytes += doc.text.size();
    if (progress) progress(done_bytes, total_bytes);
  }
  stats.doc_begin = 0;
  stats.doc_end = documents.size();
  stats.tokenize_s = tokenize_s;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace s3
