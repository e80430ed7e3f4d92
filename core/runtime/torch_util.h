// Conversions between s3attn's plain types and LibTorch's. Only core/ and sae/ sources include it.
#pragma once

#include <torch/script.h>

#include <string>

#include "core/runtime/device.h"

namespace s3 {

c10::Device to_torch_device(const DeviceSpec& device);
c10::ScalarType to_torch_dtype(DType dtype);

}  // namespace s3
