// Dense passage embeddings in the index: float16 conversion, dense.bin round trip over segments,
// the writer's checks, appends, and damaged or inconsistent files refused by the reader.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/base/error.h"
#include "index/checksum.h"
#include "index/half.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "index/passage_splitter.h"
#include "test_util.h"

namespace s3::index {
namespace {

using namespace s3::index::test;
using nlohmann::json;

constexpr uint32_t kDim = 8;

// Every float16 value goes to float and back unchanged; NaNs stay NaN.
TEST(Half, EveryValueRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << h;
      EXPECT_EQ(h & 0x7C00u, 0x7C00u) << h;
      continue;
    }
    EXPECT_EQ(float_to_half(f), h) << h << " " << f;
  }
}

// Between two neighbouring finite halves, floats go to the nearer one and the exact midpoint to
// the one with an even mantissa (round to nearest even); past 65504 + half a step, to infinity.
TEST(Half, RoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7BFF; ++h) {  // positive finite values below the largest
    const float a = half_to_float(static_cast<uint16_t>(h));
    const float b = half_to_float(static_cast<uint16_t>(h + 1));
    const float mid = (a + b) / 2;  // exact: halves have 11 significant bits
    EXPECT_EQ(float_to_half(mid), (h & 1u) ? h + 1 : h) << h;
    EXPECT_EQ(float_to_half(std::nextafter(mid, 0.0f)), h) << h;
    EXPECT_EQ(float_to_half(std::nextafter(mid, 1e9f)), h + 1) << h;
    EXPECT_EQ(float_to_half(-mid), ((h & 1u) ? h + 1 : h) | 0x8000u) << h;
  }
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFFu);
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFFu);
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00u);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7C00u);
  EXPECT_EQ(float_to_half(1e-9f), 0u);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000u);
}

// A deterministic, distinct vector per (document, passage).
std::vector<float> vectors_for(uint32_t doc, size_t passages) {
  std::vector<float> v(passages * kDim);
  for (size_t p = 0; p < passages; ++p) {
    for (uint32_t i = 0; i < kDim; ++i)
      v[p * kDim + i] = std::sin(0.37f * static_cast<float>(doc * 131 + p * 17 + i));
  }
  return v;
}

struct Built {
  std::vector<TestDoc> docs;
  std::vector<uint32_t> doc_ids;
};

// Writes `n_docs` random documents with their dense vectors into `out`.
Built build_dense(const fs::path& out, WriteMode mode, uint64_t seed, int n_docs) {
  std::mt19937_64 rng(seed);
  IndexWriterOptions o = small_options(out, mode);
  o.dense_dim = kDim;
  o.lexical.target_words = 12;  // several passages per document
  o.fsync = false;
  Reference ref(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  Built b;
  for (int i = 0; i < n_docs; ++i) {
    TestDoc d = random_doc(rng, "doc-" + std::to_string(seed) + "-" + std::to_string(i), 8 + i);
    const uint32_t global = w.doc_base() + w.n_documents();
    feed_doc(w, ref, d, rng, o.d_latent, 6);
    const size_t n = document_passages(d.text, o.lexical.target_words).size();
    w.add_dense_vectors(global, vectors_for(global, n));
    b.docs.push_back(d);
    b.doc_ids.push_back(global);
  }
  w.commit();
  return b;
}

// Every passage's stored vector is its document's input rounded to float16, in passage order.
void expect_vectors(const IndexReader& r) {
  const DenseIndex* dense = r.dense();
  ASSERT_NE(dense, nullptr);
  ASSERT_EQ(dense->dim(), kDim);
  ASSERT_EQ(dense->n_passages(), r.lexical().n_passages());
  std::vector<uint32_t> seen(r.n_documents(), 0);
  std::vector<float> got(kDim);
  for (uint32_t p = 0; p < dense->n_passages(); ++p) {
    const Passage passage = r.lexical().passage(p);
    const uint32_t k = seen[passage.doc]++;
    const std::vector<float> want = vectors_for(passage.doc, k + 1);
    dense->vector(p, got);
    for (uint32_t i = 0; i < kDim; ++i) {
      EXPECT_EQ(got[i], half_to_float(float_to_half(want[k * kDim + i]))) << p << " " << i;
      EXPECT_NEAR(got[i], want[k * kDim + i], 1e-3) << p << " " << i;
    }
  }
  for (uint32_t d = 0; d < r.n_documents(); ++d) {
    const std::string_view text = r.document(d).text;
    EXPECT_EQ(seen[d], document_passages(text, r.lexical().options().target_words).size()) << d;
  }
}

TEST(DenseIndexTest, RoundTripOverAppendedSegments) {
  TempDir tmp;
  build_dense(tmp / "idx", WriteMode::kCreate, 1, 4);
  {
    IndexReader r = IndexReader::open(tmp / "idx");
    expect_vectors(r);
    EXPECT_EQ(r.manifest()["dense"], json({{"dim", kDim}, {"dtype", "float16"}}));
    EXPECT_TRUE(r.manifest()["segments"][0]["files"].contains("dense.bin"));
  }
  const auto seg0 = snapshot(tmp / "idx" / "seg-000000");
  build_dense(tmp / "idx", WriteMode::kAppend, 2, 3);
  EXPECT_EQ(snapshot(tmp / "idx" / "seg-000000"), seg0);
  IndexReader r = IndexReader::open(tmp / "idx");
  EXPECT_EQ(r.segments().size(), 2u);
  EXPECT_EQ(r.n_documents(), 7u);
  expect_vectors(r);
  EXPECT_THROW(r.dense()->raw(r.dense()->n_passages()), std::out_of_range);
}

TEST(DenseIndexTest, IndexWithoutDenseHasNone) {
  TempDir tmp;
  std::mt19937_64 rng(3);
  IndexWriterOptions o = small_options(tmp / "idx");
  Reference ref(o.layers.size(), o.d_latent);
  {
    IndexWriter w(o);
    feed_doc(w, ref, random_doc(rng, "a", 5), rng, o.d_latent, 4);
    EXPECT_THROW(w.add_dense_vectors(0, std::vector<float>(kDim)), Error);
    w.commit();
  }
  IndexReader r = IndexReader::open(tmp / "idx");
  EXPECT_EQ(r.dense(), nullptr);
  EXPECT_FALSE(r.manifest().contains("dense"));
  EXPECT_FALSE(fs::exists(tmp / "idx" / "seg-000000" / "dense.bin"));
}

TEST(DenseIndexTest, WriterChecksItsInput) {
  TempDir tmp;
  std::mt19937_64 rng(4);
  IndexWriterOptions o = small_options(tmp / "idx");
  o.dense_dim = kDim;
  o.lexical.target_words = 12;
  Reference ref(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  const TestDoc d = random_doc(rng, "a", 9);
  feed_doc(w, ref, d, rng, o.d_latent, 4);
  const size_t n = document_passages(d.text, o.lexical.target_words).size();
  ASSERT_GT(n, 1u);
  auto expect_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      FAIL() << "accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { w.add_dense_vectors(0, vectors_for(0, n - 1)); }, "passages");
  expect_error([&] { w.add_dense_vectors(1, vectors_for(0, n)); }, "was not added");
  std::vector<float> bad = vectors_for(0, n);
  bad[3] = std::nanf("");
  expect_error([&] { w.add_dense_vectors(0, bad); }, "non-finite");
  // A document without its vectors cannot be committed.
  feed_doc(w, ref, random_doc(rng, "b", 3), rng, o.d_latent, 4);
  w.add_dense_vectors(0, vectors_for(0, n));
  expect_error([&] { w.add_dense_vectors(0, vectors_for(0, n)); }, "already");
  expect_error([&] { w.commit(); }, "no dense passage vectors");
  EXPECT_FALSE(fs::exists(tmp / "idx"));
  IndexWriterOptions big = small_options(tmp / "big");
  big.dense_dim = 70000;
  EXPECT_THROW(big.validate(), UsageError);
}

TEST(DenseIndexTest, AppendMustAgreeOnDenseEmbeddings) {
  TempDir tmp;
  build_dense(tmp / "dense", WriteMode::kCreate, 5, 2);
  std::mt19937_64 rng(6);
  {
    IndexWriterOptions o = small_options(tmp / "plain");
    IndexWriter w(o);
    Reference ref(o.layers.size(), o.d_latent);
    feed_doc(w, ref, random_doc(rng, "a", 4), rng, o.d_latent, 4);
    w.commit();
  }
  auto expect_refused = [](const IndexWriterOptions& o, const std::string& needle) {
    try {
      IndexWriter w(o);
      FAIL() << "append accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
    }
  };
  IndexWriterOptions o = small_options(tmp / "dense", WriteMode::kAppend);
  o.lexical.target_words = 12;
  expect_refused(o, "has no --dense-model");
  o.dense_dim = kDim + 1;
  expect_refused(o, "dense passage embeddings of 8 values");
  o = small_options(tmp / "plain", WriteMode::kAppend);
  o.dense_dim = kDim;
  expect_refused(o, "it has no dense passage embeddings");
}

// Copies `good` to `scratch`, applies `edit` and expects open() to refuse it naming `file`.
template <class Edit>
void expect_corrupt(const fs::path& good, const fs::path& scratch, Edit edit,
                    const std::string& file, const std::string& needle) {
  fs::remove_all(scratch);
  fs::copy(good, scratch, fs::copy_options::recursive);
  edit(scratch);
  try {
    IndexReader::open(scratch);
    FAIL() << "accepted: " << needle;
  } catch (const DataCorruption& e) {
    EXPECT_EQ(fs::path(e.path()).filename(), file) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Rewrites manifest.json through `change` with a valid checksum (a consistent but wrong manifest).
template <class Change>
void rewrite_manifest(const fs::path& dir, Change change) {
  Manifest m = Manifest::load(dir);
  change(m);
  m.save(dir, false);
}

TEST(DenseIndexTest, DamagedDenseFileIsRefused) {
  TempDir tmp;
  build_dense(tmp / "good", WriteMode::kCreate, 7, 3);
  const fs::path dense = fs::path("seg-000000") / "dense.bin";
  expect_corrupt(
      tmp / "good", tmp / "bad",
      [&](const fs::path& d) {
        std::string bytes = read_file(d / dense);
        bytes[40] = static_cast<char>(bytes[40] ^ 0x10);  // one vector value
        write_file(d / dense, bytes);
      },
      "dense.bin", "checksum");
  expect_corrupt(
      tmp / "good", tmp / "bad",
      [&](const fs::path& d) {
        std::string bytes = read_file(d / dense);
        write_file(d / dense, bytes.substr(0, bytes.size() - 20));
      },
      "dense.bin", "truncated");
  expect_corrupt(
      tmp / "good", tmp / "bad", [&](const fs::path& d) { fs::remove(d / dense); }, "dense.bin",
      "");
  // A manifest whose dense section no longer matches the file: another dim.
  expect_corrupt(
      tmp / "good", tmp / "bad",
      [&](const fs::path& d) { rewrite_manifest(d, [](Manifest& m) { m.dense->dim = kDim * 2; }); },
      "dense.bin", "holds vectors of 8 values");
  // A manifest that lost its dense section but still lists the file.
  expect_corrupt(
      tmp / "good", tmp / "bad",
      [&](const fs::path& d) { rewrite_manifest(d, [](Manifest& m) { m.dense.reset(); }); },
      "manifest.json", "no dense section");
  // A manifest that lost the file's entry.
  expect_corrupt(
      tmp / "good", tmp / "bad",
      [&](const fs::path& d) {
        rewrite_manifest(d, [](Manifest& m) { m.segments[0].files.erase("dense.bin"); });
      },
      "manifest.json", "does not list dense.bin");
  // An unknown vector type in the manifest.
  expect_corrupt(
      tmp / "good", tmp / "bad",
      [&](const fs::path& d) {
        json j = json::parse(read_file(d / "manifest.json"));
        j["dense"]["dtype"] = "bfloat16";
        j.erase("checksum");
        j["checksum"] = checksum_hex(xxh3_64(j.dump()));
        write_file(d / "manifest.json", j.dump(2));
      },
      "manifest.json", "dtype 'bfloat16'");
}

}  // namespace
}  // namespace s3::index
