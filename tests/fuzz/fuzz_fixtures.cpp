#include "tests/fuzz/fuzz_fixtures.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "sae/safetensors.h"
#include "tests/index/test_util.h"

namespace s3::fuzz {

using nlohmann::json;

void fuzz_check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

ScratchDir::ScratchDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/s3fuzz-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = buf.data();
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

void write_fixture_index(const fs::path& dir, int variant) {
  using namespace s3::index;
  using namespace s3::index::test;
  std::mt19937_64 rng(1000 + static_cast<uint64_t>(variant));
  const int segments = variant == 0 ? 1 : 2;
  const int docs_per_segment = variant == 0 ? 3 : 2;
  for (int seg = 0; seg < segments; ++seg) {
    IndexWriterOptions o = small_options(dir, seg == 0 ? WriteMode::kCreate : WriteMode::kAppend);
    o.layers = {2, 7};
    o.d_latent = 24;
    o.codec = variant == 0 ? "varint-delta" : "streamvbyte-delta";
    o.lexical.target_words = 12;
    o.commit_threads = 1;
    Reference ref(o.layers.size(), o.d_latent);
    IndexWriter w(o);
    for (int d = 0; d < docs_per_segment; ++d) {
      TestDoc doc = random_doc(rng, "doc-" + std::to_string(seg) + "-" + std::to_string(d),
                               1 + static_cast<int>(rng() % 3));
      feed_doc(w, ref, doc, rng, o.d_latent, 3);
    }
    w.commit();
  }
}

std::vector<std::pair<std::string, std::string>> index_files(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != ".lock")
      out.emplace_back(fs::relative(e.path(), dir).string(), read_bytes(e.path()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// Every term the fixtures' documents hold, analyzed, and a few that no document holds.
const std::vector<std::string>& probe_terms() {
  static const std::vector<std::string> terms = {
      "model",  "read",   "long",   "document", "run",   "index", "featur", "key",
      "queri",  "spars",  "écol",   "über",     "naïv",  "data",  "token",  "retriev",
      "passag", "bm25",   "3.14",   "don't",    "東",    "京",    "日本語", "ελλαδα",
      "test",   "writer", "reader", "segment",  "codec", "the",   "",       "zzzz"};
  return terms;
}

void walk_postings(const s3::index::IndexReader& r) {
  const uint32_t n_tokens = r.n_tokens();
  std::vector<uint32_t> list;
  std::vector<float> acc(n_tokens + 1, 0.0f);
  for (uint32_t slot = 0; slot < r.layers().size(); ++slot) {
    uint64_t sum = 0;
    for (uint32_t f = 0; f < r.d_latent(); ++f) {
      try {
        r.postings(slot, f, list);
        fuzz_check(list.size() == r.df(slot, f), "postings() length differs from df()");
        for (size_t i = 0; i < list.size(); ++i) {
          fuzz_check(list[i] < n_tokens, "posting position outside the index");
          fuzz_check(i == 0 || list[i - 1] < list[i], "posting list not strictly increasing");
        }
        sum += list.size();
        // The scoring path over the whole index and over its second half.
        r.add_postings(slot, f, 0, n_tokens, 1.0f, acc.data());
        r.add_postings(slot, f, n_tokens / 2, n_tokens, 1.0f, acc.data());
      } catch (const s3::Error&) {
        // A list that does not decode: the documented lazy failure.
      }
    }
    fuzz_check(sum <= r.totals(slot).postings, "more postings than the layer's total");
  }
}

void walk_lexical(const s3::index::IndexReader& r) {
  const auto& lex = r.lexical();
  for (uint32_t p = 0; p < lex.n_passages(); ++p) {
    const s3::index::Passage ps = lex.passage(p);
    fuzz_check(ps.doc < r.n_documents(), "passage of a document outside the index");
    const s3::index::DocumentView d = r.document(ps.doc);
    fuzz_check(ps.byte_begin <= ps.byte_end && ps.byte_end <= d.text.size(),
               "passage byte range outside its document");
    fuzz_check(ps.token_begin <= ps.token_end && ps.token_end <= r.n_tokens(),
               "passage token range outside the index");
  }
  (void)lex.avg_length();
  (void)lex.vocabulary_size();
  std::vector<uint32_t> passages, tfs;
  for (const std::string& t : probe_terms()) {
    const uint32_t df = lex.doc_freq(t);
    lex.term_postings(t, passages, tfs);
    fuzz_check(passages.size() == df && tfs.size() == df, "term postings differ from doc_freq");
    for (uint32_t p : passages)
      fuzz_check(p < lex.n_passages(), "term posting names a passage outside the index");
  }
}

}  // namespace

void walk_index(const s3::index::IndexReader& r) {
  (void)r.manifest().dump();
  (void)r.metadata().dump();
  (void)r.codec().name();
  (void)r.total_postings();
  (void)r.total_file_bytes();
  for (const auto& s : r.segments())
    (void)s.dir.size();
  const uint32_t n_tokens = r.n_tokens();
  uint32_t covered = 0;
  for (uint32_t doc = 0; doc < r.n_documents(); ++doc) {
    const s3::index::DocumentView d = r.document(doc);
    fuzz_check(d.token_begin == covered && d.token_end >= d.token_begin,
               "document token ranges do not tile the index");
    covered = d.token_end;
    volatile size_t bytes = 0;
    for (char c : d.name)
      bytes = bytes + static_cast<unsigned char>(c);
    for (char c : d.text)
      bytes = bytes + static_cast<unsigned char>(c);
    const auto ids = r.token_ids(doc);
    const auto offsets = r.token_offsets(doc);
    fuzz_check(ids.size() == d.n_tokens() && offsets.size() == d.n_tokens(),
               "token ids/offsets differ from the document's token count");
    for (const s3::index::TokenOffset& o : offsets)
      fuzz_check(o.begin <= o.end && o.end <= d.text.size(), "token byte range outside its text");
    for (uint32_t t = d.token_begin; t < d.token_end; ++t)
      fuzz_check(r.document_at(t) == doc, "document_at() disagrees with the document's range");
    if (d.token_end > d.token_begin) {
      const std::string_view all = r.text_of(d.token_begin, d.token_end);
      fuzz_check(
          all.data() >= d.text.data() && all.data() + all.size() <= d.text.data() + d.text.size(),
          "text_of() outside the document's text");
      (void)r.text_of(d.token_end - 1, d.token_end);
    }
  }
  fuzz_check(covered == n_tokens, "documents do not cover the index's tokens");
  walk_postings(r);
  walk_lexical(r);
}

std::vector<std::string> fixture_safetensors() {
  using s3::sae::Dtype;
  std::vector<std::string> out;
  auto image = [](const s3::sae::SafetensorsWriter& w) {
    const std::vector<std::byte> b = w.serialize();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  };
  auto floats = [](size_t n, float scale) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = scale * static_cast<float>(static_cast<int>(i % 7) - 3);
    return v;
  };
  auto as_bytes = [](const std::vector<float>& v) {
    return std::as_bytes(std::span<const float>(v));
  };
  {  // An SAE layer file: d_latent 8, d_in 4.
    s3::sae::SafetensorsWriter w;
    const auto we = floats(32, 0.25f), be = floats(8, 0.5f), wd = floats(32, 0.125f),
               bd = floats(4, 1);
    w.add("W_enc", Dtype::kF32, {8, 4}, as_bytes(we));
    w.add("b_enc", Dtype::kF32, {8}, as_bytes(be));
    w.add("W_dec", Dtype::kF32, {8, 4}, as_bytes(wd));
    w.add("b_dec", Dtype::kF32, {4}, as_bytes(bd));
    out.push_back(image(w));
  }
  {  // Mixed dtypes, a scalar, an empty tensor and metadata.
    s3::sae::SafetensorsWriter w;
    const std::vector<std::byte> b16(12, std::byte{0x3c}), b8(5, std::byte{7}),
        b64(16, std::byte{1});
    w.add("half", Dtype::kF16, {2, 3}, b16);
    w.add("bf", Dtype::kBF16, {6}, b16);
    w.add("bytes", Dtype::kU8, {5}, b8);
    w.add("i64", Dtype::kI64, {2}, b64);
    w.add("scalar", Dtype::kF64, {}, std::span<const std::byte>(b64).first(8));
    w.add("empty", Dtype::kF32, {0, 4}, {});
    w.set_metadata({{"format", "pt"}, {"note", "fuzz seed"}});
    out.push_back(image(w));
  }
  out.push_back(image(s3::sae::SafetensorsWriter()));
  return out;
}

std::vector<std::string> fixture_jsonl() {
  return {
      "{\"text\": \"The first document.\", \"name\": \"a\"}\n"
      "{\"text\": \"A second one, with \\\"quotes\\\" and \\u00e9cole.\", \"name\": \"b\"}\n",
      "\n  \n{\"text\": \"after blank lines\", \"title\": 7}\r\n{\"text\": \"\"}\n",
      "{\"id\": 1, \"text\": \"東京 naïve Ελλάδα\\n\\tnew line\", \"name\": {\"nested\": [1, 2]}}",
      "{\"text\": \"no newline at the end\", \"name\": \"last\"}",
  };
}

std::vector<std::string> fixture_tokenizers() {
  // Byte-level BPE in the shape of GPT-2 / Llama-3 (printable ASCII only, for brevity).
  json vocab = json::object();
  for (int b = 0x21; b <= 0x7E; ++b)
    vocab[std::string(1, static_cast<char>(b))] = b - 0x21;
  vocab["\u0120"] = 94;  // Ġ, the space byte
  vocab["\u0120t"] = 95;
  vocab["he"] = 96;
  vocab["\u0120the"] = 97;
  json byte_level = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 98},
         {"content", "<|endoftext|>"},
         {"special", true},
         {"lstrip", false},
         {"rstrip", false},
         {"single_word", false},
         {"normalized", false}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\u0120 t", "h e", "\u0120t he"}}}}};
  // SentencePiece-style BPE with byte fallback in the shape of Llama-2.
  const std::string sp = "\u2581";
  json sp_vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    sp_vocab[name] = 3 + b;
  }
  sp_vocab[sp] = 259;
  sp_vocab["a"] = 260;
  sp_vocab["b"] = 261;
  sp_vocab[sp + "a"] = 262;
  json sentencepiece = {
      {"added_tokens",
       {{{"id", 0},
         {"content", "<unk>"},
         {"special", true},
         {"lstrip", false},
         {"rstrip", false},
         {"single_word", false},
         {"normalized", false}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", sp}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}}},
      {"pre_tokenizer", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true},
        {"vocab", sp_vocab},
        {"merges", json::array({json::array({sp, "a"})})}}}};
  return {byte_level.dump(), sentencepiece.dump()};
}

std::string shrink_tokenizer(std::string_view tokenizer_json, int keep) {
  json j = json::parse(tokenizer_json);
  json& model = j.at("model");
  json vocab = json::object();
  std::set<std::string> kept;
  for (const auto& [token, id] : model.at("vocab").items()) {
    if (id.get<int64_t>() < keep) {
      vocab[token] = id;
      kept.insert(token);
    }
  }
  json merges = json::array();
  for (const json& m : model.at("merges")) {
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) continue;
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else {
      a = m.at(0).get<std::string>();
      b = m.at(1).get<std::string>();
    }
    if (kept.count(a) && kept.count(b) && kept.count(a + b)) merges.push_back(m);
  }
  model["vocab"] = vocab;
  model["merges"] = merges;
  // Keep the added tokens that the text can name (at most a few), renumbered past the vocabulary.
  json added = json::array();
  for (json t : j.value("added_tokens", json::array())) {
    if (added.size() >= 4) break;
    if (t.at("id").get<int64_t>() >= keep) t["id"] = keep + static_cast<int64_t>(added.size());
    added.push_back(t);
  }
  j["added_tokens"] = added;
  return j.dump();
}

}  // namespace s3::fuzz
