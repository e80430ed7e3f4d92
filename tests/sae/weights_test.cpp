// sae/weights.h and sae/tensor_io.h: SAE directories, tensor round trips, and bad input.
#include "sae/weights.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/base/error.h"
#include "sae/tensor_io.h"
#include "sae_test_util.h"

namespace {

using namespace s3::sae;
using namespace s3::sae::testing;

SaeInfo info_for(std::vector<int> layers, int64_t d_in, int64_t f, int64_t k) {
  SaeInfo info;
  info.layers = std::move(layers);
  info.d_in = d_in;
  info.d_latent = f;
  info.k = k;
  info.model_fingerprint = "model-abc";
  return info;
}

// An SAE directory with layers {0, 5}, d_in 16, 64 latents, k 4.
void make_sae(const std::filesystem::path& dir) {
  save_sae(dir, info_for({0, 5}, 16, 64, 4),
           {{0, random_weights(64, 16, 1)}, {5, random_weights(64, 16, 2)}});
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const s3::Error& e) {
    return e.what();
  }
  return "";
}

TEST(TensorIo, RoundTripsDtypes) {
  TempDir dir;
  at::Generator gen = at::detail::createCPUGenerator(3);
  std::map<std::string, at::Tensor> t = {
      {"f32", at::randn({3, 5}, gen, at::kFloat)},
      {"bf16", at::randn({7}, gen, at::kFloat).to(at::kBFloat16)},
      {"f16", at::randn({2, 2, 2}, gen, at::kFloat).to(at::kHalf)},
      {"f64", at::randn({4}, gen, at::kDouble)},
      {"i64", at::arange(-5, 5, at::kLong)},
      {"i32", at::arange(0, 9, at::kInt).view({3, 3})},
      {"u8", at::arange(0, 200, 7, at::kByte)},
      {"bool", at::arange(0, 6, at::kLong) % 2 == 0},
      {"strided", at::arange(0, 12, at::kFloat).view({3, 4}).t()},  // non-contiguous
  };
  const auto path = dir.path() / "t.safetensors";
  save_tensors(path, t, {{"hello", "world"}});
  const auto back = load_tensors(path);
  ASSERT_EQ(back.size(), t.size());
  for (const auto& [name, v] : t) {
    EXPECT_EQ(back.at(name).scalar_type(), v.scalar_type()) << name;
    EXPECT_TRUE(at::equal(back.at(name), v.contiguous())) << name;
  }
  EXPECT_EQ(SafetensorsFile::open(path).metadata().at("hello"), "world");
}

TEST(Weights, SaveAndLoadDirectory) {
  TempDir dir;
  make_sae(dir.path());
  SaeExpect expect;
  expect.d_in = 16;
  expect.model_fingerprint = "model-abc";
  const Sae sae = load_sae(dir.path(), expect);
  EXPECT_EQ(sae.info.layers, (std::vector<int>{0, 5}));
  ASSERT_EQ(sae.layers.size(), 2u);
  EXPECT_TRUE(at::equal(sae.layers.at(5).W_enc, random_weights(64, 16, 2).W_enc));
  EXPECT_EQ(sae.fingerprint.size(), 32u);
  // Stable fingerprint; a subset of layers is allowed.
  EXPECT_EQ(load_sae(dir.path()).fingerprint, sae.fingerprint);
  SaeExpect one;
  one.layers = {5};
  EXPECT_EQ(load_sae(dir.path(), one).layers.size(), 1u);
  // The layer file metadata records what it is.
  const auto f = SafetensorsFile::open(layer_path(dir.path(), 5));
  EXPECT_EQ(f.metadata().at("format"), "s3attn-sae-layer");
  EXPECT_EQ(f.metadata().at("layer"), "5");
}

TEST(Weights, WrongDinForTheModel) {
  TempDir dir;
  make_sae(dir.path());
  SaeExpect expect;
  expect.d_in = 128;
  expect.d_in_source = "head_dim of the model";
  const std::string msg = error_of([&] { load_sae(dir.path(), expect); });
  EXPECT_NE(msg.find("expects d_in 16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model gives 128"), std::string::npos) << msg;
}

TEST(Weights, FingerprintMismatch) {
  TempDir dir;
  make_sae(dir.path());
  SaeExpect expect;
  expect.model_fingerprint = "other-model";
  const std::string msg = error_of([&] { load_sae(dir.path(), expect); });
  EXPECT_NE(msg.find("trained on model model-abc"), std::string::npos) << msg;
}

// An export of the same weights in another dtype has another fingerprint: the SAE lists it.
TEST(Weights, CompatibleFingerprints) {
  TempDir dir;
  SaeInfo info = info_for({0, 5}, 16, 64, 4);
  info.compatible_model_fingerprints = {"model-abc-float32"};
  save_sae(dir.path(), info, {{0, random_weights(64, 16, 1)}, {5, random_weights(64, 16, 2)}});
  SaeExpect expect;
  expect.model_fingerprint = "model-abc-float32";
  EXPECT_EQ(load_sae(dir.path(), expect).layers.size(), 2u);
  expect.model_fingerprint = "model-abc";
  EXPECT_EQ(load_sae(dir.path(), expect).layers.size(), 2u);
  expect.model_fingerprint = "model-xyz";
  EXPECT_NE(error_of([&] { load_sae(dir.path(), expect); }).find("trained on model model-abc"),
            std::string::npos);
}

TEST(Weights, MissingDirectoryLayerOrFile) {
  TempDir dir;
  EXPECT_NE(error_of([&] { load_sae(dir.path() / "nope"); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_sae(dir.path()); }).find("sae.json"), std::string::npos);
  make_sae(dir.path());
  SaeExpect want7;
  want7.layers = {7};
  EXPECT_NE(error_of([&] { load_sae(dir.path(), want7); }).find("no layer 7 (it has 0,5)"),
            std::string::npos);
  std::filesystem::remove(layer_path(dir.path(), 5));
  const std::string msg = error_of([&] { load_sae(dir.path()); });
  EXPECT_NE(msg.find("layer_5.safetensors: SAE layer file is missing"), std::string::npos) << msg;
}

TEST(Weights, CorruptedLayerFile) {
  TempDir dir;
  make_sae(dir.path());
  const auto file = layer_path(dir.path(), 0);
  {  // Overwrite the header length with garbage.
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t len = 1ull << 40;
    f.write(reinterpret_cast<const char*>(&len), 8);
  }
  try {
    load_sae(dir.path());
    FAIL();
  } catch (const s3::DataCorruption& e) {
    EXPECT_EQ(e.path(), file.string());
    EXPECT_NE(std::string(e.what()).find("header length"), std::string::npos) << e.what();
  }
  {  // Valid file, but the shapes disagree with sae.json.
    save_layer(file, random_weights(32, 16, 3));
  }
  try {
    load_sae(dir.path());
    FAIL();
  } catch (const s3::DataCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("32 latents but sae.json says d_latent 64"),
              std::string::npos)
        << e.what();
  }
  {  // A tensor is missing.
    save_tensors(file, {{"W_enc", at::zeros({64, 16})}});
  }
  EXPECT_NE(error_of([&] { load_sae(dir.path()); }).find("missing tensor 'b_enc'"),
            std::string::npos);
}

TEST(Weights, KLargerThanLatents) {
  TempDir dir;
  EXPECT_THROW(save_sae(dir.path(), info_for({0}, 16, 8, 9), {{0, random_weights(8, 16, 1)}}),
               s3::DataCorruption);
}

TEST(Weights, InconsistentTensors) {
  SaeWeights w = random_weights(8, 4, 1);
  w.b_dec = at::zeros({5});
  EXPECT_NE(error_of([&] { w.check("w"); }).find("b_dec must be [4]"), std::string::npos);
  TempDir dir;
  EXPECT_THROW(save_sae(dir.path(), info_for({0}, 16, 8, 2), {{0, random_weights(8, 4, 1)}}),
               s3::Error);
}

}  // namespace
