// LibTorch adapter over sae/safetensors.h: safetensors tensors <-> at::Tensor.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "sae/safetensors.h"

namespace s3::sae {

// Throws s3::Error for dtypes with no counterpart (U16/U32/U64/F8 <-> ATen).
at::ScalarType to_scalar_type(Dtype dtype);
Dtype to_safetensors_dtype(at::ScalarType type);

// An owned, contiguous CPU copy of tensor `name` (s3::DataCorruption when missing).
// "[4096, 8, 128]": a tensor's shape for error messages.
std::string tensor_shape(const at::Tensor& t);

at::Tensor read_tensor(const SafetensorsFile& file, std::string_view name);
// Every tensor of a file.
std::map<std::string, at::Tensor> load_tensors(const std::filesystem::path& path);

// Adds `tensor` (any device, any strides) under `name`; it is copied to a contiguous CPU buffer.
void add_tensor(SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor);
// Writes a whole file atomically.
void save_tensors(const std::filesystem::path& path,
                  const std::map<std::string, at::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace s3::sae
