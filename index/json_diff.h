// Where two JSON objects differ, for one-line errors about builds that do not match (an append to
// an index of another model, index parts of other settings).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace s3::index {

// "key (A: a, B: b); other.key (A: ..., B: ...)": the differing keys, nested objects descended
// into (dotted paths), values longer than 80 characters cut, keys in sorted order. Empty when the
// objects are equal. A missing key shows as null.
std::string json_diff(const nlohmann::json& a, const nlohmann::json& b, std::string_view a_label,
                      std::string_view b_label);

// `object` without the given top-level keys.
nlohmann::json without_keys(nlohmann::json object, std::span<const std::string> keys);

}  // namespace s3::index
