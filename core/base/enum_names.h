// One name table per enum: printing, parsing and the command line's choices all read it, so a
// value's spelling is written once.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace s3 {

template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

template <class E, std::size_t N>
using EnumNames = std::array<EnumName<E>, N>;

// The name of `value` in `table` ("" when the table lacks it).
template <class E, std::size_t N>
constexpr std::string_view enum_name(const EnumNames<E, N>& table, E value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return {};
}

// The value named `name` in `table`, exactly as spelled there.
template <class E, std::size_t N>
constexpr std::optional<E> parse_enum(const EnumNames<E, N>& table, std::string_view name) {
  for (const auto& entry : table)
    if (entry.name == name) return entry.value;
  return std::nullopt;
}

// "a | b | c": the choices, for help texts and error messages.
template <class E, std::size_t N>
std::string enum_choices(const EnumNames<E, N>& table, std::string_view separator = " | ") {
  std::string out;
  for (const auto& entry : table) {
    if (!out.empty()) out += separator;
    out += entry.name;
  }
  return out;
}

}  // namespace s3
