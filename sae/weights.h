// SAE weights of one layer and whole SAE directories (sae.json + layer_<L>.safetensors).
//
// Shapes (the same on disk and in memory; F = d_latent, D = d_in):
//   W_enc [F, D]   encoder rows
//   b_enc [F]
//   W_dec [F, D]   decoder rows (dictionary directions), unit L2 norm
//   b_dec [D]      pre-bias, subtracted before encoding, added after decoding
//   z = TopK(ReLU(W_enc (x - b_dec) + b_enc)),  x_hat = W_dec^T z + b_dec
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sae/sae_info.h"

namespace s3::sae {

struct SaeWeights {
  at::Tensor W_enc;
  at::Tensor b_enc;
  at::Tensor W_dec;
  at::Tensor b_dec;

  int64_t d_in() const;
  int64_t d_latent() const;
  // Throws s3::Error("<what>: ...") unless the four tensors are defined, floating point, of one
  // dtype and device, and of consistent shapes.
  void check(const std::string& what) const;
  // A copy (or the same tensors when already there) on `device` in `dtype`.
  SaeWeights to(const at::Device& device, at::ScalarType dtype) const;
};

// Writes one layer file atomically; the tensors keep their dtype. `metadata` goes into the
// safetensors "__metadata__" next to format/d_in/d_latent entries.
void save_layer(const std::filesystem::path& file, const SaeWeights& weights,
                const std::map<std::string, std::string>& metadata = {});
// Reads one layer file as CPU tensors; d_in / d_latent > 0 are checked against the shapes
// (s3::DataCorruption naming the file).
SaeWeights load_layer(const std::filesystem::path& file, int64_t d_in = 0, int64_t d_latent = 0);

// What a caller knows about the SAE it needs; zero / empty fields are not checked.
struct SaeExpect {
  int64_t d_in = 0;               // the model's input width under the SAE's head mode
  std::string d_in_source;        // e.g. "head_dim of model X" (for the message)
  std::string model_fingerprint;  // the model's fingerprint
  std::vector<int> layers;        // layers to load (must all be present); empty = all
};

struct Sae {
  std::filesystem::path dir;
  SaeInfo info;
  std::map<int, SaeWeights> layers;  // CPU tensors in the files' dtype
  std::string fingerprint;           // hex xxh3-128 of sae.json and the loaded layer files
};

// Loads and validates an SAE directory. Errors (s3::Error / s3::DataCorruption) say what is
// wrong and what to do: missing directory or layer file, wrong d_in for the model, fingerprint
// mismatch, corrupted files, shapes that disagree with sae.json.
Sae load_sae(const std::filesystem::path& dir, const SaeExpect& expect = {});
// Creates `dir` if needed, writes every layer file, then sae.json last (an SAE directory without
// sae.json is incomplete). info.layers must equal the keys of `layers`.
void save_sae(const std::filesystem::path& dir, const SaeInfo& info,
              const std::map<int, SaeWeights>& layers);

}  // namespace s3::sae
