// Helpers shared by the index tests: temporary directories, random corpora, a brute-force reference
// of what an index must contain, file snapshots.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "index/index_writer.h"
#include "index/types.h"

namespace s3::index::test {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/s3idx-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  fs::path path_;
};

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// Every regular file under dir (relative path -> bytes), except the writers' lock file `.lock`.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != ".lock") {
      out[fs::relative(e.path(), dir).string()] = read_file(e.path());
    }
  }
  return out;
}

// Entries of `dir` whose name contains `part` (to find leftover temp dirs).
inline std::vector<std::string> entries_containing(const fs::path& dir, const std::string& part) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(part) != std::string::npos) out.push_back(n);
  }
  return out;
}

// A document with a simple "tokenizer": every word and every punctuation mark is a token, an
// optional BOS token with an empty byte range first.
struct TestDoc {
  std::string name;
  std::string text;
  std::vector<int32_t> ids;
  std::vector<TokenOffset> offsets;
};

inline TestDoc random_doc(std::mt19937_64& rng, const std::string& name, int n_sentences) {
  static const std::vector<std::string> words = {
      "the",   "model",    "reads",  "long",      "documents", "Running", "runs",     "ran",
      "index", "features", "keys",   "query",     "attention", "sparse",  "école",    "Über",
      "naïve", "data",     "token",  "retrieval", "passages",  "BM25",    "3.14",     "don't",
      "東京",  "日本語",   "Ελλάδα", "tests",     "writer",    "reader",  "segments", "codec"};
  TestDoc d;
  d.name = name;
  std::uniform_int_distribution<int> len(1, 25);
  for (int s = 0; s < n_sentences; ++s) {
    const int n = len(rng);
    for (int w = 0; w < n; ++w) {
      std::string word = words[rng() % words.size()];
      if (w == 0 && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 32);
      d.text += word;
      d.text += (w + 1 == n) ? (rng() % 7 == 0 ? "!\n\n" : ". ") : (rng() % 9 == 0 ? ", " : " ");
    }
  }
  // Tokens: optional BOS, then maximal runs of non-space bytes split before punctuation.
  if (rng() % 2) {
    d.offsets.push_back({0, 0});
  }
  size_t i = 0;
  while (i < d.text.size()) {
    if (d.text[i] == ' ' || d.text[i] == '\n') {
      ++i;
      continue;
    }
    size_t j = i;
    if (d.text[i] == '.' || d.text[i] == ',' || d.text[i] == '!') {
      j = i + 1;
    } else {
      while (j < d.text.size() && d.text[j] != ' ' && d.text[j] != '\n' && d.text[j] != ',' &&
             !(d.text[j] == '.' && (j + 1 == d.text.size() || d.text[j + 1] == ' ')) &&
             d.text[j] != '!') {
        ++j;
      }
    }
    d.offsets.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(j)});
    i = j;
  }
  for (size_t t = 0; t < d.offsets.size(); ++t)
    d.ids.push_back(static_cast<int32_t>(rng() % 50000));
  return d;
}

// What an index must contain, built by the obvious method: per (layer slot, feature) a set of
// global positions.
struct Reference {
  std::vector<TestDoc> docs;
  std::vector<uint32_t> doc_begin;  // global first token of each doc
  uint32_t n_tokens = 0;
  std::vector<std::vector<std::set<uint32_t>>> postings;  // [slot][feature]
  Reference(size_t n_layers, uint32_t d_latent)
      : postings(n_layers, std::vector<std::set<uint32_t>>(d_latent)) {}
};

// Feeds `doc` to the writer and the reference, with random features: each token activates
// `per_token` random features per layer from a skewed distribution, duplicated as if from several
// heads. Chunks of random size alternate between the bitmap and the ids path; some chunks of some
// layers are skipped (no features).
inline void feed_doc(IndexWriter& w, Reference& ref, const TestDoc& doc, std::mt19937_64& rng,
                     uint32_t d_latent, int per_token) {
  const DocumentRange r = w.add_document(doc.name, doc.text, doc.ids, doc.offsets);
  ref.docs.push_back(doc);
  ref.doc_begin.push_back(r.token_begin);
  ref.n_tokens = r.token_end;
  const size_t n_layers = ref.postings.size();
  std::uniform_int_distribution<uint32_t> chunk_len(1, 200);
  for (size_t l = 0; l < n_layers; ++l) {
    uint32_t pos = r.token_begin;
    while (pos < r.token_end) {
      const uint32_t n = std::min(chunk_len(rng), r.token_end - pos);
      if (rng() % 8 == 0) {  // skip this chunk for this layer
        pos += n;
        continue;
      }
      // Active features per token, with duplicates (heads).
      std::vector<std::vector<int32_t>> active(n);
      for (uint32_t t = 0; t < n; ++t) {
        const int k = static_cast<int>(rng() % (per_token + 1));
        for (int a = 0; a < k; ++a) {
          // Skewed: low feature ids fire much more often; some features never fire.
          const uint64_t x = rng() % d_latent;
          const auto f = static_cast<int32_t>((x * x / d_latent) % (d_latent - 1));
          active[t].push_back(f);
          if (rng() % 3 == 0) active[t].push_back(f);  // another head, same feature
        }
        for (int32_t f : active[t])
          ref.postings[l][f].insert(pos + t);
      }
      if (rng() % 2 == 0) {
        const size_t words = (n + 63) / 64;
        std::vector<uint64_t> bits(size_t{d_latent} * words, 0);
        for (uint32_t t = 0; t < n; ++t) {
          for (int32_t f : active[t])
            bits[size_t(f) * words + t / 64] |= uint64_t{1} << (t % 64);
        }
        if (n % 64 != 0) bits[words - 1] |= ~uint64_t{0} << (n % 64);  // garbage past n_tokens
        w.add_feature_bitmap(static_cast<uint32_t>(l), pos, n, bits.data());
      } else {
        uint32_t slots = 1;
        for (const auto& a : active)
          slots = std::max<uint32_t>(slots, static_cast<uint32_t>(a.size()));
        slots += static_cast<uint32_t>(rng() % 3);
        std::vector<int32_t> ids(size_t{n} * slots, -1);
        for (uint32_t t = 0; t < n; ++t) {
          std::shuffle(active[t].begin(), active[t].end(), rng);
          std::copy(active[t].begin(), active[t].end(), ids.begin() + size_t{t} * slots);
          for (uint32_t s = static_cast<uint32_t>(active[t].size()); s < slots; ++s) {
            ids[size_t{t} * slots + s] = -1 - static_cast<int32_t>(rng() % 5);
          }
        }
        w.add_feature_ids(static_cast<uint32_t>(l), pos, n, slots, ids.data());
      }
      pos += n;
    }
  }
}

inline IndexWriterOptions small_options(const fs::path& out, WriteMode mode = WriteMode::kCreate) {
  IndexWriterOptions o;
  o.out = out;
  o.mode = mode;
  o.layers = {0, 5, 9};
  o.d_latent = 300;
  o.metadata = {{"model", "sha256:abc"}, {"sae", "sha256:def"}, {"scan", {{"chunk", 4096}}}};
  o.lexical.target_words = 30;
  o.fsync = false;
  return o;
}

}  // namespace s3::index::test
