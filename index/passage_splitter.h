// Cuts a document into BM25 passages of about `target_words` words made of whole sentences.
//
// Sentence ends (after a word, looking at the text between it and the next word): '.', '!', '?' or
// U+2026 followed by whitespace (possibly after closing quotes/brackets), the CJK terminators
// U+3002 U+FF01 U+FF1F (anywhere), a blank line, or the end of the text. Greedy packing: sentences
// are added to the current passage while that brings its word count closer to target_words; a
// sentence longer than 1.5 × target_words is cut into target_words-word pieces. Passages tile the
// text: the first starts at byte 0, each next one at its first word, the last one ends at the end
// of the text (a text without words has no passage).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "index/text_analyzer.h"

namespace s3::index {

struct PassageSpan {
  uint32_t word_begin = 0;  // index range into the words given
  uint32_t word_end = 0;
  uint32_t byte_begin = 0;  // byte range in the text
  uint32_t byte_end = 0;
};

// True when the text between two words (`gap`) ends a sentence.
bool is_sentence_break(std::string_view gap);

std::vector<PassageSpan> split_passages(std::string_view text, std::span<const WordSpan> words,
                                        uint32_t target_words);

// The passages of a whole document (its words found by TextAnalyzer::split_words): exactly those
// LexicalBuilder stores for it, in order. Callers use their byte ranges to embed each passage.
std::vector<PassageSpan> document_passages(std::string_view text, uint32_t target_words);

}  // namespace s3::index
