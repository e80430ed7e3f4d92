#include "core/runtime/aoti_decode.h"

#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <nlohmann/json.hpp>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/base/error_text.h"
#include "core/base/file_read.h"

namespace s3 {
namespace {

constexpr uint64_t kMaxSidecarBytes = uint64_t{1} << 20;

}  // namespace

std::filesystem::path AotiDecode::package_path(const Model& model) {
  const std::string device = model.device().is_cuda() ? "cuda" : "cpu";
  return model.info().dir / "aoti" /
         ("decode-" + device + "-" + std::string(dtype_name(model.dtype())) + ".pt2");
}

AotiDecode::AotiDecode(const Model& model) : device_(model.impl().torch_device) {
  const std::filesystem::path package = package_path(model);
  const std::string how =
      "; make it with scripts/export_aoti.py --model " + model.info().dir.string() + " --device " +
      (device_.is_cuda() ? "cuda" : "cpu") + " --dtype " + std::string(dtype_name(model.dtype()));
  if (!std::filesystem::is_regular_file(package))
    throw Error("--decode-backend aoti: " + package.string() + " is missing" + how);
  std::filesystem::path sidecar = package;
  sidecar.replace_extension(".json");
  bool matches = false;
  try {
    const nlohmann::json meta =
        nlohmann::json::parse(read_regular_file(sidecar, kMaxSidecarBytes, "AOTInductor sidecar"));
    matches = meta.is_object() &&
              meta.value("model_fingerprint", std::string()) == model.info().fingerprint &&
              meta.value("dtype", std::string()) == dtype_name(model.dtype());
  } catch (const nlohmann::json::exception& e) {
    throw DataCorruption(
        sidecar.string(),
        std::string("is not the sidecar of scripts/export_aoti.py (") + e.what() + ")");
  }
  if (!matches)
    throw Error("--decode-backend aoti: " + package.string() +
                " was compiled for another export or dtype of this model" + how);
  try {
    loader_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(package.string());
  } catch (const c10::Error& e) {
    throw Error("--decode-backend aoti: " + package.string() + " cannot be loaded (" +
                first_line(e.what_without_backtrace()) + ")" + how);
  }
}

AotiDecode::~AotiDecode() = default;

torch::Tensor AotiDecode::operator()(const torch::Tensor& token, KvCache& cache,
                                     const torch::Tensor& pos) const {
  void* stream = nullptr;
  if (device_.is_cuda()) stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  std::vector<torch::Tensor> out = loader_->run({token, cache.k, cache.v, pos}, stream);
  return out.at(0);
}

const AotiDecode& aoti_decode(const Model& model) {
  Model::Impl& impl = model.impl();
  if (!impl.aoti) impl.aoti = std::make_shared<const AotiDecode>(model);
  return *impl.aoti;
}

}  // namespace s3
