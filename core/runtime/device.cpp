#include "core/runtime/device.h"

#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include <regex>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/runtime/torch_util.h"

namespace s3 {

DeviceSpec DeviceSpec::parse(const std::string& text) {
  static const std::regex kPattern("cpu|cuda(:[0-9]+)?");
  if (!std::regex_match(text, kPattern))
    throw UsageError("--device: '" + text + "' is not a device (use cpu, cuda or cuda:N)");
  return DeviceSpec{text};
}

void DeviceSpec::require_available() const {
  if (!is_cuda()) return;
  const int count = static_cast<int>(c10::cuda::device_count());
  if (count == 0)
    throw Error("--device " + name +
                ": no CUDA GPU is available on this machine (use --device cpu)");
  const int index = to_torch_device(*this).has_index() ? to_torch_device(*this).index() : 0;
  if (index >= count)
    throw Error("--device " + name + ": only " + std::to_string(count) + " CUDA device(s) present");
}

DeviceSpec DeviceSpec::for_local_rank(int local_rank) const {
  if (name != "cuda") return *this;
  const int count = static_cast<int>(c10::cuda::device_count());
  if (count == 0) return *this;  // require_available() names the problem
  return DeviceSpec{"cuda:" + std::to_string(local_rank % count)};
}

void DeviceSpec::make_current() const {
  if (!is_cuda()) return;
  const c10::Device device = to_torch_device(*this);
  if (device.has_index()) c10::cuda::set_device(device.index());
}

c10::Device to_torch_device(const DeviceSpec& device) {
  return c10::Device(device.name);
}

c10::ScalarType to_torch_dtype(DType dtype) {
  return dtype_select(dtype, c10::kFloat, c10::kBFloat16, c10::kHalf);
}

std::string device_name(const DeviceSpec& device) {
  if (!device.is_cuda()) return "cpu";
  const c10::Device d = to_torch_device(device);
  return at::cuda::getDeviceProperties(d.has_index() ? d.index() : c10::cuda::current_device())
      ->name;
}

void synchronize(const DeviceSpec& device) {
  if (device.is_cuda()) c10::cuda::device_synchronize();
}

long long peak_device_memory(const DeviceSpec& device) {
  if (!device.is_cuda()) return 0;
  const auto index = to_torch_device(device).has_index() ? to_torch_device(device).index() : 0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
  using c10::CachingDeviceAllocator::StatType;
  return stats.allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)].peak;
}

void reset_peak_device_memory(const DeviceSpec& device) {
  if (!device.is_cuda()) return;
  const auto index = to_torch_device(device).has_index() ? to_torch_device(device).index() : 0;
  c10::cuda::CUDACachingAllocator::resetPeakStats(index);
}

}  // namespace s3
