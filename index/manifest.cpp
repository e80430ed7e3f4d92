#include "index/manifest.h"

#include <optional>
#include <set>
#include <system_error>
#include <type_traits>

#include "core/base/error.h"
#include "core/base/file_read.h"
#include "core/base/fs_util.h"
#include "core/base/json_fields.h"
#include "index/checksum.h"

namespace s3::index {

namespace fs = std::filesystem;
using nlohmann::json;

uint32_t Manifest::n_docs() const {
  return segments.empty() ? 0 : segments.back().doc_base + segments.back().n_docs;
}
uint32_t Manifest::n_tokens() const {
  return segments.empty() ? 0 : segments.back().token_base + segments.back().n_tokens;
}
uint32_t Manifest::n_passages() const {
  return segments.empty() ? 0 : segments.back().passage_base + segments.back().n_passages;
}

json Manifest::to_json() const {
  json j;
  j["format"] = kFormatName;
  j["format_version"] = format_version;
  j["created_by"] = created_by;
  if (content == IndexContent::kLexicalOnly) j["content"] = kLexicalOnlyContent;
  j["layers"] = layers;
  j["d_latent"] = d_latent;
  j["codec"] = {{"name", codec}, {"id", codec_id}};
  j["lexical"] = {{"target_words", lexical.target_words},
                  {"language", lexical.language},
                  {"analyzer_version", analyzer_version}};
  j["metadata"] = metadata;
  if (dense) j["dense"] = {{"dim", dense->dim}, {"dtype", dense->dtype}};
  json segs = json::array();
  std::vector<uint64_t> postings(layers.size(), 0), bytes(layers.size(), 0);
  for (const SegmentEntry& s : segments) {
    json files = json::object();
    for (const auto& [name, d] : s.files) {
      files[name] = {{"bytes", d.bytes}, {"xxh3_64", checksum_hex(d.xxh3)}};
    }
    segs.push_back({{"dir", s.dir},
                    {"doc_base", s.doc_base},
                    {"n_docs", s.n_docs},
                    {"token_base", s.token_base},
                    {"n_tokens", s.n_tokens},
                    {"passage_base", s.passage_base},
                    {"n_passages", s.n_passages},
                    {"postings", s.postings},
                    {"postings_bytes", s.postings_bytes},
                    {"files", files}});
    for (size_t l = 0; l < layers.size() && l < s.postings.size(); ++l) {
      postings[l] += s.postings[l];
      bytes[l] += s.postings_bytes[l];
    }
  }
  j["segments"] = segs;
  j["totals"] = {{"docs", n_docs()},
                 {"tokens", n_tokens()},
                 {"passages", n_passages()},
                 {"postings", postings},
                 {"postings_bytes", bytes}};
  j["checksum"] = checksum_hex(xxh3_64(j.dump()));
  return j;
}

namespace {

// A field of `j`. Integers must be JSON integers that fit T (nlohmann would read 2^40 documents as
// 0 in a uint32_t, and 3.5 as 3), lists of integers likewise.
template <class T>
T get(const json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end()) throw DataCorruption(path, std::string("missing field '") + key + "'");
  if constexpr (std::is_integral_v<T>) {
    if (const std::optional<T> v = json_integer<T>(*it)) return *v;
    throw DataCorruption(
        path, std::string("field '") + key + "' is not an integer in " + range_text<T>());
  } else if constexpr (std::is_same_v<T, std::vector<int>> ||
                       std::is_same_v<T, std::vector<uint64_t>>) {
    using E = typename T::value_type;
    if (const std::optional<T> v = json_integers<E>(*it)) return *v;
    throw DataCorruption(
        path, std::string("field '") + key + "' is not a list of integers in " + range_text<E>());
  } else {
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      throw DataCorruption(path, std::string("field '") + key + "' has the wrong type");
    }
  }
}

}  // namespace

Manifest Manifest::from_json(const json& j_in, const std::string& path) {
  if (!j_in.is_object()) throw DataCorruption(path, "not a JSON object");
  const auto format = j_in.find("format");
  if (format == j_in.end() || !format->is_string() || *format != kFormatName) {
    throw DataCorruption(
        path, "not an s3attn index manifest (format is not '" + std::string(kFormatName) + "')");
  }
  Manifest m;
  m.format_version = get<uint32_t>(j_in, "format_version", path);
  if (m.format_version != kFormatVersion) {
    throw DataCorruption(path,
                         "index format version " + std::to_string(m.format_version) +
                             " is not supported by this build (it reads version " +
                             std::to_string(kFormatVersion) +
                             "); rebuild the index with --overwrite or use a matching s3attn");
  }
  json j = j_in;
  const std::string stored = get<std::string>(j, "checksum", path);
  j.erase("checksum");
  if (checksum_hex(xxh3_64(j.dump())) != stored) {
    throw DataCorruption(path,
                         "checksum mismatch: the manifest was edited or corrupted; rebuild "
                         "the index with --overwrite");
  }
  m.created_by = get<std::string>(j, "created_by", path);
  if (auto c = j.find("content"); c != j.end()) {
    // Only the lexical-only value is ever written: anything else is a foreign or damaged manifest.
    if (!c->is_string() || *c != kLexicalOnlyContent)
      throw DataCorruption(path, "field 'content' is " + c->dump() + ", not \"" +
                                     kLexicalOnlyContent + "\" (the only value this build knows)");
    m.content = IndexContent::kLexicalOnly;
  }
  m.layers = get<std::vector<int>>(j, "layers", path);
  m.d_latent = get<uint32_t>(j, "d_latent", path);
  const json codec = get<json>(j, "codec", path);
  m.codec = get<std::string>(codec, "name", path);
  m.codec_id = get<uint32_t>(codec, "id", path);
  const json lex = get<json>(j, "lexical", path);
  m.lexical.target_words = get<uint32_t>(lex, "target_words", path);
  m.lexical.language = get<std::string>(lex, "language", path);
  m.analyzer_version = get<uint32_t>(lex, "analyzer_version", path);
  m.metadata = get<json>(j, "metadata", path);
  if (auto d = j.find("dense"); d != j.end()) {
    DenseInfo info;
    info.dim = get<uint32_t>(*d, "dim", path);
    info.dtype = get<std::string>(*d, "dtype", path);
    if (info.dim == 0 || info.dim > 65536) throw DataCorruption(path, "dense: dim out of range");
    if (info.dtype != "float16")
      throw DataCorruption(
          path, "dense: dtype '" + info.dtype + "' is unknown to this build (it reads float16)");
    m.dense = info;
  }
  const json segments = get<json>(j, "segments", path);
  if (!segments.is_array()) throw DataCorruption(path, "field 'segments' is not an array");
  for (const json& s : segments) {
    SegmentEntry e;
    e.dir = get<std::string>(s, "dir", path);
    e.doc_base = get<uint32_t>(s, "doc_base", path);
    e.n_docs = get<uint32_t>(s, "n_docs", path);
    e.token_base = get<uint32_t>(s, "token_base", path);
    e.n_tokens = get<uint32_t>(s, "n_tokens", path);
    e.passage_base = get<uint32_t>(s, "passage_base", path);
    e.n_passages = get<uint32_t>(s, "n_passages", path);
    e.postings = get<std::vector<uint64_t>>(s, "postings", path);
    e.postings_bytes = get<std::vector<uint64_t>>(s, "postings_bytes", path);
    const json files = get<json>(s, "files", path);
    if (!files.is_object()) throw DataCorruption(path, "field 'files' is not an object");
    for (const auto& [name, f] : files.items()) {
      auto sum = parse_checksum_hex(get<std::string>(f, "xxh3_64", path));
      if (!sum) throw DataCorruption(path, "bad checksum string for " + e.dir + "/" + name);
      e.files[name] = FileDigest{get<uint64_t>(f, "bytes", path), *sum};
    }
    m.segments.push_back(std::move(e));
  }
  // Structural consistency.
  const bool lexical_only = m.content == IndexContent::kLexicalOnly;
  if (lexical_only) {
    // Zero layers only with the explicit marker, so a manifest that lost its layers is not read as
    // a lexical-only index.
    if (!m.layers.empty() || m.d_latent != 0)
      throw DataCorruption(path, "a lexical-only index (content \"" +
                                     std::string(kLexicalOnlyContent) +
                                     "\") lists SAE layers or a d_latent; it has neither");
  } else if (m.layers.empty()) {
    throw DataCorruption(path, "no layers");
  }
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (m.layers[i] < 0)
      throw DataCorruption(path, "layer " + std::to_string(m.layers[i]) + " is negative");
    for (size_t k = 0; k < i; ++k)
      if (m.layers[k] == m.layers[i])
        throw DataCorruption(path, "layer " + std::to_string(m.layers[i]) + " is listed twice");
  }
  if (!lexical_only && m.d_latent == 0) throw DataCorruption(path, "d_latent is 0");
  if (m.segments.empty()) throw DataCorruption(path, "no segments");
  uint64_t docs = 0, tokens = 0, passages = 0;  // 64 bits: a sum of 32-bit counts must not wrap
  std::set<std::string> dirs;
  for (const SegmentEntry& s : m.segments) {
    if (s.doc_base != docs || s.token_base != tokens || s.passage_base != passages) {
      throw DataCorruption(path, "segment " + s.dir + " bases do not follow the previous segment");
    }
    if (s.postings.size() != m.layers.size() || s.postings_bytes.size() != m.layers.size()) {
      throw DataCorruption(path, "segment " + s.dir + " does not list every layer");
    }
    if (s.dir.empty() || s.dir == "." || s.dir.find('/') != std::string::npos ||
        s.dir.find("..") != std::string::npos) {
      throw DataCorruption(path, "segment directory name '" + s.dir + "' is not a plain name");
    }
    if (!dirs.insert(s.dir).second)
      throw DataCorruption(path, "segment " + s.dir + " is listed twice");
    if (lexical_only) {
      for (const auto& [name, digest] : s.files)
        if (name.starts_with("postings-"))
          throw DataCorruption(path, "segment " + s.dir + " lists " + name +
                                         " but the index is lexical-only (built without an SAE)");
    }
    docs += s.n_docs;
    tokens += s.n_tokens;
    passages += s.n_passages;
    if (tokens > kMaxTokens) throw DataCorruption(path, "token count overflow");
    if (docs >= UINT32_MAX || passages >= UINT32_MAX)
      throw DataCorruption(path, "document or passage count overflow");
  }
  return m;
}

Manifest Manifest::load(const fs::path& dir) {
  const fs::path p = dir / kManifestFile;
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    if (!fs::exists(dir, ec)) throw Error("index directory " + dir.string() + " does not exist");
    throw DataCorruption(p.string(),
                         "missing: " + dir.string() +
                             " is not a complete s3attn index; rebuild it with --overwrite");
  }
  std::string text;
  try {
    text = read_regular_file(p, kMaxManifestBytes, "manifest");
  } catch (const FileError& e) {
    throw DataCorruption(p.string(), e.reason() + "; rebuild the index with --overwrite");
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw DataCorruption(p.string(),
                         std::string("not valid JSON (truncated or edited?): ") + e.what());
  }
  return from_json(j, p.string());
}

void Manifest::save(const fs::path& dir, bool fsync) const {
  write_file_atomic(dir / kManifestFile, to_json().dump(2) + "\n", fsync);
}

}  // namespace s3::index
