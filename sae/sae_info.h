// sae.json: what an SAE directory holds and how it was made (no LibTorch). Format: docs/sae.md.
//
//   SAE_DIR/sae.json                 this struct
//   SAE_DIR/layer_<L>.safetensors    W_enc [d_latent, d_in], b_enc [d_latent],
//                                    W_dec [d_latent, d_in] (unit-norm rows), b_dec [d_in]
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sae/options.h"

namespace s3::sae {

struct LayerStats {
  std::optional<double> fvu;            // fraction of variance unexplained on the training stream
  std::optional<double> dead_fraction;  // latents dead at the end of training
};

// sae.json files larger than this are refused before they are parsed (a real one is a few KiB).
inline constexpr uint64_t kMaxSaeJsonBytes = uint64_t{16} << 20;

struct SaeInfo {
  static constexpr int kFormatVersion = 1;

  int format_version = kFormatVersion;
  std::vector<int> layers;  // tapped layers, one layer file each, ascending
  int64_t d_in = 0;
  int64_t d_latent = 0;
  int64_t k = 0;
  HeadMode head_mode = HeadMode::kPerHead;
  std::string model_fingerprint;  // model.json's fingerprint of the model it was trained on
  // Fingerprints of other exports of the same weights (the same GGUF or checkpoint in another
  // dtype), which the SAE serves as well: a model matches either list (docs/sae.md §6).
  std::vector<std::string> compatible_model_fingerprints;
  s3::DType dtype = s3::DType::kFloat32;  // dtype of the layer files' tensors
  // Training provenance.
  std::string corpus;   // human-readable description of the training text
  int64_t tokens = 0;   // corpus tokens read
  int64_t vectors = 0;  // vectors each layer's SAE was trained on
  int64_t steps = 0;    // optimizer steps per layer
  TrainerOptions training;
  std::map<int, LayerStats> stats;

  // Throws s3::DataCorruption(path, ...) when fields are inconsistent (k > d_latent, no layers...).
  void validate(const std::string& path) const;
};

// SAE_DIR/sae.json and SAE_DIR/layer_<L>.safetensors.
std::filesystem::path sae_info_path(const std::filesystem::path& dir);
std::filesystem::path layer_path(const std::filesystem::path& dir, int layer);

// Throws s3::Error when missing, s3::DataCorruption when malformed or of a newer format version.
SaeInfo read_sae_info(const std::filesystem::path& file);
// Validates, then writes atomically.
void write_sae_info(const std::filesystem::path& file, const SaeInfo& info);
std::string sae_info_to_json_string(const SaeInfo& info);

}  // namespace s3::sae
