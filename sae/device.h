// Device and dtype names of the options structs -> ATen, with clear errors.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

#include "core/base/dtype.h"

namespace s3::sae {

// "cpu", "cuda", "cuda:N" -> at::Device ("cuda" means cuda:0). Throws s3::UsageError on a bad
// name and s3::Error when CUDA is asked for but absent.
c10::Device resolve_device(const std::string& name);
// "auto" (bfloat16 on CUDA, float32 elsewhere), "float32", "bfloat16", "float16".
c10::ScalarType resolve_dtype(const std::optional<s3::DType>& dtype, const c10::Device& device);
// "float32" | "bfloat16" | "float16" | the ATen name for others.
std::string dtype_string(c10::ScalarType type);
// Waits for the device's queued work (no-op on the CPU).
void synchronize(const c10::Device& device);

}  // namespace s3::sae
