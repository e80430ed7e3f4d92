#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/pipeline/tapped_sae_torch.h"

namespace s3 {

std::shared_ptr<const TappedSae> load_tapped_sae(const Model& model,
                                                 const std::filesystem::path& sae_dir,
                                                 const ScanOptions& options) {
  options.validate();
  const ModelInfo& info = model.info();
  const sae::SaeInfo sae_info = sae::read_sae_info(sae::sae_info_path(sae_dir));
  std::vector<int> layers = options.layers.empty() ? sae_info.layers : options.layers;
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  for (int l : layers) {
    if (l >= info.n_layers)
      throw UsageError("--layers: layer " + std::to_string(l) + " does not exist (the model has " +
                       std::to_string(info.n_layers) + ")");
    if (std::find(sae_info.layers.begin(), sae_info.layers.end(), l) == sae_info.layers.end())
      throw Error("the SAE in " + sae_dir.string() + " has no layer " + std::to_string(l) +
                  " (it has layers " + nlohmann::json(sae_info.layers).dump() + ")");
  }
  sae::SaeExpect expect;
  expect.d_in = sae::expected_d_in(sae_info.head_mode, info.n_kv_heads, info.head_dim);
  expect.d_in_source = "the key width of model " + info.dir.string();
  expect.model_fingerprint = info.fingerprint;
  expect.layers = layers;
  sae::Sae sae = sae::load_sae(sae_dir, expect);

  sae::EncoderOptions encoder_options;
  encoder_options.device = model.device().name;
  encoder_options.dtype = options.sae_dtype;
  encoder_options.bitmap = options.sae_bitmap;
  encoder_options.validate();
  std::vector<sae::Encoder> encoders;
  for (int l : layers)
    encoders.emplace_back(sae.layers.at(l), sae.info.k, encoder_options);

  const bool bos = chunk_starts_with_bos(options.chunk_bos, info);
  if (bos && !info.bos_token_id) throw Error("--chunk-bos: the model has no BOS token");
  return std::make_shared<const TappedSae>(
      TappedSae{model, std::move(sae), std::move(layers), std::move(encoders), bos, options.rope});
}

}  // namespace s3
