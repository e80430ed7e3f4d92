#include "sae/weights.h"

#include <ATen/ATen.h>
#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/base/error.h"
#include "core/base/file_hash.h"
#include "core/base/file_read.h"
#include "sae/device.h"
#include "sae/safetensors.h"
#include "sae/tensor_io.h"

namespace s3::sae {
namespace {

const char* kTensorNames[] = {"W_enc", "b_enc", "W_dec", "b_dec"};

}  // namespace

int64_t SaeWeights::d_in() const {
  return W_enc.size(1);
}
int64_t SaeWeights::d_latent() const {
  return W_enc.size(0);
}

void SaeWeights::check(const std::string& what) const {
  const at::Tensor* ts[] = {&W_enc, &b_enc, &W_dec, &b_dec};
  for (int i = 0; i < 4; ++i) {
    if (!ts[i]->defined()) throw Error(what + ": " + kTensorNames[i] + " is missing");
    if (!at::isFloatingType(ts[i]->scalar_type())) {
      throw Error(what + ": " + kTensorNames[i] + " is not floating point");
    }
    if (ts[i]->scalar_type() != W_enc.scalar_type() || ts[i]->device() != W_enc.device()) {
      throw Error(what + ": the four tensors must share one dtype and device");
    }
  }
  if (W_enc.dim() != 2)
    throw Error(what + ": W_enc must be [d_latent, d_in], is " + tensor_shape(W_enc));
  const int64_t f = W_enc.size(0), d = W_enc.size(1);
  if (f < 1 || d < 1) throw Error(what + ": W_enc is empty");
  if (b_enc.dim() != 1 || b_enc.size(0) != f) {
    throw Error(what + ": b_enc must be [" + std::to_string(f) + "], is " + tensor_shape(b_enc));
  }
  if (W_dec.dim() != 2 || W_dec.size(0) != f || W_dec.size(1) != d) {
    throw Error(what + ": W_dec must be [" + std::to_string(f) + ", " + std::to_string(d) +
                "] like W_enc, is " + tensor_shape(W_dec));
  }
  if (b_dec.dim() != 1 || b_dec.size(0) != d) {
    throw Error(what + ": b_dec must be [" + std::to_string(d) + "], is " + tensor_shape(b_dec));
  }
}

SaeWeights SaeWeights::to(const at::Device& device, at::ScalarType dtype) const {
  auto conv = [&](const at::Tensor& t) { return t.to(device, dtype).contiguous(); };
  return {conv(W_enc), conv(b_enc), conv(W_dec), conv(b_dec)};
}

void save_layer(const std::filesystem::path& file, const SaeWeights& weights,
                const std::map<std::string, std::string>& metadata) {
  weights.check(file.string());
  SafetensorsWriter writer;
  add_tensor(writer, "W_enc", weights.W_enc);
  add_tensor(writer, "b_enc", weights.b_enc);
  add_tensor(writer, "W_dec", weights.W_dec);
  add_tensor(writer, "b_dec", weights.b_dec);
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "s3attn-sae-layer";
  meta["d_in"] = std::to_string(weights.d_in());
  meta["d_latent"] = std::to_string(weights.d_latent());
  writer.set_metadata(std::move(meta));
  writer.write(file);
}

SaeWeights load_layer(const std::filesystem::path& file, int64_t d_in, int64_t d_latent) {
  const std::string path = file.string();
  if (!std::filesystem::exists(file)) {
    throw Error(path + ": SAE layer file is missing (the SAE directory is incomplete or was " +
                "trained for other layers: retrain, or choose layers it has)");
  }
  const SafetensorsFile st = SafetensorsFile::open(file);
  SaeWeights w{read_tensor(st, "W_enc"), read_tensor(st, "b_enc"), read_tensor(st, "W_dec"),
               read_tensor(st, "b_dec")};
  try {
    w.check("tensors");
  } catch (const Error& e) {
    throw DataCorruption(path, e.what());
  }
  // NaN or infinite weights would turn every code into NaN and every top-k into noise.
  const at::Tensor* tensors[] = {&w.W_enc, &w.b_enc, &w.W_dec, &w.b_dec};
  for (int i = 0; i < 4; ++i) {
    if (!at::isfinite(*tensors[i]).all().item<bool>())
      throw DataCorruption(
          path, std::string(kTensorNames[i]) + " holds NaN or infinite values; retrain the SAE");
  }
  if (d_latent > 0 && w.d_latent() != d_latent) {
    throw DataCorruption(path, "has " + std::to_string(w.d_latent()) +
                                   " latents but sae.json says d_latent " +
                                   std::to_string(d_latent));
  }
  if (d_in > 0 && w.d_in() != d_in) {
    throw DataCorruption(path, "has d_in " + std::to_string(w.d_in()) + " but sae.json says d_in " +
                                   std::to_string(d_in));
  }
  return w;
}

Sae load_sae(const std::filesystem::path& dir, const SaeExpect& expect) {
  if (!std::filesystem::is_directory(dir)) {
    throw Error(dir.string() +
                ": SAE directory does not exist (train one with `s3attn sae train`)");
  }
  Sae sae;
  sae.dir = dir;
  const auto info_file = sae_info_path(dir);
  sae.info = read_sae_info(info_file);
  const SaeInfo& info = sae.info;
  if (expect.d_in > 0 && info.d_in != expect.d_in) {
    throw Error(dir.string() + ": SAE expects d_in " + std::to_string(info.d_in) + " (head mode " +
                std::string(to_string(info.head_mode)) + ") but the model gives " +
                std::to_string(expect.d_in) +
                (expect.d_in_source.empty() ? "" : " (" + expect.d_in_source + ")") +
                ": it was trained for another model or head mode; use a matching SAE or retrain");
  }
  const auto& also = info.compatible_model_fingerprints;
  if (!expect.model_fingerprint.empty() && !info.model_fingerprint.empty() &&
      info.model_fingerprint != expect.model_fingerprint &&
      std::find(also.begin(), also.end(), expect.model_fingerprint) == also.end()) {
    throw Error(dir.string() + ": SAE was trained on model " + info.model_fingerprint +
                " but this model is " + expect.model_fingerprint +
                ": use the SAE trained for this model or retrain");
  }
  std::vector<int> wanted = expect.layers.empty() ? info.layers : expect.layers;
  for (int layer : wanted) {
    if (std::find(info.layers.begin(), info.layers.end(), layer) == info.layers.end()) {
      std::string have;
      for (int l : info.layers)
        have += (have.empty() ? "" : ",") + std::to_string(l);
      throw Error(dir.string() + ": SAE has no layer " + std::to_string(layer) + " (it has " +
                  have + "): choose those layers or train an SAE for them");
    }
  }
  // Fingerprint: sae.json and each loaded layer file, in layer order.
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  auto hash_file = [&](const std::filesystem::path& f) {
    for_each_file_block(f, "SAE file", [&](const char* data, size_t size) {
      XXH3_128bits_update(state, data, size);
    });
  };
  hash_file(info_file);
  try {
    for (int layer : wanted) {
      const auto file = layer_path(dir, layer);
      sae.layers[layer] = load_layer(file, info.d_in, info.d_latent);
      hash_file(file);
    }
  } catch (...) {
    XXH3_freeState(state);
    throw;
  }
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  sae.fingerprint = hex;
  return sae;
}

void save_sae(const std::filesystem::path& dir, const SaeInfo& info,
              const std::map<int, SaeWeights>& layers) {
  info.validate(sae_info_path(dir).string());
  std::vector<int> keys;
  for (const auto& [layer, w] : layers)
    keys.push_back(layer);
  if (keys != info.layers) {
    throw Error(dir.string() + ": save_sae: the weights' layers differ from sae.json's layers");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create directory (" + ec.message() + ")");
  for (const auto& [layer, w] : layers) {
    const auto file = layer_path(dir, layer);
    w.check(file.string());
    if (w.d_in() != info.d_in || w.d_latent() != info.d_latent) {
      throw Error(file.string() + ": weights are " + std::to_string(w.d_latent()) + " x " +
                  std::to_string(w.d_in()) + " but sae.json says " + std::to_string(info.d_latent) +
                  " x " + std::to_string(info.d_in));
    }
    if (dtype_string(w.W_enc.scalar_type()) != s3::dtype_name(info.dtype)) {
      throw Error(file.string() + ": weights are " + dtype_string(w.W_enc.scalar_type()) +
                  " but sae.json says dtype " + std::string(s3::dtype_name(info.dtype)));
    }
    save_layer(file, w, {{"layer", std::to_string(layer)}, {"k", std::to_string(info.k)}});
  }
  write_sae_info(sae_info_path(dir), info);
}

}  // namespace s3::sae
