// What the fuzz targets of tests/fuzz found in the index readers (docs/fuzzing.md), each as the
// smallest damage that showed it: the reader must refuse it with DataCorruption naming the file
// (before the fix: an exception of another type, or a sanitizer report).
#include <gtest/gtest.h>

#include <functional>

#include "core/base/error.h"
#include "index/checksum.h"
#include "index/codec_registry.h"
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

// StreamVByte stores d-gaps of any size: a gap of 0 (a repeated position) or one that wraps past
// 2^32 decoded to a list that is not strictly increasing, with positions past the index in its
// middle (only the last one was bounded). Found by fuzz_segment's invariant check.
TEST(IndexFuzzRegressions, StreamVByteListThatDoesNotIncreaseIsRefused) {
  const PostingCodec& codec = codec_by_name("streamvbyte-delta");
  std::vector<uint32_t> out(3);
  auto decode = [&](std::vector<uint8_t> bytes) {
    bytes.resize(bytes.size() + 32, 0);  // room for the SIMD over-read
    return codec.decode(bytes, out.size(), out.data());
  };
  std::vector<uint8_t> good;
  codec.encode(std::vector<uint32_t>{5, 6, 9}, good);
  ASSERT_EQ(good.size(), 4u);  // one control byte, three one-byte gaps
  EXPECT_EQ(decode(good), 4u);
  std::vector<uint8_t> repeated = good;
  repeated[2] = 0;  // gaps 5, 0, 3: positions 5, 5, 8
  EXPECT_EQ(decode(repeated), PostingCodec::kDecodeError);

  std::vector<uint8_t> wide;
  codec.encode(std::vector<uint32_t>{1, 0xFFFFFFF0u, 0xFFFFFFF1u}, wide);
  EXPECT_NE(decode(wide), PostingCodec::kDecodeError);
  wide[1] = 0x20;  // first gap 0x20: the second position wraps to 0x0F
  EXPECT_EQ(decode(wide), PostingCodec::kDecodeError);
}

}  // namespace
}  // namespace s3::index
