// What the fuzz targets of tests/fuzz found in the index readers (docs/fuzzing.md), each as the
// smallest damage that showed it: the reader must refuse it with DataCorruption naming the file
// (before the fix: an exception of another type, or a sanitizer report).
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "index/checksum.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "test_util.h"

namespace s3::index {
namespace {

using namespace s3::index::test;
using nlohmann::json;

void build_small(const fs::path& out) {
  std::mt19937_64 rng(7);
  IndexWriterOptions o = small_options(out);
  o.d_latent = 40;
  Reference ref(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  for (int i = 0; i < 2; ++i)
    feed_doc(w, ref, random_doc(rng, "doc-" + std::to_string(i), 3), rng, o.d_latent, 4);
  w.commit();
}

// Rewrites manifest.json through `edit`, with a correct checksum when `reseal`.
void edit_manifest(const fs::path& dir, const std::function<void(json&)>& edit, bool reseal) {
  json j = json::parse(read_file(dir / "manifest.json"));
  edit(j);
  if (reseal) {
    j.erase("checksum");
    j["checksum"] = checksum_hex(xxh3_64(j.dump()));
  }
  write_file(dir / "manifest.json", j.dump(2));
}

void expect_corruption(const fs::path& dir, const std::string& file, const std::string& needle) {
  try {
    IndexReader::open(dir);
    FAIL() << "accepted";
  } catch (const DataCorruption& e) {
    EXPECT_EQ(fs::path(e.path()).filename(), file) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(IndexFuzzRegressions, ManifestFormatOfAnotherType) {
  TempDir tmp;
  build_small(tmp / "idx");
  for (const json& value : {json::array(), json(1), json(nullptr), json::object()}) {
    edit_manifest(
        tmp / "idx", [&](json& j) { j["format"] = value; }, /*reseal=*/false);
    expect_corruption(tmp / "idx", "manifest.json", "not an s3attn index manifest");
  }
}

}  // namespace
}  // namespace s3::index
