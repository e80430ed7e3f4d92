// merge_parts (index/index_merge.h): parts written the way the ranks of a sharded run write them
// (whole documents, postings of a token range only, a part record) merge into exactly the files one
// writer produces from the same input, for any split (inside documents, at their ends, empty
// parts), both codecs, create and append; parts that are not one complete build are refused with
// one clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "index/index_merge.h"
#include "index/index_part.h"
#include "index/index_writer.h"
#include "index/passage_splitter.h"
#include "test_util.h"

namespace s3::index::test {
namespace {

// The input of one build: documents, and per layer slot and token the active features (with
// repeats, as from several heads).
struct Corpus {
  std::vector<TestDoc> docs;
  std::vector<std::vector<std::vector<int32_t>>> features;  // [doc][slot * n + token] -> ids
  uint32_t slots = 0;                                       // ids per token (padded with -1)
  std::vector<uint32_t> base;  // global first token of each document; one more entry at the end
  uint32_t n_tokens() const { return base.back(); }
};

Corpus make_corpus(uint64_t seed, int n_docs, size_t n_layers, uint32_t d_latent) {
  std::mt19937_64 rng(seed);
  Corpus c;
  c.slots = 6;
  c.base.push_back(0);
  for (int d = 0; d < n_docs; ++d) {
    // Mostly small documents, now and then a long one that several parts share.
    const int sentences = rng() % 4 == 0 ? 150 : 1 + static_cast<int>(rng() % 12);
    c.docs.push_back(random_doc(rng, "doc" + std::to_string(d), sentences));
    const size_t n = c.docs.back().ids.size();
    auto& f = c.features.emplace_back(n_layers, std::vector<int32_t>(n * c.slots, -1));
    for (size_t l = 0; l < n_layers; ++l) {
      for (size_t t = 0; t < n; ++t) {
        const size_t k = rng() % (c.slots + 1);
        for (size_t s = 0; s < k; ++s) {
          const uint64_t x = rng() % d_latent;
          f[l][t * c.slots + s] = static_cast<int32_t>((x * x / d_latent) % d_latent);
        }
      }
    }
    c.base.push_back(c.base.back() + static_cast<uint32_t>(n));
  }
  return c;
}

// Feeds the features of document d's tokens [begin, end) (document-relative), in pieces of
// random length, as chunks come.
void feed_features(IndexWriter& w, const Corpus& c, size_t d, uint32_t global_doc_begin,
                   uint32_t begin, uint32_t end, std::mt19937_64& rng) {
  const auto n_layers = static_cast<uint32_t>(c.features[d].size());
  for (uint32_t l = 0; l < n_layers; ++l) {
    for (uint32_t t = begin; t < end;) {
      const uint32_t len = std::min<uint32_t>(1 + static_cast<uint32_t>(rng() % 70), end - t);
      w.add_feature_ids(l, global_doc_begin + t, len, c.slots,
                        c.features[d][l].data() + size_t{t} * c.slots);
      t += len;
    }
  }
}

void build_whole(const Corpus& c, const IndexWriterOptions& o, uint64_t seed) {
  std::mt19937_64 rng(seed);
  IndexWriter w(o);
  for (size_t d = 0; d < c.docs.size(); ++d) {
    const TestDoc& doc = c.docs[d];
    const DocumentRange r = w.add_document(doc.name, doc.text, doc.ids, doc.offsets);
    feed_features(w, c, d, r.token_begin, 0, static_cast<uint32_t>(doc.ids.size()), rng);
  }
  w.commit();
}

// The document with the most tokens: a cut in its middle gives two parts sharing it.
size_t longest(const Corpus& c) {
  size_t best = 0;
  for (size_t d = 1; d < c.docs.size(); ++d)
    if (c.docs[d].ids.size() > c.docs[best].ids.size()) best = d;
  return best;
}

PartPosition position_of(const Corpus& c, uint32_t global) {
  const auto it = std::upper_bound(c.base.begin(), c.base.end(), global);
  const auto d = static_cast<size_t>(it - c.base.begin()) - 1;
  return {d, global - c.base[d]};
}

PartRecord input_record(const Corpus& c, uint32_t rank, uint32_t world) {
  PartRecord r;
  r.rank = rank;
  r.world = world;
  r.input_documents = c.docs.size();
  for (const TestDoc& d : c.docs)
    r.input_bytes += d.text.size();
  r.input_xxh3_64 = "0123456789abcdef";
  return r;
}

// The part of the tokens [g0, g1) (global positions of the whole input), as a rank writes it.
fs::path build_part(const Corpus& c, IndexWriterOptions o, const fs::path& index, uint32_t rank,
                    uint32_t world, uint32_t g0, uint32_t g1, uint64_t seed) {
  PartRecord rec = input_record(c, rank, world);
  if (g0 == g1) {  // an empty part keeps the document holding its position
    rec.begin = rec.end =
        g0 == c.n_tokens()
            ? PartPosition{c.docs.size() - 1, static_cast<uint32_t>(c.docs.back().ids.size())}
            : position_of(c, g0);
    rec.doc_begin = rec.begin.doc;
    rec.doc_end = rec.begin.doc + 1;
  } else {
    rec.begin = position_of(c, g0);
    const PartPosition last = position_of(c, g1 - 1);
    rec.end = {last.doc, last.token + 1};
    rec.doc_begin = rec.begin.doc;
    rec.doc_end = last.doc + 1;
  }
  o.out = part_path(index, rank, world);
  o.metadata[kPartKey] = rec.to_json();
  std::mt19937_64 rng(seed + rank);
  IndexWriter w(o);
  for (size_t d = rec.doc_begin; d < rec.doc_end; ++d) {
    const TestDoc& doc = c.docs[d];
    const DocumentRange r = w.add_document(doc.name, doc.text, doc.ids, doc.offsets);
    const uint32_t lo = std::max(g0, c.base[d]) - c.base[d];
    const uint32_t hi = std::min(g1, c.base[d + 1]) - c.base[d];
    if (lo < hi) feed_features(w, c, d, r.token_begin, lo, hi, rng);
  }
  w.commit();
  return o.out;
}

// W parts of the input cut at `cuts` (W - 1 non-decreasing global positions).
std::vector<fs::path> build_parts(const Corpus& c, const IndexWriterOptions& o,
                                  const fs::path& index, std::vector<uint32_t> cuts,
                                  uint64_t seed) {
  cuts.insert(cuts.begin(), 0);
  cuts.push_back(c.n_tokens());
  const auto world = static_cast<uint32_t>(cuts.size() - 1);
  std::vector<fs::path> parts;
  for (uint32_t r = 0; r < world; ++r)
    parts.push_back(build_part(c, o, index, r, world, cuts[r], cuts[r + 1], seed));
  return parts;
}

std::string merge_error(std::span<const fs::path> parts, const fs::path& out) {
  MergeOptions m;
  m.out = out;
  m.fsync = false;
  try {
    merge_parts(parts, m);
  } catch (const Error& e) {
    EXPECT_FALSE(fs::exists(out)) << "a refused merge wrote " << out;
    return e.what();
  }
  ADD_FAILURE() << "the merge was not refused";
  return "";
}

class MergeTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(MergeTest, PartsMergeIntoTheSingleWriterIndexByteForByte) {
  const auto [seed, codec] = GetParam();
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "whole");
  o.codec = codec;
  const Corpus c = make_corpus(static_cast<uint64_t>(seed), 12, o.layers.size(), o.d_latent);
  build_whole(c, o, 1);
  const auto whole = snapshot(tmp / "whole");
  std::mt19937_64 rng(static_cast<uint64_t>(seed) * 7 + 3);
  for (uint32_t world : {1u, 2u, 3u, 5u, 8u}) {
    // Cuts anywhere: inside documents, at document ends, several at one place (empty parts).
    std::vector<uint32_t> cuts;
    for (uint32_t r = 1; r < world; ++r) {
      const uint32_t g = rng() % 4 == 0 ? c.base[rng() % c.base.size()]
                                        : static_cast<uint32_t>(rng() % (c.n_tokens() + 1));
      cuts.push_back(g);
    }
    if (world == 5) cuts[1] = cuts[2] = cuts[0];
    std::sort(cuts.begin(), cuts.end());
    const fs::path index = tmp / ("idx" + std::to_string(world));
    std::vector<fs::path> parts = build_parts(c, o, index, cuts, 11);
    std::shuffle(parts.begin(), parts.end(), rng);  // any order
    MergeOptions m;
    m.out = index;
    m.fsync = false;
    m.threads = 1 + static_cast<unsigned>(rng() % 4);
    const MergeStats stats = merge_parts(parts, m);
    EXPECT_EQ(stats.parts, world);
    EXPECT_EQ(stats.documents, c.docs.size());
    EXPECT_EQ(stats.tokens, c.n_tokens());
    EXPECT_EQ(snapshot(index), whole) << "world " << world << ", codec " << codec;
  }
}

INSTANTIATE_TEST_SUITE_P(SeedsAndCodecs, MergeTest,
                         ::testing::Combine(::testing::Values(1, 2, 3),
                                            ::testing::Values("varint-delta",
                                                              "streamvbyte-delta")));

TEST(Merge, AppendsLikeOneWriterAppending) {
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "whole");
  const Corpus c = make_corpus(5, 8, o.layers.size(), o.d_latent);
  const Corpus first = make_corpus(6, 3, o.layers.size(), o.d_latent);
  build_whole(first, o, 1);
  fs::copy(tmp / "whole", tmp / "merged", fs::copy_options::recursive);
  o.mode = WriteMode::kAppend;
  build_whole(c, o, 1);
  o.mode = WriteMode::kCreate;
  const std::vector<fs::path> parts =
      build_parts(c, o, tmp / "idx", {c.base[2] + 1, c.base[5]}, 11);
  MergeOptions m;
  m.out = tmp / "merged";
  m.mode = WriteMode::kAppend;
  m.fsync = false;
  merge_parts(parts, m);
  EXPECT_EQ(snapshot(tmp / "merged"), snapshot(tmp / "whole"));
}

TEST(Merge, RefusesPartsThatAreNotOneCompleteBuild) {
  TempDir tmp;
  const IndexWriterOptions o = small_options(tmp / "whole");
  const Corpus c = make_corpus(9, 6, o.layers.size(), o.d_latent);
  const std::vector<uint32_t> cuts = {c.base[1] + 3, c.base[4]};
  const std::vector<fs::path> parts = build_parts(c, o, tmp / "idx", cuts, 11);
  const fs::path out = tmp / "out";

  // A rank missing, named by the path it writes.
  std::string e = merge_error(std::vector<fs::path>{parts[0], parts[2]}, out);
  EXPECT_NE(e.find("1 of the 3 parts missing"), std::string::npos) << e;
  EXPECT_NE(e.find((tmp / "idx.part-1-of-3").string()), std::string::npos) << e;
  // A rank given twice.
  e = merge_error(std::vector<fs::path>{parts[0], parts[1], parts[1], parts[2]}, out);
  EXPECT_NE(e.find("rank 1 of 3 is given twice"), std::string::npos) << e;
  // A part of another scan configuration (another chunk size, say).
  IndexWriterOptions other = o;
  other.metadata["scan"]["chunk"] = 1024;
  const fs::path odd = build_part(c, other, tmp / "odd", 1, 3, cuts[0], cuts[1], 11);
  e = merge_error(std::vector<fs::path>{parts[0], odd, parts[2]}, out);
  EXPECT_NE(e.find("not parts of one build"), std::string::npos) << e;
  EXPECT_NE(e.find("metadata.scan.chunk (idx.part-0-of-3: 4096, odd.part-1-of-3: 1024)"),
            std::string::npos)
      << e;
  // Another SAE width, codec or passage size.
  other = o;
  other.lexical.target_words = 31;
  e = merge_error(
      std::vector<fs::path>{parts[0], build_part(c, other, tmp / "lex", 1, 3, cuts[0], cuts[1], 11),
                            parts[2]},
      out);
  EXPECT_NE(e.find("lexical.target_words"), std::string::npos) << e;
  // A part of another world size.
  const std::vector<fs::path> two = build_parts(c, o, tmp / "two", {cuts[0]}, 11);
  e = merge_error(std::vector<fs::path>{parts[0], two[1], parts[2]}, out);
  EXPECT_NE(e.find("part.world"), std::string::npos) << e;
  // An ordinary index.
  build_whole(c, small_options(tmp / "whole"), 1);
  e = merge_error(std::vector<fs::path>{tmp / "whole"}, out);
  EXPECT_NE(e.find("is not a part of a sharded build"), std::string::npos) << e;
  // Ranges that do not tile the input: rank 1 starting before rank 0's end.
  const fs::path overlap = build_part(c, o, tmp / "over", 1, 3, cuts[0] - 2, cuts[1], 11);
  e = merge_error(std::vector<fs::path>{parts[0], overlap, parts[2]}, out);
  EXPECT_NE(e.find("but the parts before it end at"), std::string::npos) << e;
  // The output exists: refused before anything is read.
  fs::create_directories(out);
  MergeOptions m;
  m.out = out;
  m.fsync = false;
  try {
    merge_parts(parts, m);
    ADD_FAILURE() << "merged over an existing directory";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("already exists"), std::string::npos) << err.what();
  }
  fs::remove(out);
  // And the parts themselves still merge.
  m.out = tmp / "good";
  merge_parts(parts, m);
  EXPECT_TRUE(fs::exists(tmp / "good" / "manifest.json"));
}

TEST(Merge, RefusesAPartWhosePostingsLeaveItsRange) {
  TempDir tmp;
  const IndexWriterOptions o = small_options(tmp / "whole");
  const Corpus c = make_corpus(4, 4, o.layers.size(), o.d_latent);
  const size_t d = longest(c);
  ASSERT_GT(c.docs[d].ids.size(), 10u);
  std::vector<fs::path> parts = build_parts(c, o, tmp / "idx", {c.base[d] + 5}, 11);
  // Rank 1 written with the postings of the whole of its first document but a record that starts
  // five tokens into it.
  PartRecord rec = input_record(c, 1, 2);
  rec.doc_begin = d;
  rec.doc_end = c.docs.size();
  rec.begin = {d, 5};
  rec.end = {c.docs.size() - 1, static_cast<uint32_t>(c.docs.back().ids.size())};
  IndexWriterOptions bad = o;
  bad.out = tmp / "bad.part-1-of-2";
  bad.metadata[kPartKey] = rec.to_json();
  {
    std::mt19937_64 rng(3);
    IndexWriter w(bad);
    for (size_t i = d; i < c.docs.size(); ++i) {
      const DocumentRange r =
          w.add_document(c.docs[i].name, c.docs[i].text, c.docs[i].ids, c.docs[i].offsets);
      feed_features(w, c, i, r.token_begin, 0, static_cast<uint32_t>(c.docs[i].ids.size()), rng);
    }
    w.commit();
  }
  const std::string e = merge_error(std::vector<fs::path>{parts[0], bad.out}, tmp / "out");
  EXPECT_NE(e.find("postings outside its part record's range"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.part-1-of-2"), std::string::npos) << e;
}

TEST(Merge, RefusesPartsDisagreeingOnASharedDocument) {
  TempDir tmp;
  const IndexWriterOptions o = small_options(tmp / "whole");
  Corpus c = make_corpus(4, 4, o.layers.size(), o.d_latent);
  const size_t d = longest(c);
  const uint32_t cut = c.base[d] + static_cast<uint32_t>(c.docs[d].ids.size() / 2);
  const fs::path p0 = build_part(c, o, tmp / "idx", 0, 2, 0, cut, 11);
  c.docs[d].text[0] = c.docs[d].text[0] == 'X' ? 'Y' : 'X';
  const fs::path p1 = build_part(c, o, tmp / "idx", 1, 2, cut, c.n_tokens(), 11);
  const std::string e = merge_error(std::vector<fs::path>{p0, p1}, tmp / "out");
  EXPECT_NE(e.find("hold different versions of input document " + std::to_string(d) + " ('doc" +
                   std::to_string(d) + "')"),
            std::string::npos)
      << e;
}

// A damaged part (a flipped byte, a truncated file, a file or its manifest gone) is refused with
// DataCorruption, one line naming it, before anything is written: an index already at the output,
// overwritten or appended to, keeps every byte, and no temp directory is left beside it.
TEST(Merge, RefusesADamagedPartAndLeavesTheOutputAlone) {
  TempDir tmp;
  const IndexWriterOptions o = small_options(tmp / "whole");
  const Corpus c = make_corpus(12, 6, o.layers.size(), o.d_latent);
  const std::vector<fs::path> parts =
      build_parts(c, o, tmp / "idx", {c.base[1] + 2, c.base[4]}, 11);
  build_whole(make_corpus(13, 2, o.layers.size(), o.d_latent), small_options(tmp / "out"), 1);
  const auto before = snapshot(tmp / "out");
  const auto good = snapshot(parts[1]);
  // The part's largest file other than the manifest: posting lists.
  std::string largest;
  for (const auto& [rel, bytes] : good)
    if (rel != "manifest.json" && (largest.empty() || bytes.size() > good.at(largest).size()))
      largest = rel;
  ASSERT_FALSE(largest.empty());

  struct Damage {
    const char* what;
    std::function<void(const fs::path&)> apply;
  };
  const std::vector<Damage> damages = {
      {"a flipped byte",
       [&](const fs::path& p) {
         std::string b = read_file(p / largest);
         b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x10);
         write_file(p / largest, b);
       }},
      {"a truncated file",
       [&](const fs::path& p) { fs::resize_file(p / largest, fs::file_size(p / largest) / 2); }},
      {"a file gone", [&](const fs::path& p) { fs::remove(p / largest); }},
      {"its manifest gone", [&](const fs::path& p) { fs::remove(p / "manifest.json"); }},
  };
  for (const Damage& d : damages) {
    for (const WriteMode mode : {WriteMode::kOverwrite, WriteMode::kAppend}) {
      d.apply(parts[1]);
      MergeOptions m;
      m.out = tmp / "out";
      m.mode = mode;
      m.fsync = false;
      try {
        merge_parts(parts, m);
        ADD_FAILURE() << "merged a part with " << d.what;
      } catch (const DataCorruption& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("the part " + parts[1].string() +
                            " is damaged: run the rank that wrote it again with --overwrite"),
                  std::string::npos)
            << d.what << ": " << what;
        EXPECT_EQ(what.find("rebuild the index"), std::string::npos) << what;
        EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      }
      EXPECT_EQ(snapshot(tmp / "out"), before) << d.what << " changed the output";
      EXPECT_EQ(entries_containing(tmp.path(), "tmp").size(), 0u) << d.what;
      // Repaired, the same parts merge.
      fs::remove_all(parts[1]);
      fs::create_directories(parts[1]);
      for (const auto& [rel, bytes] : good) {
        fs::create_directories((parts[1] / rel).parent_path());
        write_file(parts[1] / rel, bytes);
      }
    }
  }
  MergeOptions m;
  m.out = tmp / "out";
  m.mode = WriteMode::kOverwrite;
  m.fsync = false;
  merge_parts(parts, m);
  build_whole(c, o, 1);
  EXPECT_EQ(snapshot(tmp / "out"), snapshot(tmp / "whole"));
}

TEST(Merge, RefusesPartsWithDenseEmbeddingsInsteadOfDroppingThem) {
  // Sharded builds make no dense.bin (s3attn index refuses --dense-model there); a part that has
  // one anyway is refused, not merged without it.
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "unused");
  const Corpus c = make_corpus(5, 4, o.layers.size(), o.d_latent);
  o.dense_dim = 4;
  PartRecord rec = input_record(c, 0, 1);
  rec.begin = {0, 0};
  rec.end = {c.docs.size() - 1, static_cast<uint32_t>(c.docs.back().ids.size())};
  rec.doc_begin = 0;
  rec.doc_end = c.docs.size();
  o.out = part_path(tmp / "idx", 0, 1);
  o.metadata[kPartKey] = rec.to_json();
  {
    std::mt19937_64 rng(9);
    IndexWriter w(o);
    for (size_t d = 0; d < c.docs.size(); ++d) {
      const TestDoc& doc = c.docs[d];
      const DocumentRange r = w.add_document(doc.name, doc.text, doc.ids, doc.offsets);
      feed_features(w, c, d, r.token_begin, 0, static_cast<uint32_t>(doc.ids.size()), rng);
      const size_t passages = document_passages(doc.text, o.lexical.target_words).size();
      w.add_dense_vectors(r.doc, std::vector<float>(passages * o.dense_dim, 0.5f));
    }
    w.commit();
  }
  const std::vector<fs::path> parts = {o.out};
  const std::string e = merge_error(parts, tmp / "idx");
  EXPECT_NE(e.find("holds dense passage embeddings"), std::string::npos) << e;
}

TEST(Merge, WaitsForEveryPartOfThisBuild) {
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "idx");
  const Corpus c = make_corpus(8, 5, o.layers.size(), o.d_latent);
  const std::vector<fs::path> parts = build_parts(c, o, tmp / "idx", {c.base[3]}, 11);
  IndexWriterOptions build = o;
  build.metadata[kPartKey] = input_record(c, 0, 2).to_json();
  EXPECT_EQ(wait_for_parts(tmp / "idx", build, 2, 0, 60, {}), parts);
  EXPECT_EQ(part_mismatch(parts[1],
                          [&] {
                            IndexWriterOptions b = build;
                            b.metadata[kPartKey]["rank"] = 1;
                            return b;
                          }()),
            "");
  // A part of another build does not count: rank 1 of another input.
  fs::remove_all(parts[1]);
  PartRecord other = input_record(c, 1, 2);
  other.input_xxh3_64 = "fedcba9876543210";
  IndexWriterOptions b1 = o;
  b1.metadata[kPartKey] = other.to_json();
  EXPECT_NE(part_mismatch(parts[0], b1).find("part.input.xxh3_64"), std::string::npos);
  int calls = 0;
  try {
    wait_for_parts(tmp / "idx", build, 2, 0.5, 0.1, [&](const std::vector<uint32_t>& missing) {
      EXPECT_EQ(missing, std::vector<uint32_t>{1});
      ++calls;
    });
    ADD_FAILURE() << "did not time out";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((tmp / "idx.part-1-of-2").string()), std::string::npos)
        << e.what();
  }
  EXPECT_GT(calls, 0);
}

}  // namespace
}  // namespace s3::index::test
