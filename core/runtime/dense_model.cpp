#include "core/runtime/dense_model.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/base/error_text.h"
#include "core/base/file_read.h"
#include "core/runtime/model_info.h"
#include "core/runtime/torch_util.h"

namespace s3 {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kFormatVersion = 1;

template <typename T>
T required(const json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    throw DataCorruption(path, std::string("missing field '") + key + "'");
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw DataCorruption(path, std::string("field '") + key + "' has the wrong type");
  }
}

}  // namespace

DenseModelInfo DenseModelInfo::load(const fs::path& dir) {
  const std::string fix =
      "; install one with scripts/get_model.sh all-minilm-l6-v2 or scripts/export_embedding.py";
  if (!fs::exists(dir))
    throw Error("embedding model directory " + dir.string() + " does not exist" + fix);
  if (!fs::is_directory(dir))
    throw Error(dir.string() + " is not a directory (expected an embedding model directory)" + fix);
  const fs::path meta = dir / "embedding.json";
  const std::string path = meta.string();
  if (!fs::exists(meta)) {
    const bool llm = fs::exists(dir / "model.json");
    throw Error(dir.string() + " is not an embedding model directory (no embedding.json" +
                (llm ? "; it holds a language model, not a sentence encoder" : "") + ")" + fix);
  }
  json j;
  try {
    j = json::parse(read_regular_file(meta, kMaxModelJsonBytes, "embedding.json"));
  } catch (const json::exception&) {
    throw DataCorruption(path,
                         "not valid JSON; re-export the model with scripts/export_embedding.py");
  }
  if (!j.is_object() || j.value("format", "") != "s3attn-embedding")
    throw DataCorruption(path,
                         "not an s3attn embedding.json (format field is not 's3attn-embedding')");
  const int version = required<int>(j, "format_version", path);
  if (version != kFormatVersion)
    throw DataCorruption(path, "format_version " + std::to_string(version) +
                                   " is not supported (this s3attn reads version " +
                                   std::to_string(kFormatVersion) + "); re-export the model");
  DenseModelInfo m;
  m.dir = dir;
  m.name = j.value("name", dir.filename().string());
  m.architecture = required<std::string>(j, "architecture", path);
  const auto dtype = required<std::string>(j, "dtype", path);
  const std::optional<DType> parsed_dtype = parse_dtype(dtype);
  if (!parsed_dtype) throw DataCorruption(path, "unknown dtype '" + dtype + "'");
  m.dtype = *parsed_dtype;
  m.dim = required<int>(j, "dim", path);
  m.max_seq_length = required<int>(j, "max_seq_length", path);
  m.cls_token_id = required<int32_t>(j, "cls_token_id", path);
  m.sep_token_id = required<int32_t>(j, "sep_token_id", path);
  m.pad_token_id = required<int32_t>(j, "pad_token_id", path);
  m.fingerprint = required<std::string>(j, "fingerprint", path);
  const std::string pooling = required<std::string>(j, "pooling", path);
  if (m.architecture != "bert")
    throw DataCorruption(path, "architecture '" + m.architecture + "' is not supported (bert)");
  if (pooling != "mean" || !required<bool>(j, "normalize", path))
    throw DataCorruption(path, "only mean pooling with normalisation is supported");
  if (m.dim <= 0 || m.dim > 65536) throw DataCorruption(path, "dim out of range");
  if (m.max_seq_length < 3) throw DataCorruption(path, "max_seq_length must be at least 3");
  for (const fs::path& f : {m.model_file(), m.tokenizer_file()})
    if (!fs::exists(f))
      throw Error(dir.string() + " has no " + f.filename().string() +
                  "; re-export it with scripts/export_embedding.py");
  return m;
}

json DenseModelInfo::identity() const {
  return {{"name", name},
          {"fingerprint", fingerprint},
          {"dim", dim},
          {"max_seq_length", max_seq_length}};
}

struct DenseEncoder::Impl {
  DenseModelInfo info;
  Tokenizer tokenizer;
  c10::Device device{c10::kCPU};
  int64_t batch_tokens = 0;
  mutable torch::jit::Module module;
};

DenseEncoder::DenseEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DenseEncoder::DenseEncoder(DenseEncoder&&) noexcept = default;
DenseEncoder& DenseEncoder::operator=(DenseEncoder&&) noexcept = default;
DenseEncoder::~DenseEncoder() = default;

const DenseModelInfo& DenseEncoder::info() const {
  return impl_->info;
}
const Tokenizer& DenseEncoder::tokenizer() const {
  return impl_->tokenizer;
}

DenseEncoder DenseEncoder::load(const fs::path& dir, const DeviceSpec& device,
                                int64_t batch_tokens) {
  DenseModelInfo info = DenseModelInfo::load(dir);
  device.require_available();
  Tokenizer tokenizer = Tokenizer::from_file(info.tokenizer_file());
  for (const auto& [name, id] :
       {std::pair{"cls_token_id", info.cls_token_id}, std::pair{"sep_token_id", info.sep_token_id},
        std::pair{"pad_token_id", info.pad_token_id}}) {
    if (id < 0 || id >= tokenizer.vocab_size()) {
      throw DataCorruption((dir / "embedding.json").string(),
                           std::string(name) + " " + std::to_string(id) +
                               " is outside the tokenizer's vocabulary (" +
                               std::to_string(tokenizer.vocab_size()) + " ids)");
    }
  }
  // The plain executor, as for the language model (core/runtime/model.cpp): no re-profiling per
  // shape.
  torch::jit::getProfilingMode() = false;
  torch::jit::getExecutorMode() = false;
  torch::jit::setGraphExecutorOptimize(false);
  const c10::Device torch_device = to_torch_device(device);
  torch::jit::Module module;
  try {
    module = torch::jit::load(info.model_file().string(), torch_device);
  } catch (const c10::Error& e) {
    // A full device fails here too: say so, rather than blame the file.
    if (is_out_of_memory(e.what()))
      throw Error(info.model_file().string() +
                  ": out of device memory while loading the dense model (" +
                  first_line(e.what_without_backtrace()) + ")");
    throw DataCorruption(info.model_file().string(),
                         "cannot be loaded as TorchScript (corrupted or not made by "
                         "scripts/export_embedding.py); re-export it");
  }
  if (!module.find_method("forward"))
    throw DataCorruption(info.model_file().string(),
                         "has no forward method; re-export it with scripts/export_embedding.py");
  module.eval();
  auto impl = std::make_unique<Impl>(Impl{std::move(info), std::move(tokenizer), torch_device,
                                          std::max<int64_t>(batch_tokens, 1), std::move(module)});
  return DenseEncoder(std::move(impl));
}

namespace {

// [CLS] + the text's tokens cut to max_seq_length - 2 + [SEP]; says whether it cut.
std::vector<int32_t> model_input(const DenseModelInfo& info, const Tokenizer& tokenizer,
                                 std::string_view text, bool* truncated) {
  const std::vector<int32_t> body = tokenizer.encode(text);
  const size_t keep = std::min(body.size(), static_cast<size_t>(info.max_seq_length - 2));
  if (truncated) *truncated = keep < body.size();
  std::vector<int32_t> ids;
  ids.reserve(keep + 2);
  ids.push_back(info.cls_token_id);
  ids.insert(ids.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(info.sep_token_id);
  return ids;
}

}  // namespace

std::vector<int32_t> DenseEncoder::input_ids(std::string_view text) const {
  return model_input(impl_->info, impl_->tokenizer, text, nullptr);
}

std::vector<float> DenseEncoder::embed(std::span<const std::string_view> texts,
                                       DenseStats* stats) const {
  const Impl& s = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  const auto dim = static_cast<size_t>(s.info.dim);
  std::vector<float> out(texts.size() * dim);
  std::vector<std::vector<int32_t>> inputs(texts.size());
  DenseStats local;
  for (size_t i = 0; i < texts.size(); ++i) {
    bool truncated = false;
    inputs[i] = model_input(s.info, s.tokenizer, texts[i], &truncated);
    local.tokens += inputs[i].size();
    local.truncated += truncated ? 1 : 0;
  }
  // Longest first, so each batch pads to its first text; a batch holds at most batch_tokens padded
  // tokens (and always one text).
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].size() > inputs[b].size(); });
  torch::NoGradGuard no_grad;
  for (size_t first = 0; first < order.size();) {
    const auto width = static_cast<int64_t>(inputs[order[first]].size());
    const auto rows = static_cast<size_t>(std::max<int64_t>(1, s.batch_tokens / width));
    const size_t last = std::min(order.size(), first + rows);
    const auto n = static_cast<int64_t>(last - first);
    torch::Tensor ids = torch::full({n, width}, s.info.pad_token_id, torch::kLong);
    torch::Tensor mask = torch::zeros({n, width}, torch::kLong);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < n; ++r) {
      const std::vector<int32_t>& in = inputs[order[first + static_cast<size_t>(r)]];
      for (size_t t = 0; t < in.size(); ++t) {
        ids_a[r][static_cast<int64_t>(t)] = in[t];
        mask_a[r][static_cast<int64_t>(t)] = 1;
      }
    }
    torch::Tensor emb;
    try {
      emb = s.module.forward({ids.to(s.device), mask.to(s.device)})
                .toTensor()
                .to(torch::kCPU, torch::kFloat)
                .contiguous();
    } catch (const c10::OutOfMemoryError&) {
      throw Error(
          "embedding passages: out of device memory (the dense model's batch is too large)");
    } catch (const c10::Error& e) {
      std::string msg = e.what_without_backtrace();
      if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
      throw Error("embedding passages failed: " + msg);
    }
    if (emb.dim() != 2 || emb.size(0) != n || emb.size(1) != static_cast<int64_t>(dim))
      throw DataCorruption(s.info.model_file().string(),
                           "returned embeddings of another shape than embedding.json's dim");
    const float* e = emb.data_ptr<float>();
    for (int64_t r = 0; r < n; ++r)
      std::copy(
          e + r * static_cast<int64_t>(dim), e + (r + 1) * static_cast<int64_t>(dim),
          out.begin() + static_cast<std::ptrdiff_t>(order[first + static_cast<size_t>(r)] * dim));
    ++local.batches;
    first = last;
  }
  local.texts = texts.size();
  local.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats) {
    stats->texts += local.texts;
    stats->tokens += local.tokens;
    stats->truncated += local.truncated;
    stats->batches += local.batches;
    stats->seconds += local.seconds;
  }
  return out;
}

}  // namespace s3
