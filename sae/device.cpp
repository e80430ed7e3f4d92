#include "sae/device.h"

#include <torch/cuda.h>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "sae/options.h"

namespace s3::sae {

c10::Device resolve_device(const std::string& name) {
  validate_device(name);
  if (name == "cpu") return c10::Device(c10::kCPU);
  const int index = name == "cuda" ? 0 : std::stoi(name.substr(5));
  const int count = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (count == 0) {
    throw Error("--device " + name + ": no CUDA device is available here (use --device cpu)");
  }
  if (index >= count) {
    throw Error("--device " + name + ": only " + std::to_string(count) +
                " CUDA device(s) are available");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::ScalarType resolve_dtype(const std::optional<s3::DType>& dtype, const c10::Device& device) {
  if (!dtype) return device.is_cuda() ? c10::kBFloat16 : c10::kFloat;
  return dtype_select(*dtype, c10::kFloat, c10::kBFloat16, c10::kHalf);
}

std::string dtype_string(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat:
      return "float32";
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    default:
      return c10::toString(type);
  }
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace s3::sae
