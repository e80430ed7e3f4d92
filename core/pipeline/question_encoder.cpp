#include "core/pipeline/question_encoder.h"

#include <vector>

#include "core/base/error.h"
#include "core/pipeline/tapped_sae_torch.h"
#include "core/runtime/model_torch.h"

namespace s3 {

QuestionEncoder::QuestionEncoder(const Model& model, const std::filesystem::path& sae_dir,
                                 const ScanOptions& options)
    : sae_(load_tapped_sae(model, sae_dir, options)) {}

QuestionEncoder::QuestionEncoder(const Scanner& scanner) : sae_(scanner.tapped_sae()) {}

const std::string& QuestionEncoder::sae_fingerprint() const {
  return sae_->sae.fingerprint;
}

retrieval::QueryFeatures QuestionEncoder::encode(const std::string& question,
                                                 retrieval::Aggregation aggregation,
                                                 bool keys) const {
  const TappedSae& s = *sae_;
  const ModelInfo& info = s.model.info();
  torch::NoGradGuard no_grad;
  const std::vector<int32_t> ids = s.model.tokenizer().encode(question);
  if (ids.empty()) throw Error("the question has no tokens");
  // One forward pass over the question: it must fit the model's window (its cost grows with the
  // square of its length).
  if (ids.size() > static_cast<size_t>(info.max_position_embeddings))
    throw UsageError("the question has " + std::to_string(ids.size()) +
                     " tokens, more than the model's window of " +
                     std::to_string(info.max_position_embeddings) + " tokens; shorten it");
  std::vector<int32_t> input = ids;
  if (s.chunk_bos) input.insert(input.begin(), *info.bos_token_id);
  const std::vector<int64_t> tap_layers(s.layers.begin(), s.layers.end());
  const auto taps = tap(s.model, ids_tensor(s.model, input), tap_layers, s.rope);
  const int64_t skip = s.chunk_bos ? 1 : 0;
  // Per slot, the encoder's top-k as plain arrays; inactive slots (id -1) carry no activation.
  std::vector<std::vector<uint32_t>> slot_ids(s.layers.size());
  std::vector<std::vector<float>> slot_values(s.layers.size());
  std::vector<retrieval::QueryTopK> topk(s.layers.size());
  for (size_t slot = 0; slot < s.layers.size(); ++slot) {
    const torch::Tensor rows = keys ? sae::sae_rows_from_keys(taps[slot].second[0].slice(0, skip),
                                                              s.sae.info.head_mode)  // [Tq, Hkv, D]
                                    : sae::sae_rows_from_queries(taps[slot].first[0].slice(0, skip),
                                                                 info.n_kv_heads,  // [Tq, Hq, D]
                                                                 s.sae.info.head_mode);
    const sae::Encoder::Output code = s.encoders[slot].encode(rows);
    const torch::Tensor code_ids = code.ids.to(torch::kCPU).contiguous();
    const torch::Tensor values = code.values.to(torch::kCPU, torch::kFloat).contiguous();
    const int32_t* id = code_ids.data_ptr<int32_t>();
    const float* value = values.data_ptr<float>();
    std::vector<uint32_t>& out_ids = slot_ids[slot];
    std::vector<float>& out_values = slot_values[slot];
    out_ids.resize(static_cast<size_t>(code_ids.numel()));
    out_values.resize(out_ids.size());
    for (size_t i = 0; i < out_ids.size(); ++i) {
      const bool active = id[i] >= 0;
      out_ids[i] = active ? static_cast<uint32_t>(id[i]) : 0;
      out_values[i] = active ? value[i] : 0.0f;
    }
    topk[slot] = {out_ids, out_values, static_cast<size_t>(code_ids.size(-1))};
  }
  return retrieval::aggregate_query(topk, aggregation);
}

}  // namespace s3
