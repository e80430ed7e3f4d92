#include "core/tokenizer/tokenizer_config.h"

#include <climits>

#include "core/base/error.h"
#include "core/tokenizer/unicode.h"

namespace s3::tok {

std::string type_of(const json& config) {
  if (!config.is_object()) return "";
  auto it = config.find("type");
  return it != config.end() && it->is_string() ? it->get<std::string>() : "";
}

void unsupported(std::string_view kind, std::string_view type, std::string_view supported) {
  throw Error("unsupported " + std::string(kind) + " type '" + std::string(type) +
              "' (supported: " + std::string(supported) + ")");
}

void bad_field(std::string_view where, std::string_view field, std::string_view what) {
  throw Error(std::string(where) + ": field '" + std::string(field) + "' " + std::string(what));
}

Vocab read_vocab(const json& model, std::string_view where) {
  auto v = model.find("vocab");
  if (v == model.end() || !v->is_object())
    bad_field(where, "vocab", "must be an object of token -> id");
  Vocab vocab;
  vocab.reserve(v->size());
  for (const auto& [token, id] : v->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      bad_field(where, "vocab", "has a non-integer or negative id for token '" + token + "'");
    }
    vocab.emplace(token, static_cast<int32_t>(id.get<int64_t>()));
  }
  return vocab;
}

bool get_bool(const json& config, const char* field, bool fallback, std::string_view where) {
  auto it = config.find(field);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad_field(where, field, "must be true or false");
  return it->get<bool>();
}

std::string get_string(const json& config, const char* field, const std::string& fallback,
                       std::string_view where) {
  auto it = config.find(field);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_string()) bad_field(where, field, "must be a string");
  return it->get<std::string>();
}

int64_t get_int(const json& config, const char* field, int64_t fallback, std::string_view where) {
  auto it = config.find(field);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) bad_field(where, field, "must be an integer");
  return it->get<int64_t>();
}

char32_t get_char(const json& config, const char* field, char32_t fallback,
                  std::string_view where) {
  auto it = config.find(field);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_string()) bad_field(where, field, "must be a string of one character");
  const std::string s = it->get<std::string>();
  size_t len = 0;
  if (s.empty() || unicode::first_invalid_utf8(s) != s.size() ||
      (unicode::decode_utf8(s, 0, &len), len != s.size())) {
    bad_field(where, field, "must be a string of one character");
  }
  return unicode::decode_utf8(s, 0, &len);
}

Pattern get_pattern(const json& config, const char* field, std::string_view where) {
  auto it = config.find(field);
  if (it == config.end() || !it->is_object())
    bad_field(where, field, "must be {\"String\": ...} or {\"Regex\": ...}");
  if (auto s = it->find("String"); s != it->end() && s->is_string())
    return Pattern::literal(s->get<std::string>());
  if (auto r = it->find("Regex"); r != it->end() && r->is_string())
    return Pattern::regex(r->get<std::string>());
  bad_field(where, field, "must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace s3::tok
