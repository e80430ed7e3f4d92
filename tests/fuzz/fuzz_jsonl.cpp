// Fuzz target: the JSONL reader of `s3attn index --input rows.jsonl` (core/documents.*, library
// s3_documents): read_documents() over one .jsonl file.
//
// Input: byte 0, then the file's bytes. Byte 0 picks the --name-field (none, "name", "title").
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/base/error.h"
#include "core/pipeline/documents.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace {

using namespace s3::fuzz;

const fs::path& file_path() {
  static ScratchDir scratch;
  static const fs::path path = scratch.path() / "rows.jsonl";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  write_bytes(file_path(), std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  s3::DocumentSource source;
  source.inputs = {file_path()};
  static const char* const kNameFields[] = {"", "name", "title"};
  source.name_field = kNameFields[data[0] % 3];
  try {
    const std::vector<s3::Document> docs = s3::read_documents(source);
    fuzz_check(!docs.empty(), "read_documents() returned no document without an error");
    for (const s3::Document& d : docs) {
      fuzz_check(!d.text.empty(), "read_documents() returned an empty document");
      fuzz_check(d.text.size() < size, "a document longer than its file");
    }
  } catch (const s3::Error&) {
    // The documented refusal of a bad row.
  }
  return 0;
}
