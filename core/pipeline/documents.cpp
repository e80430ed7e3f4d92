#include "core/pipeline/documents.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/base/error.h"
#include "core/base/file_read.h"

namespace s3 {
namespace fs = std::filesystem;

void DocumentSource::validate() const {
  if (inputs.empty()) throw UsageError("--input: give at least one file or directory");
  if (format != "auto" && format != "text" && format != "jsonl")
    throw UsageError("--format: '" + format + "' is not one of auto, text, jsonl");
  if (doc_field.empty()) throw UsageError("--doc-field must not be empty");
}

namespace {

bool is_jsonl(const fs::path& path, const std::string& format) {
  if (format != "auto") return format == "jsonl";
  const std::string ext = path.extension().string();
  return ext == ".jsonl" || ext == ".ndjson";
}

void read_jsonl(const fs::path& path, const DocumentSource& source, std::vector<Document>& out) {
  std::ifstream in = open_regular_file(path, "input file");
  std::string line;
  for (size_t row = 1; std::getline(in, line); ++row) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(path.string() + ":" + std::to_string(row) + ": not valid JSON");
    }
    auto field = j.is_object() ? j.find(source.doc_field) : j.end();
    if (field == j.end() || !field->is_string())
      throw Error(path.string() + ":" + std::to_string(row) + ": no string field '" +
                  source.doc_field + "' (choose one with --doc-field)");
    std::string name = path.string() + "#" + std::to_string(row);
    if (!source.name_field.empty()) {
      auto n = j.find(source.name_field);
      if (n == j.end())
        throw Error(path.string() + ":" + std::to_string(row) + ": no field '" + source.name_field +
                    "'");
      name = n->is_string() ? n->get<std::string>() : n->dump();
    }
    std::string text = field->get<std::string>();
    if (text.size() > kMaxDocumentBytes)
      throw Error(path.string() + ":" + std::to_string(row) + ": the document is " +
                  format_bytes(text.size()) + ", larger than the limit of " +
                  format_bytes(kMaxDocumentBytes));
    out.push_back({std::move(name), std::move(text)});
  }
  if (in.bad()) throw Error(path.string() + ": read error");
}

// The regular files under `dir`, sorted, hidden ones (".name") left out. Symbolic links are
// followed; one that cannot be (a loop, a link to nothing) is an error naming it, not a silent gap.
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec);
  auto listing_failed = [&] {
    throw Error("input " + dir.string() + ": cannot list the directory: " + ec.message());
  };
  if (ec) listing_failed();
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) listing_failed();
    const fs::path& path = it->path();
    if (path.filename().string().starts_with(".")) continue;
    const fs::file_status status = fs::status(path, ec);
    if (ec)
      throw Error("input " + path.string() + ": cannot follow it: " + ec.message() +
                  " (remove it, or give the files to index one by one)");
    if (fs::is_regular_file(status)) found.push_back(path);
  }
  if (ec) listing_failed();
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

std::vector<Document> read_documents(const DocumentSource& source) {
  source.validate();
  std::vector<fs::path> files;
  for (const fs::path& input : source.inputs) {
    std::error_code ec;
    const fs::file_status status = fs::status(input, ec);
    if (!fs::exists(status)) {
      if (ec && ec != std::errc::no_such_file_or_directory)
        throw Error("input " + input.string() + ": " + ec.message());
      throw Error("input " + input.string() + " does not exist");
    }
    if (fs::is_directory(status)) {
      const std::vector<fs::path> found = files_under(input);
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(input);
    }
  }
  std::vector<Document> docs;
  for (const fs::path& file : files) {
    if (is_jsonl(file, source.format)) {
      read_jsonl(file, source, docs);
    } else {
      docs.push_back({file.string(), read_regular_file(file, kMaxDocumentBytes, "input file")});
    }
  }
  std::erase_if(docs, [](const Document& d) { return d.text.empty(); });
  if (docs.empty()) throw Error("no documents with text in the given input");
  return docs;
}

}  // namespace s3
