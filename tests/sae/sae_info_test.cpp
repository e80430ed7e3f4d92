// sae/sae_info.h and sae/options.h: sae.json round trip, validation, option checks.
#include "sae/sae_info.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "sae/options.h"

namespace {

using namespace s3::sae;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/s3sae_info_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

SaeInfo sample() {
  SaeInfo info;
  info.layers = {0, 11, 15};
  info.d_in = 64;
  info.d_latent = 4096;
  info.k = 32;
  info.head_mode = HeadMode::kConcat;
  info.model_fingerprint = "abc123";
  info.compatible_model_fingerprints = {"abc123-float32", "abc123-float16"};
  info.corpus = "wikitext-2 train";
  info.tokens = 2'000'000;
  info.vectors = 6'000'000;
  info.steps = 1500;
  info.training.lr = 5e-4;
  info.training.k = 32;
  info.stats[0] = {0.12, 0.01};
  info.stats[11] = {0.2, std::nullopt};
  return info;
}

TEST(SaeInfo, RoundTrip) {
  TempDir dir;
  const auto file = sae_info_path(dir.path());
  write_sae_info(file, sample());
  const SaeInfo got = read_sae_info(file);
  const SaeInfo want = sample();
  EXPECT_EQ(got.layers, want.layers);
  EXPECT_EQ(got.d_in, 64);
  EXPECT_EQ(got.d_latent, 4096);
  EXPECT_EQ(got.k, 32);
  EXPECT_EQ(got.head_mode, HeadMode::kConcat);
  EXPECT_EQ(got.model_fingerprint, "abc123");
  EXPECT_EQ(got.compatible_model_fingerprints, want.compatible_model_fingerprints);
  EXPECT_EQ(got.corpus, "wikitext-2 train");
  EXPECT_EQ(got.tokens, 2'000'000);
  EXPECT_EQ(got.vectors, 6'000'000);
  EXPECT_EQ(got.steps, 1500);
  EXPECT_DOUBLE_EQ(got.training.lr, 5e-4);
  EXPECT_DOUBLE_EQ(*got.stats.at(0).fvu, 0.12);
  EXPECT_FALSE(got.stats.at(11).dead_fraction.has_value());
  EXPECT_EQ(layer_path(dir.path(), 11).filename(), "layer_11.safetensors");
}

void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream(p) << s;
}

TEST(SaeInfo, BadFiles) {
  TempDir dir;
  const auto file = dir.path() / "sae.json";
  EXPECT_THROW(read_sae_info(file), s3::Error);  // missing
  write_text(file, "{not json");
  EXPECT_THROW(read_sae_info(file), s3::DataCorruption);
  write_text(file, R"({"format": "other"})");
  EXPECT_THROW(read_sae_info(file), s3::DataCorruption);
  // k > d_latent is refused with a message that says so.
  SaeInfo info = sample();
  std::string text = sae_info_to_json_string(info);
  text.replace(text.find("\"k\": 32"), 7, "\"k\": 9999");
  write_text(file, text);
  try {
    read_sae_info(file);
    FAIL();
  } catch (const s3::DataCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("k 9999 is larger than d_latent 4096"), std::string::npos)
        << e.what();
  }
  // A newer format version tells the user to upgrade.
  text = sae_info_to_json_string(info);
  text.replace(text.find("\"format_version\": 1"), 19, "\"format_version\": 7");
  write_text(file, text);
  try {
    read_sae_info(file);
    FAIL();
  } catch (const s3::DataCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("upgrade"), std::string::npos) << e.what();
  }
  // Wrong types are corruption, not crashes.
  text = sae_info_to_json_string(info);
  text.replace(text.find("\"d_in\": 64"), 10, "\"d_in\": \"x\"");
  write_text(file, text);
  EXPECT_THROW(read_sae_info(file), s3::DataCorruption);
  info.layers = {};
  EXPECT_THROW(write_sae_info(file, info), s3::DataCorruption);
}

TEST(Options, TrainerValidation) {
  TrainerOptions o;
  EXPECT_NO_THROW(o.validate());
  o.k = 64;
  o.latents = 32;
  try {
    o.validate();
    FAIL();
  } catch (const s3::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--k 64 is larger than --latents 32"), std::string::npos);
  }
  o = {};
  o.lr = -1;
  EXPECT_THROW(o.validate(), s3::UsageError);
  o = {};
  o.batch = 0;
  EXPECT_THROW(o.validate(), s3::UsageError);
  o = {};
  o.device = "gpu";
  EXPECT_THROW(o.validate(), s3::UsageError);
  o = {};
  o.device = "cuda:1";
  EXPECT_NO_THROW(o.validate());
  o = {};
  o.aux_weight = -0.5;
  EXPECT_THROW(o.validate(), s3::UsageError);
  o = {};
  o.k_aux = o.latents + 1;
  EXPECT_THROW(o.validate(), s3::UsageError);
  o = {};
  o.b_dec_init = "median";
  EXPECT_THROW(o.validate(), s3::UsageError);
}

TEST(Options, AutoValues) {
  TrainerOptions o;
  EXPECT_EQ(o.resolved_k_aux(128), 64);
  EXPECT_EQ(o.resolved_k_aux(64), 32);
  EXPECT_EQ(o.resolved_k_aux(1024), 512);
  o.latents = 16;
  EXPECT_EQ(o.resolved_k_aux(128), 16);
  o = {};
  EXPECT_EQ(o.resolved_dead_after(), 10'000'000);
  o.steps = 100;
  o.batch = 100;
  EXPECT_EQ(o.resolved_dead_after(), 1000);
  EXPECT_EQ(o.resolved_warmup_steps(), 5);
}

TEST(Options, HeadModeAndDin) {
  EXPECT_EQ(parse_head_mode("per-head"), HeadMode::kPerHead);
  EXPECT_EQ(parse_head_mode("concat"), HeadMode::kConcat);
  EXPECT_THROW(parse_head_mode("both"), s3::UsageError);
  EXPECT_EQ(expected_d_in(HeadMode::kPerHead, 8, 128), 128);
  EXPECT_EQ(expected_d_in(HeadMode::kConcat, 8, 128), 1024);
  EncoderOptions e;
  EXPECT_NO_THROW(e.validate());
  EXPECT_EQ(parse_encoder_dtype("auto"), std::nullopt);
  EXPECT_EQ(parse_encoder_dtype("bfloat16"), s3::DType::kBFloat16);
  EXPECT_THROW(parse_encoder_dtype("int8"), s3::UsageError);
}

}  // namespace
