#include "core/documents.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace s3 {
namespace fs = std::filesystem;

void DocumentSource::validate() const {
  if (inputs.empty()) throw UsageError("--input: give at least one file or directory");
  if (format != "auto" && format != "text" && format != "jsonl")
    throw UsageError("--format: '" + format + "' is not one of auto, text, jsonl");
  if (doc_field.empty()) throw UsageError("--doc-field must not be empty");
}

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool is_jsonl(const fs::path& path, const std::string& format) {
  if (format != "auto") return format == "jsonl";
  const std::string ext = path.extension().string();
  return ext == ".jsonl" || ext == ".ndjson";
}

void read_jsonl(const fs::path& path, const DocumentSource& source, std::vector<Document>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
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
      throw Error(path.string() + ":" + std::to_string(row) + ": no string field '" + source.doc_field +
                  "' (choose one with --doc-field)");
    std::string name = path.string() + "#" + std::to_string(row);
    if (!source.name_field.empty()) {
      auto n = j.find(source.name_field);
      if (n == j.end()) throw Error(path.string() + ":" + std::to_string(row) + ": no field '" + source.name_field + "'");
      name = n->is_string() ? n->get<std::string>() : n->dump();
    }
    out.push_back({std::move(name), field->get<std::string>()});
  }
}

}  // namespace

std::vector<Document> read_documents(const DocumentSource& source) {
  source.validate();
  std::vector<fs::path> files;
  for (const fs::path& input : source.inputs) {
    if (!fs::exists(input)) throw Error("input " + input.string() + " does not exist");
    if (fs::is_directory(input)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::recursive_directory_iterator(input)) {
        const std::string base = entry.path().filename().string();
        if (entry.is_regular_file() && !base.starts_with(".")) found.push_back(entry.path());
      }
      std::sort(found.begin(), found.end());
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
      docs.push_back({file.string(), read_file(file)});
    }
  }
  std::erase_if(docs, [](const Document& d) { return d.text.empty(); });
  if (docs.empty()) throw Error("no documents with text in the given input");
  return docs;
}

}  // namespace s3
