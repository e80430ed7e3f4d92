// The floating-point types s3attn stores and computes in, with their one name table: the spelling
// of model.json's and sae.json's "dtype", --dtype, --save-dtype and the SAE encoder's dtype.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/base/enum_names.h"

namespace s3 {

enum class DType { kFloat32, kBFloat16, kFloat16 };
inline constexpr EnumNames<DType, 3> kDTypeNames{
    {{"float32", DType::kFloat32}, {"bfloat16", DType::kBFloat16}, {"float16", DType::kFloat16}}};

inline std::optional<DType> parse_dtype(std::string_view name) {
  return parse_enum(kDTypeNames, name);
}
// The value standing for `dtype` among three, one per type (a library's own type constants, say:
// LibTorch's c10::kFloat, c10::kBFloat16, c10::kHalf).
template <class T>
constexpr T dtype_select(DType dtype, T float32, T bfloat16, T float16) {
  switch (dtype) {
    case DType::kFloat32:
      return float32;
    case DType::kBFloat16:
      return bfloat16;
    case DType::kFloat16:
      return float16;
  }
  return float32;
}

inline std::string_view dtype_name(DType dtype) {
  return enum_name(kDTypeNames, dtype);
}

// "float32, bfloat16, float16", for error messages.
inline std::string dtype_choices() {
  return enum_choices(kDTypeNames, ", ");
}

}  // namespace s3
