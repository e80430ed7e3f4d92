// Reading the documents to index: plain text files (one document each; a directory means all its
// regular files, sorted by path) or JSONL rows (one document per row, text in a chosen field).
// Free of LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace s3 {

// The longest document (bytes of text): token byte offsets within a document are 32-bit
// (docs/index-format.md).
inline constexpr uint64_t kMaxDocumentBytes = 0xFFFFFFFFull;

struct Document {
  std::string name;  // file path, or "path#row" / the row's name field for JSONL
  std::string text;  // exact bytes as read
};

struct DocumentSource {
  std::vector<std::filesystem::path> inputs;
  std::string format = "auto";  // auto (by extension: .jsonl/.ndjson are JSONL) | text | jsonl
  std::string doc_field = "text";
  std::string name_field;  // JSONL field naming each document (default: path#row)
  void validate() const;
};

// Throws s3::Error for missing inputs, unreadable files (not regular files, symbolic links that
// cannot be followed inside an input directory, documents over kMaxDocumentBytes), bad JSONL rows,
// a missing field, or when nothing non-empty was found.
std::vector<Document> read_documents(const DocumentSource& source);

}  // namespace s3
