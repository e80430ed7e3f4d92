#include "core/runtime/model.h"

#include <ATen/Context.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/runtime/jit_exception.h>
#include <torch/script.h>

#include <string_view>

#include "core/base/error.h"
#include "core/base/error_text.h"
#include "core/runtime/model_torch.h"
#include "core/runtime/torch_util.h"

namespace s3 {

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

const ModelInfo& Model::info() const {
  return impl_->info;
}
const Tokenizer& Model::tokenizer() const {
  return impl_->tokenizer;
}
const DeviceSpec& Model::device() const {
  return impl_->device;
}
DType Model::dtype() const {
  return impl_->dtype;
}

Model Model::load(const std::filesystem::path& dir, const ModelLoadOptions& options) {
  ModelInfo info = ModelInfo::load(dir);
  options.device.require_available();
  const DType dtype = options.dtype.value_or(info.dtype);
  Tokenizer tokenizer = Tokenizer::from_file(info.tokenizer_file());
  // Every id the tokenizer can produce must have an embedding row.
  if (tokenizer.vocab_size() > info.vocab_size)
    throw DataCorruption(
        (dir / "model.json").string(),
        "vocab_size " + std::to_string(info.vocab_size) + " is smaller than the tokenizer's " +
            std::to_string(tokenizer.vocab_size()) + " ids (" + info.tokenizer_file().string() +
            "); re-export the model with scripts/export_model.py");

  // The profiling executor re-optimizes graphs over the first calls and per new input shape,
  // which costs seconds per call in a prefill/decode loop; the plain executor runs the scripted
  // graph as is (the heavy work is in ATen kernels: matmul, SDPA).
  torch::jit::getProfilingMode() = false;
  torch::jit::getExecutorMode() = false;
  torch::jit::setGraphExecutorOptimize(false);
  // cuDNN's SDPA builds a new execution graph for every new key length, i.e. at every decode step
  // of a fresh process (about 8 ms per layer call on an H200); flash / memory-efficient attention
  // need no such warm-up (docs/model-format.md, CUDA runtime settings).
  if (options.device.is_cuda()) at::globalContext().setSDPUseCuDNN(false);
  const c10::Device device = to_torch_device(options.device);
  torch::jit::Module module;
  try {
    module = torch::jit::load(info.model_file().string(), device);
  } catch (const c10::Error& e) {
    // A full device fails here too: say so, rather than blame the file.
    const std::string cause = first_line(e.what_without_backtrace());
    if (is_out_of_memory(e.what()))
      throw Error(info.model_file().string() + ": out of device memory while loading the model (" +
                  cause + ")");
    throw DataCorruption(
        info.model_file().string(),
        "cannot be loaded as TorchScript (corrupted or not made by scripts/export_model.py; "
        "LibTorch said: " +
            cause + "); re-export the model");
  }
  for (const char* method : {"forward", "tap", "new_cache", "prefill", "decode"}) {
    if (!module.find_method(method))
      throw DataCorruption(info.model_file().string(),
                           std::string("has no method '") + method +
                               "'; re-export it with this version's scripts/export_model.py");
  }
  module.eval();
  // Only parameters change dtype: buffers (RoPE's inv_freq) stay float32 by contract.
  const c10::ScalarType target = to_torch_dtype(dtype);
  if (dtype != info.dtype) {
    torch::NoGradGuard no_grad;
    for (auto param : module.parameters())
      param.set_data(param.to(target));
  }
  auto impl = std::make_unique<Impl>(Impl{std::move(info), std::move(tokenizer), options.device,
                                          dtype, device, std::move(module), nullptr});
  return Model(std::move(impl));
}

namespace {

// One line of a LibTorch message. The TorchScript interpreter's start with "The following
// operation failed in the TorchScript interpreter." and a traceback; the error itself is the last
// non-empty line.
std::string one_line(std::string_view msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
    msg.remove_suffix(1);
  if (msg.starts_with("The following operation failed in the TorchScript interpreter")) {
    if (const size_t nl = msg.rfind('\n'); nl != std::string_view::npos) msg.remove_prefix(nl + 1);
  } else if (const size_t nl = msg.find('\n'); nl != std::string_view::npos) {
    msg = msg.substr(0, nl);
  }
  return std::string(msg);
}

// Runs a TorchScript method, turning LibTorch's exceptions into one-line s3::Errors.
template <typename F>
auto guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const c10::OutOfMemoryError&) {
    throw Error(std::string(what) +
                ": out of device memory (try a shorter input, --chunk, or another --dtype)");
  } catch (const c10::Error& e) {
    // The TorchScript interpreter re-throws a device OOM as a plain error with its trace.
    if (is_out_of_memory(e.what()))
      throw Error(std::string(what) +
                  ": out of device memory (try a shorter input, --chunk, or another --dtype)");
    throw Error(std::string(what) + " failed: " + one_line(e.what_without_backtrace()));
  } catch (const torch::jit::JITException& e) {
    if (is_out_of_memory(e.what()))
      throw Error(std::string(what) +
                  ": out of device memory (try a shorter input, --chunk, or another --dtype)");
    throw Error(std::string(what) + " failed: " + one_line(e.what()));
  }
}

}  // namespace

torch::Tensor forward_logits(const Model& model, const torch::Tensor& input_ids) {
  torch::NoGradGuard no_grad;
  return guarded("forward", [&] {
    return model.impl().module.forward({input_ids}).toTensor().to(torch::kFloat);
  });
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> tap(const Model& model,
                                                         const torch::Tensor& input_ids,
                                                         const std::vector<int64_t>& layers,
                                                         bool rope) {
  torch::NoGradGuard no_grad;
  return guarded("tap", [&] {
    auto out = model.impl().module.get_method("tap")({input_ids, c10::List<int64_t>(layers), rope});
    std::vector<std::pair<torch::Tensor, torch::Tensor>> result;
    for (const auto& item : out.toList()) {
      auto tuple = item.get().toTuple();
      result.emplace_back(tuple->elements()[0].toTensor(), tuple->elements()[1].toTensor());
    }
    return result;
  });
}

KvCache new_cache(const Model& model, int64_t batch, int64_t max_len) {
  return guarded("allocating the KV cache", [&] {
    auto out = model.impl().module.get_method("new_cache")({batch, max_len}).toTuple();
    return KvCache{out->elements()[0].toTensor(), out->elements()[1].toTensor()};
  });
}

torch::Tensor prefill(const Model& model, const torch::Tensor& input_ids, KvCache& cache,
                      int64_t start) {
  torch::NoGradGuard no_grad;
  return guarded("prefill", [&] {
    return model.impl()
        .module.get_method("prefill")({input_ids, cache.k, cache.v, start})
        .toTensor();
  });
}

torch::Tensor decode(const Model& model, const torch::Tensor& token, KvCache& cache, int64_t pos) {
  torch::NoGradGuard no_grad;
  return guarded("decode", [&] {
    return model.impl().module.get_method("decode")({token, cache.k, cache.v, pos}).toTensor();
  });
}

torch::Tensor ids_tensor(const Model& model, const std::vector<int32_t>& ids) {
  // An id without an embedding row would fail deep inside model.ts with a TorchScript trace.
  const int32_t vocab = model.info().vocab_size;
  for (const int32_t id : ids)
    if (id < 0 || id >= vocab)
      throw Error("token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                  std::to_string(vocab) + " ids (" + model.info().dir.string() + ")");
  auto cpu =
      torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1});
  const c10::Device device = model.impl().torch_device;
  // From pinned memory the copy is queued without waiting for the device (the caching host
  // allocator keeps the buffer until the copy is done), so the caller can queue the next work.
  if (device.is_cuda()) return cpu.pin_memory().to(device, /*non_blocking=*/true);
  return cpu.to(device);
}

}  // namespace s3
