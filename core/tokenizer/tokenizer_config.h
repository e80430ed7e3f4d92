// Reading the components of a tokenizer.json: typed field access with clear errors. Internal.
// Every error is an s3::Error whose message names the component and field; Tokenizer::from_file
// prefixes it with the file path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/tokenizer/tokenizer_model.h"
#include "core/tokenizer/tokenizer_regex.h"

namespace s3::tok {

using nlohmann::json;

// config["type"] as a string ("" when absent).
std::string type_of(const json& config);

// Field accessors: the default when the field is absent or null, an error when it has the wrong
// type. `where` names the component in messages ("pre_tokenizer Split").
bool get_bool(const json& config, const char* field, bool fallback, std::string_view where);
std::string get_string(const json& config, const char* field, const std::string& fallback,
                       std::string_view where);
int64_t get_int(const json& config, const char* field, int64_t fallback, std::string_view where);
// A string field holding exactly one code point (Metaspace's replacement, Strip's content).
char32_t get_char(const json& config, const char* field, char32_t fallback, std::string_view where);

// A model's "vocab": an object of token -> id, every id an integer in [0, INT32_MAX] (BPE and
// WordPiece read it alike).
Vocab read_vocab(const json& model, std::string_view where);

// config[field] as {"String": ...} or {"Regex": ...}.
Pattern get_pattern(const json& config, const char* field, std::string_view where);

// Throws: "unsupported <kind> type '<type>' (supported: <supported>)".
[[noreturn]] void unsupported(std::string_view kind, std::string_view type,
                              std::string_view supported);
[[noreturn]] void bad_field(std::string_view where, std::string_view field, std::string_view what);

}  // namespace s3::tok
