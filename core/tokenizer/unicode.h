// UTF-8 and Unicode helpers for the tokenizer: validation, code point iteration, the character
// classes Hugging Face tokenizers uses outside its regexes, the GPT-2 byte<->char table and lossy
// UTF-8 repair. Internal to core/ (not part of the tokenizer's public header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace s3::unicode {

// Byte offset of the first byte that makes `s` invalid UTF-8 (overlong forms, surrogates and code
// points above U+10FFFF are invalid), or s.size() when the whole string is valid.
size_t first_invalid_utf8(std::string_view s);

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for bytes that are not leads).
inline size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// The longest prefix of valid UTF-8 `s` of at most `max_bytes` bytes that ends between characters.
inline std::string_view utf8_prefix(std::string_view s, size_t max_bytes) {
  if (max_bytes >= s.size()) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
    --end;  // continuation byte
  return s.substr(0, end);
}

// Decodes the code point at s[pos] of a string known to be valid UTF-8; sets *len to its length.
char32_t decode_utf8(std::string_view s, size_t pos, size_t* len);

void append_utf8(std::string& out, char32_t c);

// Unicode White_Space (what Rust's char::is_whitespace, regex \s and Oniguruma \s match).
bool is_white_space(char32_t c);
// Rust regex \w: alphabetic, marks, decimal digits, connector punctuation, join controls.
bool is_word_char(char32_t c);
// Rust char::is_numeric: general categories Nd, Nl, No.
bool is_numeric(char32_t c);

// The GPT-2 byte-level alphabet: every byte maps to one printable code point (bytes 0x21-0x7E,
// 0xA1-0xAC and 0xAE-0xFF map to themselves, the rest to U+0100 onwards).
char32_t byte_to_char(uint8_t b);
// UTF-8 encoding of byte_to_char(b), precomputed.
std::string_view byte_to_utf8(uint8_t b);
// The inverse: the byte a code point stands for, or -1 when it is not in the alphabet.
int char_to_byte(char32_t c);

// Replaces every invalid sequence with U+FFFD exactly as Rust's String::from_utf8_lossy does
// (one replacement per maximal invalid subpart).
std::string utf8_lossy(std::string_view bytes);

}  // namespace s3::unicode
