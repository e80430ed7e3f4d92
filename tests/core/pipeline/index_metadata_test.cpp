// What an index records about its build (core/pipeline/index_metadata.h): written and read back
// field for field, absent or mistyped fields of older or hand-made indexes, the scan's checks, and
// the keys that may differ between appends.
#include "core/pipeline/index_metadata.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/base/error.h"

namespace {

using s3::IndexMetadata;
using s3::ScanRecord;

IndexMetadata sae_index() {
  IndexMetadata m;
  m.model_dir = "/models/m";
  m.model_fingerprint = "abc";
  m.tokenizer_fingerprint = "0123456789abcdef";
  m.sae_dir = "/models/m/sae";
  m.sae_fingerprint = "def";
  m.has_scan = true;
  m.scan = {.chunk = 4096,
            .overlap = 16,
            .chunk_bos = true,
            .rope = false,
            .layers = {0, 3},
            .k = 32,
            .d_latent = 2048,
            .head_mode = s3::sae::HeadMode::kConcat};
  return m;
}

TEST(IndexMetadata, RoundTripsAnSaeIndex) {
  const IndexMetadata m = sae_index();
  const nlohmann::json j = to_json(m);
  const IndexMetadata back = s3::read_index_metadata(j);
  EXPECT_EQ(back.model_dir, m.model_dir);
  EXPECT_EQ(back.model_fingerprint, m.model_fingerprint);
  EXPECT_EQ(back.tokenizer_fingerprint, m.tokenizer_fingerprint);
  EXPECT_EQ(back.sae_dir, m.sae_dir);
  EXPECT_EQ(back.sae_fingerprint, m.sae_fingerprint);
  EXPECT_TRUE(back.dense_model.is_null());
  const std::vector<int> layers = {0, 3};
  const ScanRecord scan = s3::read_scan_record(j, layers, 2048, "here");
  EXPECT_EQ(scan.chunk, 4096u);
  EXPECT_EQ(scan.overlap, 16u);
  EXPECT_TRUE(scan.chunk_bos);
  EXPECT_FALSE(scan.rope);
  EXPECT_EQ(scan.layers, layers);
  EXPECT_EQ(scan.k, 32);
  EXPECT_EQ(scan.d_latent, 2048);
  EXPECT_EQ(scan.head_mode, s3::sae::HeadMode::kConcat);
  EXPECT_EQ(to_json(scan), j["scan"]);
}

TEST(IndexMetadata, LexicalIndexHasNoSaeOrScan) {
  IndexMetadata m;
  m.model_dir = "/models/m";
  m.model_fingerprint = "abc";
  const nlohmann::json j = to_json(m);
  EXPECT_FALSE(j.contains("sae_dir"));
  EXPECT_FALSE(j.contains("scan"));
  EXPECT_FALSE(j.contains("dense_model"));
  EXPECT_EQ(s3::read_index_metadata(j).sae_dir, "");
}

TEST(IndexMetadata, DenseModelIsRecordedWithItsFingerprint) {
  nlohmann::json j = to_json(sae_index());
  s3::set_dense_model(j, {{"name", "minilm"}, {"fingerprint", "f00d"}}, "/models/d");
  IndexMetadata back = s3::read_index_metadata(j);
  EXPECT_EQ(back.dense_model_dir, "/models/d");
  EXPECT_EQ(back.dense_model_fingerprint, "f00d");
  EXPECT_EQ(back.dense_model["name"], "minilm");
  // The scan is read against the manifest's layers and width; with it, every field read back is
  // written the same.
  back.has_scan = true;
  back.scan = s3::read_scan_record(j, std::vector<int>{0, 3}, 2048, "here");
  EXPECT_EQ(to_json(back), j);
}

TEST(IndexMetadata, OlderOrMistypedFieldsReadAsEmpty) {
  const IndexMetadata back = s3::read_index_metadata(
      {{"model_dir", 7}, {"sae_fingerprint", nullptr}, {"dense_model", "not an object"}});
  EXPECT_EQ(back.model_dir, "");
  EXPECT_EQ(back.sae_fingerprint, "");
  EXPECT_EQ(back.dense_model_fingerprint, "");
  EXPECT_EQ(s3::read_index_metadata(nlohmann::json::array()).model_dir, "");
}

TEST(IndexMetadata, ScanOfAHandMadeManifestIsRefused) {
  const std::vector<int> layers = {0, 3};
  auto with = [](const char* key, nlohmann::json value) {
    nlohmann::json j = to_json(sae_index());
    j["scan"][key] = std::move(value);
    return j;
  };
  EXPECT_THROW(s3::read_scan_record(with("chunk", -5), layers, 2048, "m"), s3::DataCorruption);
  EXPECT_THROW(s3::read_scan_record(with("overlap", 4096), layers, 2048, "m"), s3::DataCorruption);
  EXPECT_THROW(s3::read_scan_record(with("k", 4096), layers, 2048, "m"), s3::DataCorruption);
  EXPECT_THROW(s3::read_scan_record(with("layers", {0, 4}), layers, 2048, "m"), s3::DataCorruption);
  EXPECT_THROW(s3::read_scan_record(with("head_mode", "sideways"), layers, 2048, "m"),
               s3::DataCorruption);
  EXPECT_THROW(s3::read_scan_record(with("rope", "yes"), layers, 2048, "m"), s3::DataCorruption);
  // An index from before the scan was recorded: the defaults, with the manifest's layers.
  const ScanRecord old = s3::read_scan_record(nlohmann::json::object(), layers, 2048, "m");
  EXPECT_EQ(old.chunk, 0u);
  EXPECT_EQ(old.layers, layers);
  EXPECT_EQ(old.d_latent, 2048);
}

TEST(IndexMetadata, PathKeysAreThoseThatMayMove) {
  const std::vector<std::string> keys = s3::path_metadata_keys();
  nlohmann::json j = to_json(sae_index());
  s3::set_dense_model(j, {{"fingerprint", "f00d"}}, "/models/d");
  for (const std::string& key : keys)
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(std::count(keys.begin(), keys.end(), "model_fingerprint"), 0);
}

}  // namespace
