// NFC and NFD normalization that also say, for every output code point, how it lines up with the
// input, in the form Hugging Face tokenizers (crate unicode-normalization-alignments) produces:
// this is what makes the token offsets of an NFC tokenizer (Qwen) equal to tokenizers' own.
#pragma once

#include <string_view>
#include <vector>

namespace s3::unicode {

// One output code point and its change relative to the input, read left to right:
//   0  replaces the next input code point,
//   +1 is inserted (takes the alignment of the input code point before it),
//   -N replaces the next input code point and removes the N that follow it.
struct CharChange {
  char32_t c;
  int change;
};

// Appends NFC(text) as CharChanges to `out` and returns true, or returns false (leaving `out`
// alone) when `text` is already in NFC. `text` must be valid UTF-8.
bool nfc_with_changes(std::string_view text, std::vector<CharChange>& out);

// Corrections for a normalizer built on older Unicode tables than utf8proc's (tokenizers' NFD):
// code points it does not decompose, and code points it takes for starters (combining class 0).
struct NormalizationTables {
  bool (*keep_whole)(char32_t) = nullptr;
  bool (*starter)(char32_t) = nullptr;
};

// The same for NFD: canonical decomposition (first part 0, the others +1) and canonical ordering
// (each code point keeps its change when reordered), as unicode-normalization-alignments does,
// with `tables` applied. Returns false, leaving `out` alone, when `text` is already in NFD.
bool nfd_with_changes(std::string_view text, std::vector<CharChange>& out,
                      const NormalizationTables& tables = {});

}  // namespace s3::unicode
