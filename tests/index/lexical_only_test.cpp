// Lexical-only indexes (IndexContent::kLexicalOnly, `s3attn index` without --sae): no layers and no
// feature postings, the same documents, tokens and BM25 passages as an index with SAE features
// built from the same documents; the marker is the only way to zero layers, so a manifest that
// lost its layers, or a lexical-only one over postings files, is refused; appends and merges keep
// the two kinds apart.
#include <gtest/gtest.h>

#include <stdexcept>

#include "core/base/error.h"
#include "index/checksum.h"
#include "index/index_merge.h"
#include "index/index_part.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "test_util.h"

namespace s3::index {
namespace {

using namespace s3::index::test;
using nlohmann::json;

IndexWriterOptions lexical_options(const fs::path& out, WriteMode mode = WriteMode::kCreate) {
  IndexWriterOptions o;
  o.out = out;
  o.mode = mode;
  o.content = IndexContent::kLexicalOnly;
  o.metadata = {{"model_fingerprint", "abc"}, {"tokenizer_fingerprint", "def"}};
  o.lexical.target_words = 30;
  o.fsync = false;
  return o;
}

std::vector<TestDoc> corpus(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<TestDoc> docs;
  for (int i = 0; i < n; ++i)
    docs.push_back(random_doc(rng, "doc-" + std::to_string(i), 1 + static_cast<int>(rng() % 30)));
  return docs;
}

void build_lexical(const IndexWriterOptions& o, const std::vector<TestDoc>& docs) {
  IndexWriter w(o);
  for (const TestDoc& d : docs)
    w.add_document(d.name, d.text, d.ids, d.offsets);
  w.commit();
}

void build_with_features(const IndexWriterOptions& o, const std::vector<TestDoc>& docs) {
  std::mt19937_64 rng(5);
  Reference ref(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  for (const TestDoc& d : docs)
    feed_doc(w, ref, d, rng, o.d_latent, 6);
  w.commit();
}

// Rewrites manifest.json through `edit`, with its checksum recomputed (a deliberate edit, not an
// accident the checksum would catch).
void edit_manifest(const fs::path& dir, const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(dir / kManifestFile));
  j.erase("checksum");
  edit(j);
  j["checksum"] = checksum_hex(xxh3_64(j.dump()));
  write_file(dir / kManifestFile, j.dump(2));
}

std::string open_error(const fs::path& dir) {
  try {
    IndexReader::open(dir);
  } catch (const DataCorruption& e) {
    return e.what();
  }
  ADD_FAILURE() << dir << " opened";
  return "";
}

TEST(LexicalOnly, RoundTripHoldsTheDocumentsAndPassagesOfTheIndexWithFeatures) {
  TempDir tmp;
  const std::vector<TestDoc> docs = corpus(3, 9);
  build_lexical(lexical_options(tmp / "lex"), docs);
  IndexWriterOptions with = small_options(tmp / "sae");
  build_with_features(with, docs);

  const IndexReader lex = IndexReader::open(tmp / "lex");
  const IndexReader sae = IndexReader::open(tmp / "sae");
  EXPECT_EQ(lex.content(), IndexContent::kLexicalOnly);
  EXPECT_EQ(sae.content(), IndexContent::kSaeFeatures);
  EXPECT_TRUE(lex.layers().empty());
  EXPECT_EQ(lex.d_latent(), 0u);
  EXPECT_EQ(lex.total_postings(), 0u);
  EXPECT_EQ(lex.manifest()["content"], "lexical-only");
  EXPECT_FALSE(sae.manifest().contains("content"));  // indexes with features keep their manifest
  EXPECT_EQ(lex.manifest()["layers"], json::array());
  std::vector<uint32_t> out;
  EXPECT_THROW(lex.postings(0, 0, out), std::out_of_range);
  for (const auto& e : fs::directory_iterator(tmp / "lex" / "seg-000000"))
    EXPECT_FALSE(e.path().filename().string().starts_with("postings-")) << e.path();

  // Documents, tokens and the BM25 passages and statistics: those of the index with features.
  ASSERT_EQ(lex.n_documents(), sae.n_documents());
  ASSERT_EQ(lex.n_tokens(), sae.n_tokens());
  for (uint32_t d = 0; d < lex.n_documents(); ++d) {
    EXPECT_EQ(lex.document(d).text, sae.document(d).text);
    EXPECT_EQ(lex.document(d).name, docs[d].name);
    const auto a = lex.token_ids(d), b = sae.token_ids(d);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end()));
    const auto oa = lex.token_offsets(d), ob = sae.token_offsets(d);
    EXPECT_TRUE(std::equal(oa.begin(), oa.end(), ob.begin(), ob.end()));
  }
  ASSERT_EQ(lex.lexical().n_passages(), sae.lexical().n_passages());
  EXPECT_GT(lex.lexical().n_passages(), docs.size());
  for (uint32_t p = 0; p < lex.lexical().n_passages(); ++p)
    EXPECT_EQ(lex.lexical().passage(p), sae.lexical().passage(p)) << "passage " << p;
  EXPECT_EQ(lex.lexical().avg_length(), sae.lexical().avg_length());
  // The lexical files are the same bytes.
  const auto lex_files = snapshot(tmp / "lex"), sae_files = snapshot(tmp / "sae");
  for (const char* f : {"seg-000000/docs.bin", "seg-000000/text.bin", "seg-000000/tokens.bin",
                        "seg-000000/lexical.bin"})
    EXPECT_EQ(lex_files.at(f), sae_files.at(f)) << f;
}

TEST(LexicalOnly, OptionsRefuseLayersOrLatents) {
  IndexWriterOptions o = lexical_options("/tmp/unused");
  EXPECT_NO_THROW(o.validate());
  o.layers = {3};
  EXPECT_THROW(o.validate(), UsageError);
  o = lexical_options("/tmp/unused");
  o.d_latent = 16;
  EXPECT_THROW(o.validate(), UsageError);
  // Zero layers is still an error for an index with features.
  IndexWriterOptions sae = small_options("/tmp/unused");
  sae.layers.clear();
  EXPECT_THROW(sae.validate(), UsageError);
}

TEST(LexicalOnly, AppendsKeepTheTwoKindsApart) {
  TempDir tmp;
  const std::vector<TestDoc> docs = corpus(4, 6);
  build_lexical(lexical_options(tmp / "lex"), {docs.begin(), docs.begin() + 3});
  build_lexical(lexical_options(tmp / "lex", WriteMode::kAppend), {docs.begin() + 3, docs.end()});
  build_lexical(lexical_options(tmp / "whole"), docs);
  const IndexReader appended = IndexReader::open(tmp / "lex");
  EXPECT_EQ(appended.segments().size(), 2u);
  EXPECT_EQ(appended.n_documents(), docs.size());
  EXPECT_EQ(appended.lexical().n_passages(),
            IndexReader::open(tmp / "whole").lexical().n_passages());

  build_with_features(small_options(tmp / "sae"), docs);
  const auto lex_before = snapshot(tmp / "lex"), sae_before = snapshot(tmp / "sae");
  try {
    IndexWriter w(small_options(tmp / "lex", WriteMode::kAppend));
    ADD_FAILURE() << "an SAE run appended to a lexical-only index";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lexical-only (built without an SAE)"), std::string::npos)
        << e.what();
  }
  try {
    IndexWriter w(lexical_options(tmp / "sae", WriteMode::kAppend));
    ADD_FAILURE() << "a lexical-only run appended to an index with SAE features";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds SAE features but this run has no SAE"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(snapshot(tmp / "lex"), lex_before);
  EXPECT_EQ(snapshot(tmp / "sae"), sae_before);
}

TEST(LexicalOnly, ZeroLayersOnlyWithTheMarkerAndNeverOverFeatureFiles) {
  TempDir tmp;
  const std::vector<TestDoc> docs = corpus(5, 3);
  build_with_features(small_options(tmp / "sae"), docs);
  build_lexical(lexical_options(tmp / "lex"), docs);
  const auto fresh = [&](const fs::path& from, const std::string& name) {
    fs::copy(from, tmp / name, fs::copy_options::recursive);
    return tmp / name;
  };

  // An index with features whose manifest lost its layers: not taken for a lexical-only one.
  fs::path p = fresh(tmp / "sae", "no-layers");
  edit_manifest(p, [](json& j) {
    j["layers"] = json::array();
    for (json& s : j["segments"])
      s["postings"] = s["postings_bytes"] = json::array();
  });
  EXPECT_NE(open_error(p).find("no layers"), std::string::npos) << open_error(p);

  // The marker over an index whose segments list feature postings.
  p = fresh(tmp / "sae", "marker-over-postings");
  edit_manifest(p, [](json& j) {
    j["content"] = "lexical-only";
    j["layers"] = json::array();
    j["d_latent"] = 0;
    for (json& s : j["segments"])
      s["postings"] = s["postings_bytes"] = json::array();
  });
  EXPECT_NE(open_error(p).find("lists postings-l000.bin but the index is lexical-only"),
            std::string::npos)
      << open_error(p);

  // ... or whose postings files are there though no longer listed.
  p = fresh(tmp / "sae", "marker-over-unlisted-postings");
  edit_manifest(p, [](json& j) {
    j["content"] = "lexical-only";
    j["layers"] = json::array();
    j["d_latent"] = 0;
    for (json& s : j["segments"]) {
      s["postings"] = s["postings_bytes"] = json::array();
      for (const char* f : {"postings-l000.bin", "postings-l005.bin", "postings-l009.bin"})
        s["files"].erase(f);
    }
  });
  EXPECT_NE(open_error(p).find("holds feature postings"), std::string::npos) << open_error(p);

  // The marker with layers or latents.
  p = fresh(tmp / "lex", "marker-with-layers");
  edit_manifest(p, [](json& j) { j["d_latent"] = 300; });
  EXPECT_NE(open_error(p).find("lists SAE layers or a d_latent"), std::string::npos)
      << open_error(p);

  // Another value of the marker.
  p = fresh(tmp / "lex", "other-content");
  edit_manifest(p, [](json& j) { j["content"] = "dense-only"; });
  EXPECT_NE(open_error(p).find("field 'content'"), std::string::npos) << open_error(p);

  // The untouched copies still open.
  EXPECT_NO_THROW(IndexReader::open(tmp / "lex"));
  EXPECT_NO_THROW(IndexReader::open(tmp / "sae"));
}

// Lexical-only parts of a sharded build (whole documents, no postings) merge into the index one
// writer makes; a lexical-only part is not merged with parts that hold features.
fs::path lexical_part(const std::vector<TestDoc>& docs, IndexWriterOptions o, const fs::path& index,
                      uint32_t rank, uint32_t world, size_t doc_begin, size_t doc_end) {
  PartRecord rec;
  rec.rank = rank;
  rec.world = world;
  rec.input_documents = docs.size();
  rec.input_xxh3_64 = "0123456789abcdef";
  rec.doc_begin = doc_begin;
  rec.doc_end = doc_end;
  rec.begin = {doc_begin, 0};
  rec.end = {doc_end - 1, static_cast<uint32_t>(docs[doc_end - 1].ids.size())};
  o.out = part_path(index, rank, world);
  o.metadata[kPartKey] = rec.to_json();
  build_lexical(
      o, {docs.begin() + static_cast<long>(doc_begin), docs.begin() + static_cast<long>(doc_end)});
  return o.out;
}

TEST(LexicalOnly, MergesLexicalOnlyPartsAndRefusesMixedOnes) {
  TempDir tmp;
  const std::vector<TestDoc> docs = corpus(6, 7);
  build_lexical(lexical_options(tmp / "whole"), docs);
  const IndexWriterOptions o = lexical_options(tmp / "unused");
  const std::vector<fs::path> parts = {lexical_part(docs, o, tmp / "idx", 0, 2, 0, 3),
                                       lexical_part(docs, o, tmp / "idx", 1, 2, 3, docs.size())};
  MergeOptions m;
  m.out = tmp / "idx";
  m.fsync = false;
  const MergeStats stats = merge_parts(parts, m);
  EXPECT_EQ(stats.documents, docs.size());
  EXPECT_EQ(snapshot(tmp / "idx"), snapshot(tmp / "whole"));
  EXPECT_EQ(IndexReader::open(tmp / "idx").content(), IndexContent::kLexicalOnly);

  // Rank 1 of the same input built with SAE features.
  IndexWriterOptions sae = small_options(tmp / "unused");
  sae.metadata = o.metadata;
  PartRecord rec =
      PartRecord::from_json(IndexReader::open(parts[1]).metadata().at(kPartKey), "part record");
  sae.out = tmp / "sae.part-1-of-2";
  sae.metadata[kPartKey] = rec.to_json();
  build_with_features(sae, {docs.begin() + 3, docs.end()});
  m.out = tmp / "mixed";
  try {
    merge_parts(std::vector<fs::path>{parts[0], sae.out}, m);
    ADD_FAILURE() << "merged a lexical-only part with a part holding features";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("content"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not parts of one build"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp / "mixed"));
}

}  // namespace
}  // namespace s3::index
