// Fuzz target: the tokenizer.json loader (core/tokenizer*.*, library s3_tokenizer) and, for a
// tokenizer it accepts, encode / decode of a few texts (plain and non-ASCII text, special tokens,
// whitespace runs, and a slice of the input itself, which holds vocabulary strings), checking the
// documented invariants of Encoding.
//
// Input: the text of tokenizer.json.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace {

using namespace s3::fuzz;

void exercise(const s3::Tokenizer& tok, std::string_view text) {
  s3::Encoding e;
  try {
    e = tok.encode_with_offsets(text);
  } catch (const s3::Error&) {
    return;  // not valid UTF-8: the documented refusal
  }
  fuzz_check(e.ids.size() == e.offsets.size(), "ids and offsets differ in length");
  uint32_t last_begin = 0;
  for (size_t i = 0; i < e.ids.size(); ++i) {
    fuzz_check(e.ids[i] >= 0 && e.ids[i] < tok.vocab_size(),
               "encode() returned an id outside the vocabulary");
    const auto [b, en] = e.offsets[i];
    fuzz_check(b <= en && en <= text.size(), "token offsets outside the text");
    fuzz_check(b >= last_begin, "token offsets decrease");
    last_begin = b;
    try {
      (void)tok.token_text(e.ids[i]);
    } catch (const s3::Error&) {
      fuzz_check(false, "token_text() refuses an id that encode() returned");
    }
    (void)tok.is_special(e.ids[i]);
  }
  fuzz_check(tok.encode(text) == e.ids, "encode() and encode_with_offsets() disagree");
  (void)tok.decode(e.ids);
  (void)tok.decode(e.ids, /*skip_special_tokens=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    const s3::Tokenizer tok = s3::Tokenizer::from_json(json, "fuzz.json");
    static const char* const kTexts[] = {
        "Hello world! The quick brown fox, 1234567 times.",
        "  leading spaces\tand tabs\n\nnew lines   ",
        "naïve café École 東京 Ελλάδα 🙂 \xe2\x96\x81 \xc4\xa0",
        "<|endoftext|><s></s><unk> <|begin_of_text|>x<|im_start|>",
        "",
    };
    for (const char* t : kTexts)
      exercise(tok, t);
    exercise(tok, json.substr(json.size() / 2, 96));
    const std::vector<int32_t> ids = {
        -1, 0, 1, 2, 3, tok.vocab_size() - 1, tok.vocab_size(), static_cast<int32_t>(size)};
    (void)tok.decode(ids);
    (void)tok.token_id("a");
  } catch (const s3::Error&) {
    // The documented refusal of a bad or unsupported tokenizer.json.
  }
  return 0;
}
