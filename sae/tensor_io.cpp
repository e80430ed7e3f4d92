#include "sae/tensor_io.h"

#include <sstream>

#include <ATen/ATen.h>

#include <cstring>

#include "core/base/error.h"

namespace s3::sae {

at::ScalarType to_scalar_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::kBool:
      return at::kBool;
    case Dtype::kU8:
      return at::kByte;
    case Dtype::kI8:
      return at::kChar;
    case Dtype::kI16:
      return at::kShort;
    case Dtype::kF16:
      return at::kHalf;
    case Dtype::kBF16:
      return at::kBFloat16;
    case Dtype::kI32:
      return at::kInt;
    case Dtype::kF32:
      return at::kFloat;
    case Dtype::kF64:
      return at::kDouble;
    case Dtype::kI64:
      return at::kLong;
    case Dtype::kU16:
      return at::kUInt16;
    case Dtype::kU32:
      return at::kUInt32;
    case Dtype::kU64:
      return at::kUInt64;
    case Dtype::kF8E4M3:
      return at::kFloat8_e4m3fn;
    case Dtype::kF8E5M2:
      return at::kFloat8_e5m2;
  }
  throw Error("safetensors dtype has no ATen counterpart");
}

Dtype to_safetensors_dtype(at::ScalarType type) {
  switch (type) {
    case at::kBool:
      return Dtype::kBool;
    case at::kByte:
      return Dtype::kU8;
    case at::kChar:
      return Dtype::kI8;
    case at::kShort:
      return Dtype::kI16;
    case at::kHalf:
      return Dtype::kF16;
    case at::kBFloat16:
      return Dtype::kBF16;
    case at::kInt:
      return Dtype::kI32;
    case at::kFloat:
      return Dtype::kF32;
    case at::kDouble:
      return Dtype::kF64;
    case at::kLong:
      return Dtype::kI64;
    case at::kUInt16:
      return Dtype::kU16;
    case at::kUInt32:
      return Dtype::kU32;
    case at::kUInt64:
      return Dtype::kU64;
    case at::kFloat8_e4m3fn:
      return Dtype::kF8E4M3;
    case at::kFloat8_e5m2:
      return Dtype::kF8E5M2;
    default:
      break;
  }
  throw Error(std::string("safetensors can not store tensors of type ") + at::toString(type));
}

at::Tensor read_tensor(const SafetensorsFile& file, std::string_view name) {
  const TensorInfo& info = file.at(name);
  at::Tensor out = at::empty(info.shape, at::TensorOptions().dtype(to_scalar_type(info.dtype)));
  const auto bytes = file.data(info);
  if (!bytes.empty()) std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
  return out;
}

std::map<std::string, at::Tensor> load_tensors(const std::filesystem::path& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& info : file.tensors())
    out[info.name] = read_tensor(file, info.name);
  return out;
}

void add_tensor(SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor) {
  const at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
  std::vector<int64_t> shape(cpu.sizes().begin(), cpu.sizes().end());
  const auto* p = static_cast<const std::byte*>(cpu.data_ptr());
  writer.add(name, to_safetensors_dtype(cpu.scalar_type()), std::move(shape),
             std::span<const std::byte>(p, cpu.nbytes()));
}

void save_tensors(const std::filesystem::path& path,
                  const std::map<std::string, at::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter writer;
  for (const auto& [name, t] : tensors)
    add_tensor(writer, name, t);
  writer.set_metadata(metadata);
  writer.write(path);
}

std::string tensor_shape(const at::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

}  // namespace s3::sae
