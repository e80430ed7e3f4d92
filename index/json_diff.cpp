#include "index/json_diff.h"

#include <set>

namespace s3::index {

using nlohmann::json;

namespace {

std::string truncated(const json& j) {
  std::string s = j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

void diff_into(const json& a, const json& b, const std::string& path, std::string_view a_label,
               std::string_view b_label, std::string& out) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items())
      keys.insert(k);
    for (const auto& [k, v] : b.items())
      keys.insert(k);
    for (const std::string& k : keys) {
      const json va = a.contains(k) ? a.at(k) : json();
      const json vb = b.contains(k) ? b.at(k) : json();
      diff_into(va, vb, path.empty() ? k : path + "." + k, a_label, b_label, out);
    }
    return;
  }
  out += (out.empty() ? "" : "; ") + path + " (" + std::string(a_label) + ": " + truncated(a) +
         ", " + std::string(b_label) + ": " + truncated(b) + ")";
}

}  // namespace

std::string json_diff(const json& a, const json& b, std::string_view a_label,
                      std::string_view b_label) {
  std::string out;
  diff_into(a, b, "", a_label, b_label, out);
  return out;
}

json without_keys(json object, std::span<const std::string> keys) {
  if (object.is_object()) {
    for (const std::string& k : keys)
      object.erase(k);
  }
  return object;
}

}  // namespace s3::index
