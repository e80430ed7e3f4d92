// Strict reads of JSON values for the project's file readers (manifest.json, model.json, sae.json,
// index metadata). nlohmann's get<T>() converts silently: 3.5 and true become integers, 2^40
// becomes 0 in a uint32_t. These accept a value only when it has the JSON type the field needs and
// fits the C++ type; the caller turns a refusal into an error that names its file and field.
// Header-only, free of LibTorch (like core/base/error.h).
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace s3 {

// The value when `v` is a JSON integer (not 3.0, not true, not "3") inside T's range.
template <std::integral T>
std::optional<T> json_integer(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (!std::in_range<T>(u)) return std::nullopt;
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (!std::in_range<T>(i)) return std::nullopt;
    return static_cast<T>(i);
  }
  return std::nullopt;
}

// Every element by json_integer; nullopt when `v` is not an array or one element is refused.
template <std::integral T>
std::optional<std::vector<T>> json_integers(const nlohmann::json& v) {
  if (!v.is_array()) return std::nullopt;
  std::vector<T> out;
  out.reserve(v.size());
  for (const nlohmann::json& e : v) {
    const std::optional<T> x = json_integer<T>(e);
    if (!x) return std::nullopt;
    out.push_back(*x);
  }
  return out;
}

// A finite JSON number (integer or not).
inline std::optional<double> json_number(const nlohmann::json& v) {
  if (!v.is_number()) return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

// "[lo, hi]" for messages.
template <std::integral T>
std::string range_text(T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

}  // namespace s3
