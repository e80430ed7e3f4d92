// Unit tests of s3::Tokenizer on small hand-written tokenizer.json files (byte-level BPE and
// SentencePiece-style BPE with byte fallback), its error paths, and, with $S3ATTN_DATA, the real
// Llama-2 / Llama-3 / Qwen3 files. Exact parity with Hugging Face tokenizers on real files and a
// large text set is tests/core/test_tokenizer_parity.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/base/error.h"
#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/tokenizer_regex.h"
#include "core/tokenizer/unicode.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;
using Offsets = std::vector<std::pair<uint32_t, uint32_t>>;

// GPT-2's bytes_to_unicode, written out independently of the implementation.
std::string byte_char(int b) {
  const bool printable =
      (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      const bool p =
          (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
      if (!p) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

json added(const std::string& content, int id, bool special, bool lstrip = false,
           bool rstrip = false, bool single_word = false, bool normalized = false) {
  return {{"id", id},
          {"content", content},
          {"special", special},
          {"lstrip", lstrip},
          {"rstrip", rstrip},
          {"single_word", single_word},
          {"normalized", normalized}};
}

// Byte-level BPE: ids 0..255 are the bytes (id == byte value), then merges up to "hello" and
// "Ġworld"; GPT-2 pre-tokenizer regex; ByteLevel decoder.
json byte_level_fixture() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[byte_char(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"},   {"Ġwor", "ld"},
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}};
  json merge_list = json::array();
  int id = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] =
        id++;  // Ġw 256, or 257, Ġwor 258, ld 259, Ġworld 260, he 261, ll 262, hell 263, hello 264
    merge_list.push_back(a + " " + b);
  }
  return {
      {"version", "1.0"},
      {"added_tokens",
       {added("<|endoftext|>", 265, true), added("<mask>", 266, true, true, true),
        added("<w>", 267, false, false, false, true)}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
}

// SentencePiece-style BPE: Prepend "▁" + Replace " " -> "▁", byte fallback, Llama-2's decoder.
json sentencepiece_fixture() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  const std::string sp = "\u2581";
  vocab[sp] = 259;
  vocab["a"] = 260;
  vocab["b"] = 261;
  vocab[sp + "a"] = 262;
  vocab["ab"] = 263;
  vocab[sp + "ab"] = 264;
  vocab["c"] = 265;
  return {
      {"added_tokens", {added("<unk>", 0, true), added("<s>", 1, true), added("</s>", 2, true)}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", sp}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}}},
      {"pre_tokenizer", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true},
        {"vocab", vocab},
        {"merges", json::array({json::array({sp, "a"}), json::array({"a", "b"}),
                                json::array({sp + "a", "b"})})}}}};
}

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("s3attn_tok_" + std::to_string(::getpid()) + "_" +
                                         info->test_suite_name() + "_" + info->name());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

s3::Tokenizer load(const TempDir& dir, const json& config) {
  return s3::Tokenizer::from_file(dir.write("tokenizer.json", config.dump()));
}

// Offsets invariants: on code point boundaries, non-decreasing, inside the text; with `covering`,
// every byte of the text lies in some token's range.
void expect_offsets_valid(const std::string& text, const Offsets& offsets, bool covering) {
  auto boundary = [&](uint32_t i) {
    return i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
  };
  std::vector<bool> covered(text.size(), false);
  uint32_t last_begin = 0;
  for (const auto& [b, e] : offsets) {
    ASSERT_LE(b, e);
    ASSERT_LE(e, text.size());
    EXPECT_TRUE(boundary(b) && boundary(e)) << b << "," << e;
    EXPECT_GE(b, last_begin);
    last_begin = b;
    for (uint32_t i = b; i < e; ++i)
      covered[i] = true;
  }
  if (covering) {
    for (size_t i = 0; i < text.size(); ++i)
      EXPECT_TRUE(covered[i]) << "byte " << i << " of " << text;
  }
}

TEST(TokenizerByteLevel, EncodesWithMergesAndOffsets) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  const std::string text = "hello world";
  const s3::Encoding e = tok.encode_with_offsets(text);
  EXPECT_EQ(e.ids, (Ids{264, 260}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 5}, {5, 11}}));
  EXPECT_EQ(tok.encode(text), e.ids);
  EXPECT_EQ(tok.decode(e.ids), text);
}

TEST(TokenizerByteLevel, MultiByteCharactersShareTheirRange) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  const std::string text = "h\xC3\xA9llo \xF0\x9F\x98\x80!";  // "héllo 😀!"
  const s3::Encoding e = tok.encode_with_offsets(text);
  // h, the two bytes of é, ll, o, Ġ, the four bytes of 😀, !
  EXPECT_EQ(e.ids, (Ids{'h', 0xC3, 0xA9, 262, 'o', 32, 0xF0, 0x9F, 0x98, 0x80, '!'}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1},
                                {1, 3},
                                {1, 3},
                                {3, 5},
                                {5, 6},
                                {6, 7},
                                {7, 11},
                                {7, 11},
                                {7, 11},
                                {7, 11},
                                {11, 12}}));
  expect_offsets_valid(text, e.offsets, true);
  EXPECT_EQ(tok.decode(e.ids), text);
}

TEST(TokenizerByteLevel, SpecialAndAddedTokens) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  // Special token inside a word, found before the model sees the text.
  const s3::Encoding e = tok.encode_with_offsets("hello<|endoftext|> world");
  EXPECT_EQ(e.ids, (Ids{264, 265, 260}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 5}, {5, 18}, {18, 24}}));
  EXPECT_EQ(tok.decode(e.ids), "hello<|endoftext|> world");
  EXPECT_EQ(tok.decode(e.ids, /*skip_special_tokens=*/true), "hello world");
  // lstrip + rstrip: the spaces around <mask> belong to it.
  const s3::Encoding m = tok.encode_with_offsets("hello <mask> world");
  EXPECT_EQ(m.ids, (Ids{264, 266, 'w', 257, 259}));
  EXPECT_EQ(m.offsets[1], (std::pair<uint32_t, uint32_t>{5, 13}));
  // single_word: <w> only between non-word characters.
  EXPECT_EQ(tok.encode("a<w>b"), (Ids{'a', '<', 'w', '>', 'b'}));
  EXPECT_EQ(tok.encode("a <w> b"), (Ids{'a', 32, 267, 32, 'b'}));
  EXPECT_TRUE(tok.is_special(265));
  EXPECT_FALSE(tok.is_special(267));
  EXPECT_FALSE(tok.is_special(264));
  EXPECT_EQ(tok.token_id("<|endoftext|>"), 265);
  EXPECT_EQ(tok.token_id("Ġworld"), 260);
  EXPECT_EQ(tok.token_id("nope"), std::nullopt);
  EXPECT_EQ(tok.token_text(260), "Ġworld");
  EXPECT_EQ(tok.token_text(265), "<|endoftext|>");
  EXPECT_EQ(tok.vocab_size(), 268);
  EXPECT_THROW(tok.token_text(268), s3::Error);
  EXPECT_THROW(tok.token_text(-1), s3::Error);
}

TEST(TokenizerByteLevel, WhitespaceAndEmpty) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_TRUE(tok.encode_with_offsets("").offsets.empty());
  for (const std::string text : {" ", "\n", "  a  \t\r\n b ", "\n\n\n", "x\xC2\xA0y"}) {
    const s3::Encoding e = tok.encode_with_offsets(text);
    EXPECT_FALSE(e.ids.empty()) << text;
    expect_offsets_valid(text, e.offsets, true);
    EXPECT_EQ(tok.decode(e.ids), text);
  }
}

TEST(TokenizerByteLevel, DecodeSkipsUnknownIdsAndRepairsBytes) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  EXPECT_EQ(tok.decode(Ids{264, 100000, -5, 260}), "hello world");
  EXPECT_EQ(tok.decode(Ids{0xF0, 0x9F}),
            "\xEF\xBF\xBD");  // a truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(tok.decode(Ids{0x80, 'a', 0xFF}),
            "\xEF\xBF\xBD"
            "a"
            "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode(Ids{}), "");
}

TEST(TokenizerSentencePiece, PrependReplaceAndMerges) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, sentencepiece_fixture());
  const s3::Encoding e = tok.encode_with_offsets("ab c");
  EXPECT_EQ(e.ids, (Ids{264, 259, 265}));  // ▁ab ▁ c
  EXPECT_EQ(e.offsets, (Offsets{{0, 2}, {2, 3}, {3, 4}}));
  EXPECT_EQ(tok.decode(e.ids), "ab c");
}

TEST(TokenizerSentencePiece, ByteFallback) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, sentencepiece_fixture());
  const std::string text = "a\xC3\xA9";  // "aé": é is not in the vocab
  const s3::Encoding e = tok.encode_with_offsets(text);
  EXPECT_EQ(e.ids, (Ids{262, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {1, 3}, {1, 3}}));
  expect_offsets_valid(text, e.offsets, true);
  EXPECT_EQ(tok.decode(e.ids), text);
  EXPECT_EQ(tok.token_text(3 + 0x0A), "<0x0A>");
  EXPECT_EQ(tok.decode(Ids{262, 3 + 0xC3}), "a\xEF\xBF\xBD");  // an incomplete sequence
}

TEST(TokenizerSentencePiece, SpecialTokensSplitTheText) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, sentencepiece_fixture());
  // As in tokenizers, every piece between special tokens is normalized on its own (gets its "▁").
  const s3::Encoding e = tok.encode_with_offsets("<s>ab</s>");
  EXPECT_EQ(e.ids, (Ids{1, 264, 2}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 3}, {3, 5}, {5, 9}}));
  EXPECT_EQ(tok.decode(e.ids), "<s> ab</s>");
  EXPECT_EQ(tok.decode(e.ids, true), "ab");
  EXPECT_TRUE(tok.is_special(1));
}

TEST(TokenizerSentencePiece, LongTextsMatchWordByWord) {
  // The whole text is one BPE word here; long words are cut where no merge can cross. The tokens
  // must be those of the words one by one.
  TempDir dir;
  const s3::Tokenizer tok = load(dir, sentencepiece_fixture());
  std::string text;
  Ids expected;
  for (int i = 0; i < 2000; ++i) {
    if (i % 3 == 0) {
      text += "ab ";
      expected.insert(expected.end(), {264});  // ▁ab
    } else if (i % 3 == 1) {
      text += "c a ";
      expected.insert(expected.end(), {259, 265, 262});  // ▁ c ▁a
    } else {
      text += "abab ";
      expected.insert(expected.end(), {264, 263});  // ▁ab ab
    }
  }
  expected.push_back(259);  // the last space
  const s3::Encoding e = tok.encode_with_offsets(text);
  EXPECT_EQ(e.ids, expected);
  expect_offsets_valid(text, e.offsets, true);
  EXPECT_EQ(tok.decode(e.ids), text);
}

TEST(TokenizerErrors, MissingFile) {
  TempDir dir;
  try {
    s3::Tokenizer::from_file(dir.path() / "nope.json");
    FAIL() << "no exception";
  } catch (const s3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such tokenizer file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s3::Tokenizer::from_file(dir.path()), s3::Error);  // a directory
}

TEST(TokenizerErrors, NotJson) {
  TempDir dir;
  try {
    s3::Tokenizer::from_file(dir.write("tokenizer.json", "{\"model\": [1, 2,"));
    FAIL() << "no exception";
  } catch (const s3::DataCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
  EXPECT_THROW(s3::Tokenizer::from_json("{\"version\": \"1.0\"}"), s3::DataCorruption);  // no model
  EXPECT_THROW(s3::Tokenizer::from_json("[1, 2]"), s3::DataCorruption);
}

void expect_error(const json& config, const std::string& needle) {
  try {
    s3::Tokenizer::from_json(config.dump(), "fixture.json");
    FAIL() << "no exception for " << needle;
  } catch (const s3::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_NE(what.find("fixture.json"), std::string::npos) << what;
  }
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
  json c = byte_level_fixture();
  c["model"]["type"] = "Unigram";
  expect_error(c, "unsupported model type 'Unigram'");
  c = byte_level_fixture();
  c["model"]["type"] = "WordPiece";  // its unk_token "[UNK]" is not in this vocabulary
  expect_error(c, "model WordPiece: field 'unk_token' '[UNK]' is not in the vocabulary");
  c = byte_level_fixture();
  c["normalizer"] = {{"type", "NFKC"}};
  expect_error(c, "unsupported normalizer type 'NFKC'");
  c = byte_level_fixture();
  c["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Whitespace"}}}}};
  expect_error(c, "unsupported pre_tokenizer type 'Whitespace'");
  c = byte_level_fixture();
  c["decoder"] = {{"type", "CTC"}};
  expect_error(c, "unsupported decoder type 'CTC'");
  c = byte_level_fixture();
  c["model"]["merges"].push_back("Ġ zz");
  expect_error(c, "'zz' that is not in the vocab");
  c = byte_level_fixture();
  c["model"]["dropout"] = 0.1;
  expect_error(c, "dropout");
  c = byte_level_fixture();
  c["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error(c, "cannot compile tokenizer regex '(unclosed'");
  c = byte_level_fixture();
  c["truncation"] = {{"max_length", 8}};
  expect_error(c, "truncation");
}

TEST(TokenizerErrors, InvalidUtf8Text) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  for (const std::string bad :
       {"ok\xFF", "\xC3", "a\xED\xA0\x80z", "\xC0\xAF", "\xF4\x90\x80\x80"}) {
    try {
      tok.encode(bad);
      FAIL() << "accepted invalid UTF-8";
    } catch (const s3::Error& e) {
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
    }
  }
}

TEST(TokenizerConcurrency, EncodeFromManyThreads) {
  TempDir dir;
  const s3::Tokenizer tok = load(dir, byte_level_fixture());
  std::string text;
  for (int i = 0; i < 500; ++i)
    text += "hello world, h\xC3\xA9llo <|endoftext|>" + std::to_string(i) + "\n";
  const Ids expected = tok.encode(text);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < 20; ++r) {
        if (tok.encode(text) != expected) ++mismatches;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TokenizerMove, MovedTokenizerWorks) {
  TempDir dir;
  s3::Tokenizer a = load(dir, byte_level_fixture());
  s3::Tokenizer b = std::move(a);
  EXPECT_EQ(b.encode("hello"), (Ids{264}));
  s3::Tokenizer c = load(dir, sentencepiece_fixture());
  c = std::move(b);
  EXPECT_EQ(c.encode("hello"), (Ids{264}));
}

TEST(TokenizerRegex, OnigurumaEscapesAreTranslated) {
  // \s is Unicode White_Space (not PCRE2's set, which also has U+180E); inside a class too.
  const std::string t = s3::tok::translate_oniguruma(R"(\s+(?!\S)|[^\s\p{L}]|\\s|[\]\s])");
  EXPECT_EQ(t.find("\\s"),
            t.find("\\\\s") + 1);  // only the escaped backslash followed by s is left
  EXPECT_EQ(t.find("\\S"), std::string::npos);
  s3::tok::Regex space(R"(\s+)");
  s3::tok::Matches m;
  space.find_all(
      "a\xE1\xA0\x8E"
      "b \xC2\x85"
      "c",
      m);  // U+180E is not a space; U+0085 is
  EXPECT_EQ(m, (s3::tok::Matches{{5, 8}}));
}

// --- the real files, through $S3ATTN_DATA -------------------------------------------------------

fs::path data_dir() {
  const char* v = std::getenv("S3ATTN_DATA");
  return v ? fs::path(v) : fs::path();
}

TEST(TokenizerRealFiles, LoadAndEncode) {
  if (data_dir().empty())
    GTEST_SKIP() << "S3ATTN_DATA is not set (the shared data folder with tokenizers/)";
  const std::string text = "Hello world! Καλημέρα, 你好, 😀 <|begin_of_text|>\n\tcode(x);";
  struct Case {
    const char* name;
    Ids hello_world;
    int32_t vocab_size;
    bool byte_level;
  };
  for (const Case& c :
       {Case{"llama2", {22557, 1526}, 32000, false}, Case{"llama3", {9906, 1917}, 128256, true},
        Case{"qwen3", {9707, 1879}, 151669, true}}) {
    SCOPED_TRACE(c.name);
    const s3::Tokenizer tok =
        s3::Tokenizer::from_file(data_dir() / "tokenizers" / c.name / "tokenizer.json");
    EXPECT_EQ(tok.encode("Hello world"), c.hello_world);
    EXPECT_EQ(tok.vocab_size(), c.vocab_size);
    const s3::Encoding e = tok.encode_with_offsets(text);
    EXPECT_EQ(e.ids.size(), e.offsets.size());
    expect_offsets_valid(text, e.offsets, c.byte_level);
    EXPECT_EQ(tok.decode(e.ids), text);
  }
  const s3::Tokenizer llama3 =
      s3::Tokenizer::from_file(data_dir() / "tokenizers" / "llama3" / "tokenizer.json");
  EXPECT_EQ(llama3.token_id("<|begin_of_text|>"), 128000);
  EXPECT_TRUE(llama3.is_special(128000));
  EXPECT_EQ(llama3.encode("<|begin_of_text|>Hi"), (Ids{128000, 13347}));
}

}  // namespace

// utf8_prefix never cuts a character: every cut of a mixed 1-4 byte text gives valid UTF-8 of at
// most the asked length, and the longest such prefix.
TEST(Unicode, Utf8PrefixEndsBetweenCharacters) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";  // a é € 😀 z
  const std::vector<size_t> starts = {0, 1, 3, 6, 10, 11};            // where characters begin
  for (size_t max = 0; max <= text.size() + 2; ++max) {
    const std::string_view p = s3::unicode::utf8_prefix(text, max);
    EXPECT_EQ(s3::unicode::first_invalid_utf8(p), p.size()) << max;
    size_t want = 0;
    for (size_t b : starts)
      if (b <= max) want = b;
    EXPECT_EQ(p.size(), max >= text.size() ? text.size() : want) << max;
  }
}
