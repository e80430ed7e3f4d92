// Writer -> reader round trips against the brute-force reference, append / overwrite semantics,
// and the writer's argument checks.
#include <gtest/gtest.h>

#include "core/base/error.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "reference_check.h"
#include "test_util.h"

namespace s3::index {
namespace {

using namespace s3::index::test;

// Builds an index of `n_docs` random documents into `out`; returns the reference.
Reference build(const IndexWriterOptions& o, std::mt19937_64& rng, int n_docs, int per_token = 12,
                Reference* base = nullptr) {
  Reference ref = base ? *base : Reference(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  for (int i = 0; i < n_docs; ++i) {
    TestDoc d =
        random_doc(rng, "doc-" + std::to_string(ref.docs.size()), 1 + static_cast<int>(rng() % 30));
    feed_doc(w, ref, d, rng, o.d_latent, per_token);
  }
  w.commit();
  return ref;
}

class IndexRoundTrip : public ::testing::TestWithParam<const PostingCodec*> {};

TEST_P(IndexRoundTrip, MatchesBruteForceReference) {
  TempDir tmp;
  std::mt19937_64 rng(11);
  IndexWriterOptions o = small_options(tmp / "idx");
  o.codec = std::string(GetParam()->name());
  Reference ref = build(o, rng, 12);
  IndexReader r = IndexReader::open(tmp / "idx");
  EXPECT_EQ(r.codec().name(), GetParam()->name());
  EXPECT_EQ(std::vector<int>(r.layers().begin(), r.layers().end()), o.layers);
  EXPECT_EQ(r.d_latent(), o.d_latent);
  EXPECT_EQ(r.metadata(), o.metadata);
  EXPECT_EQ(r.manifest()["format_version"], 1);
  EXPECT_EQ(r.segments().size(), 1u);
  expect_matches_reference(r, ref);
  // No temporary directories left next to the index.
  EXPECT_TRUE(entries_containing(tmp.path(), ".tmp-").empty());
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, IndexRoundTrip, ::testing::ValuesIn(all_codecs()),
                         [](const auto& param_info) {
                           std::string n(param_info.param->name());
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

TEST(IndexWriterTest, EmptyDocumentsAndEmptyFeatureRanges) {
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "idx");
  Reference ref(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  std::mt19937_64 rng(5);
  TestDoc empty{"empty", "", {}, {}};
  feed_doc(w, ref, empty, rng, o.d_latent, 5);
  TestDoc punct{"punct", "... !!!", {1, 2}, {{0, 3}, {4, 7}}};
  feed_doc(w, ref, punct, rng, o.d_latent, 5);
  TestDoc d = random_doc(rng, "real", 5);
  feed_doc(w, ref, d, rng, o.d_latent, 5);
  w.add_feature_bitmap(0, w.token_end(), 0, nullptr);  // zero tokens: allowed, no-op
  auto st = w.commit();
  EXPECT_EQ(st.docs, 3u);
  IndexReader r = IndexReader::open(tmp / "idx");
  expect_matches_reference(r, ref);
  EXPECT_EQ(r.document(0).text, "");
  EXPECT_EQ(r.token_ids(0).size(), 0u);
}

TEST(IndexWriterTest, TextOfTokenRanges) {
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "idx");
  IndexWriter w(o);
  const std::string text = "Hello big world";
  const std::vector<int32_t> ids = {1, 2, 3};
  const std::vector<TokenOffset> offs = {{0, 5}, {5, 9}, {9, 15}};
  w.add_document("a", "x y", std::vector<int32_t>{7, 8}, std::vector<TokenOffset>{{0, 1}, {2, 3}});
  auto d = w.add_document("b", text, ids, offs);
  EXPECT_EQ(d.doc, 1u);
  EXPECT_EQ(d.token_begin, 2u);
  EXPECT_EQ(d.token_end, 5u);
  w.commit();
  IndexReader r = IndexReader::open(tmp / "idx");
  EXPECT_EQ(r.text_of(2, 5), "Hello big world");
  EXPECT_EQ(r.text_of(3, 4), " big");
  EXPECT_EQ(r.text_of(0, 2), "x y");
  EXPECT_THROW(r.text_of(1, 3), std::out_of_range);
  EXPECT_THROW(r.document(2), std::out_of_range);
}

TEST(IndexWriterTest, RejectsBadInput) {
  TempDir tmp;
  IndexWriterOptions o = small_options(tmp / "idx");
  IndexWriter w(o);
  const std::vector<int32_t> ids = {1, 2};
  EXPECT_THROW(w.add_document("bad", "ab", ids, std::vector<TokenOffset>{{0, 1}}), Error);
  EXPECT_THROW(w.add_document("bad", "ab", ids, std::vector<TokenOffset>{{0, 1}, {1, 3}}), Error);
  EXPECT_THROW(w.add_document("bad", "ab", ids, std::vector<TokenOffset>{{1, 2}, {0, 1}}), Error);
  EXPECT_THROW(w.add_document("bad", "a\xFF", ids, std::vector<TokenOffset>{{0, 1}, {1, 2}}),
               Error);
  EXPECT_EQ(w.n_documents(), 0u);
  auto d = w.add_document("ok", "a b c d", std::vector<int32_t>{1, 2, 3, 4},
                          std::vector<TokenOffset>{{0, 1}, {2, 3}, {4, 5}, {6, 7}});
  std::vector<uint64_t> bits(o.d_latent, 1);
  EXPECT_THROW(w.add_feature_bitmap(3, d.token_begin, 1, bits.data()), Error);  // no slot 3
  EXPECT_THROW(w.add_feature_bitmap(0, d.token_begin, 5, bits.data()), Error);  // past the tokens
  w.add_feature_bitmap(0, d.token_begin + 2, 1, bits.data());
  EXPECT_THROW(w.add_feature_bitmap(0, d.token_begin + 1, 1, bits.data()), Error);  // goes back
  std::vector<int32_t> fids = {0, 1, static_cast<int32_t>(o.d_latent)};
  EXPECT_THROW(w.add_feature_ids(1, d.token_begin, 1, 3, fids.data()), Error);  // id out of range
  fids[2] = -1;
  w.add_feature_ids(1, d.token_begin, 1, 3, fids.data());  // the failed call changed nothing
  w.commit();
  IndexReader r = IndexReader::open(tmp / "idx");
  std::vector<uint32_t> p;
  r.postings(1, 0, p);
  EXPECT_EQ(p, std::vector<uint32_t>{0});
  r.postings(0, 0, p);
  EXPECT_EQ(p, std::vector<uint32_t>{2});
  EXPECT_EQ(r.totals(0).postings, o.d_latent);
  EXPECT_THROW(w.commit(), Error);  // already committed
}

TEST(IndexWriterTest, OptionsValidate) {
  IndexWriterOptions o = small_options("/tmp/x");
  o.layers = {};
  EXPECT_THROW(o.validate(), UsageError);
  o = small_options("/tmp/x");
  o.layers = {1, 1};
  EXPECT_THROW(o.validate(), UsageError);
  o = small_options("/tmp/x");
  o.d_latent = 0;
  EXPECT_THROW(o.validate(), UsageError);
  o = small_options("/tmp/x");
  o.codec = "gzip";
  EXPECT_THROW(o.validate(), UsageError);
  o = small_options("/tmp/x");
  o.metadata = nlohmann::json::array();
  EXPECT_THROW(o.validate(), UsageError);
  o = small_options("/tmp/x");
  o.lexical.language = "elvish";
  EXPECT_THROW(o.validate(), UsageError);
  o = small_options("");
  EXPECT_THROW(o.validate(), UsageError);
}

TEST(IndexWriterTest, EmptyInputIsRefusedAtCommit) {
  TempDir tmp;
  IndexWriter w(small_options(tmp / "idx"));
  try {
    w.commit();
    FAIL() << "commit without documents succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no documents"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp / "idx"));
  EXPECT_TRUE(entries_containing(tmp.path(), ".tmp-").empty());
}

TEST(IndexWriterTest, ExistingOutWithoutOverwriteIsRefused) {
  TempDir tmp;
  std::mt19937_64 rng(1);
  build(small_options(tmp / "idx"), rng, 2);
  const auto before = snapshot(tmp / "idx");
  try {
    IndexWriter w(small_options(tmp / "idx"));
    FAIL() << "writer accepted an existing output";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--append"), std::string::npos) << e.what();
  }
  fs::create_directory(tmp / "plain");
  write_file(tmp / "plain" / "notes.txt", "mine");
  EXPECT_THROW(IndexWriter(small_options(tmp / "plain", WriteMode::kCreate)), Error);
  // Overwrite refuses a directory that is not an index.
  try {
    IndexWriter w(small_options(tmp / "plain", WriteMode::kOverwrite));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an s3attn index"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(tmp / "plain" / "notes.txt"), "mine");
  EXPECT_EQ(snapshot(tmp / "idx"), before);
}

TEST(IndexWriterTest, OverwriteSwapsInTheNewIndex) {
  TempDir tmp;
  std::mt19937_64 rng(2);
  build(small_options(tmp / "idx"), rng, 3);
  Reference ref = build(small_options(tmp / "idx", WriteMode::kOverwrite), rng, 4);
  IndexReader r = IndexReader::open(tmp / "idx");
  expect_matches_reference(r, ref);
  EXPECT_EQ(entries_containing(tmp.path(), "idx"), std::vector<std::string>{"idx"});
  // Overwrite also creates, and accepts an empty directory.
  fs::create_directory(tmp / "empty");
  Reference ref2 = build(small_options(tmp / "empty", WriteMode::kOverwrite), rng, 2);
  expect_matches_reference(IndexReader::open(tmp / "empty"), ref2);
  Reference ref3 = build(small_options(tmp / "fresh", WriteMode::kOverwrite), rng, 2);
  expect_matches_reference(IndexReader::open(tmp / "fresh"), ref3);
}

TEST(IndexWriterTest, DestroyedWithoutCommitLeavesOldIndex) {
  TempDir tmp;
  std::mt19937_64 rng(3);
  Reference ref = build(small_options(tmp / "idx"), rng, 3);
  const auto before = snapshot(tmp / "idx");
  {
    IndexWriterOptions o = small_options(tmp / "idx", WriteMode::kOverwrite);
    IndexWriter w(o);
    Reference scratch(o.layers.size(), o.d_latent);
    feed_doc(w, scratch, random_doc(rng, "new", 10), rng, o.d_latent, 10);
  }
  {
    IndexWriterOptions o = small_options(tmp / "idx", WriteMode::kAppend);
    IndexWriter w(o);
    Reference scratch = ref;
    feed_doc(w, scratch, random_doc(rng, "new", 10), rng, o.d_latent, 10);
  }
  {  // A commit that fails half-way (the hook throws) cleans up too.
    IndexWriterOptions o = small_options(tmp / "idx", WriteMode::kOverwrite);
    o.commit_hook = [](std::string_view stage) {
      if (stage == "staged") throw Error("injected failure");
    };
    IndexWriter w(o);
    Reference scratch(o.layers.size(), o.d_latent);
    feed_doc(w, scratch, random_doc(rng, "new", 10), rng, o.d_latent, 10);
    EXPECT_THROW(w.commit(), Error);
  }
  EXPECT_EQ(snapshot(tmp / "idx"), before);
  EXPECT_EQ(entries_containing(tmp.path(), "idx"), std::vector<std::string>{"idx"});
  EXPECT_TRUE(entries_containing(tmp / "idx", ".tmp").empty());
  expect_matches_reference(IndexReader::open(tmp / "idx"), ref);
}

TEST(IndexAppend, AddsASegmentAndKeepsOldFilesByteIdentical) {
  TempDir tmp;
  std::mt19937_64 rng(4);
  Reference ref = build(small_options(tmp / "idx"), rng, 5);
  const auto seg0 = snapshot(tmp / "idx" / "seg-000000");
  ref = build(small_options(tmp / "idx", WriteMode::kAppend), rng, 4, 12, &ref);
  EXPECT_EQ(snapshot(tmp / "idx" / "seg-000000"), seg0);
  EXPECT_TRUE(fs::exists(tmp / "idx" / "seg-000001" / "docs.bin"));
  {
    IndexReader r = IndexReader::open(tmp / "idx");
    ASSERT_EQ(r.segments().size(), 2u);
    EXPECT_EQ(r.segments()[1].doc_base, 5u);
    expect_matches_reference(r, ref);
  }
  const auto seg1 = snapshot(tmp / "idx" / "seg-000001");
  ref = build(small_options(tmp / "idx", WriteMode::kAppend), rng, 3, 12, &ref);
  EXPECT_EQ(snapshot(tmp / "idx" / "seg-000000"), seg0);
  EXPECT_EQ(snapshot(tmp / "idx" / "seg-000001"), seg1);
  IndexReader r = IndexReader::open(tmp / "idx");
  EXPECT_EQ(r.segments().size(), 3u);
  expect_matches_reference(r, ref);
  // Ranged decoding skips the segments outside the range.
  const SegmentSummary& s1 = r.segments()[1];
  std::vector<uint32_t> got;
  for (uint32_t l = 0; l < ref.postings.size(); ++l) {
    for (uint32_t f = 0; f < r.d_latent(); ++f) {
      r.postings(l, f, s1.token_base + 1, s1.token_base + 2, got);
      std::vector<uint32_t> want;
      for (uint32_t p : ref.postings[l][f]) {
        if (p >= s1.token_base && p < s1.token_base + s1.n_tokens) want.push_back(p);
      }
      ASSERT_EQ(got, want) << l << " " << f;
    }
  }
  // Append to a missing directory creates the index.
  Reference fresh = build(small_options(tmp / "new", WriteMode::kAppend), rng, 2);
  expect_matches_reference(IndexReader::open(tmp / "new"), fresh);
}

TEST(IndexAppend, OneWriterAtATime) {
  TempDir tmp;
  std::mt19937_64 rng(12);
  build(small_options(tmp / "idx"), rng, 2);
  IndexWriter appender(small_options(tmp / "idx", WriteMode::kAppend));
  for (WriteMode mode : {WriteMode::kAppend, WriteMode::kOverwrite}) {
    try {
      IndexWriter other(small_options(tmp / "idx", mode));
      FAIL() << "a second writer got in";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("another process is writing"), std::string::npos)
          << e.what();
    }
  }
}

TEST(IndexAppend, RefusesAnInconsistentRun) {
  TempDir tmp;
  std::mt19937_64 rng(6);
  build(small_options(tmp / "idx"), rng, 2);
  const auto before = snapshot(tmp / "idx");
  auto expect_refused = [&](IndexWriterOptions o, const std::string& needle) {
    try {
      IndexWriter w(o);
      FAIL() << "append accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
    }
  };
  IndexWriterOptions o = small_options(tmp / "idx", WriteMode::kAppend);
  o.layers = {0, 5};
  expect_refused(o, "layers");
  o = small_options(tmp / "idx", WriteMode::kAppend);
  o.d_latent = 301;
  expect_refused(o, "latents");
  o = small_options(tmp / "idx", WriteMode::kAppend);
  o.codec = "streamvbyte-delta";
  expect_refused(o, "codec");
  o = small_options(tmp / "idx", WriteMode::kAppend);
  o.metadata["sae"] = "sha256:other";
  expect_refused(o, "sae");
  o = small_options(tmp / "idx", WriteMode::kAppend);
  o.lexical.target_words = 100;
  expect_refused(o, "passages");
  o = small_options(tmp / "idx", WriteMode::kAppend);
  o.metadata["model_dir"] = "/elsewhere";
  expect_refused(o, "model_dir");
  o.append_ignore_metadata_keys = {"model_dir"};
  { IndexWriter accepted(o); }  // the ignored key may differ
  EXPECT_EQ(snapshot(tmp / "idx"), before);
}

TEST(IndexManifest, RecordsFilesAndTotals) {
  TempDir tmp;
  std::mt19937_64 rng(8);
  IndexWriterOptions o = small_options(tmp / "idx");
  build(o, rng, 3);
  const Manifest m = Manifest::load(tmp / "idx");
  ASSERT_EQ(m.segments.size(), 1u);
  const auto& files = m.segments[0].files;
  for (const char* f : {"docs.bin", "text.bin", "tokens.bin", "lexical.bin", "postings-l000.bin",
                        "postings-l005.bin", "postings-l009.bin"}) {
    ASSERT_TRUE(files.count(f)) << f;
    EXPECT_EQ(files.at(f).bytes, fs::file_size(tmp / "idx" / "seg-000000" / f)) << f;
  }
  const auto j = nlohmann::json::parse(read_file(tmp / "idx" / "manifest.json"));
  EXPECT_EQ(j["format"], "s3attn-index");
  EXPECT_EQ(j["codec"]["name"], "varint-delta");
  EXPECT_EQ(j["codec"]["id"], 1);
  EXPECT_EQ(j["metadata"], o.metadata);
  EXPECT_EQ(j["lexical"]["language"], "english");
  EXPECT_EQ(j["totals"]["docs"], 3);
}

}  // namespace
}  // namespace s3::index
