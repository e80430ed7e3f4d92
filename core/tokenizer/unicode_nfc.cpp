#include "core/tokenizer/unicode_nfc.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/tokenizer/unicode.h"

namespace s3::unicode {

namespace {

struct Cp {
  char32_t c;
  int change;
  int ccc;
};

int ccc_of(char32_t c) {
  return c < 0x300 ? 0 : utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// A code point that starts a normalization segment: NFC of a string equals the concatenation of
// the NFCs of the pieces cut before each stable code point. Stable here means: no combining
// class, no canonical decomposition, and never the second half of a composition (utf8proc marks
// those with bit 0x8000 of comb_index). Conservative by design: a code point that is not stable
// only makes its segment longer.
bool is_stable(char32_t c) {
  if (c < 0x300) return c < 0xC0;                // Latin-1 letters above 0xBF decompose
  if (c >= 0x1100 && c <= 0x11FF) return false;  // Hangul jamo (algorithmic composition)
  if (c >= 0xAC00 && c <= 0xD7A3) return false;  // Hangul syllables
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  if (p->combining_class != 0) return false;
  if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) return false;  // canonical
  if (p->comb_index != UINT16_MAX && (p->comb_index & 0x8000) != 0) return false;
  return true;
}

// The primary composite of (a, b), or 0 when there is none (composition exclusions included).
char32_t compose_pair(char32_t a, char32_t b) {
  utf8proc_int32_t buf[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(
      buf, 2, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  return n == 1 ? static_cast<char32_t>(buf[0]) : 0;
}

std::string nfc_string(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string result;
  if (n >= 0) result.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

// Canonical decomposition of `input` (first part change 0, the others +1), then canonical
// ordering: a stable sort of every run of non-starters by combining class, each code point moving
// with its change. Code points for which `tables.keep_whole` says so are not decomposed, and
// those `tables.starter` names have combining class 0.
std::vector<Cp> decompose_ordered(const std::vector<char32_t>& input,
                                  const NormalizationTables& tables) {
  auto keep_whole = tables.keep_whole;
  std::vector<Cp> d;
  for (char32_t c : input) {
    utf8proc_int32_t buf[32];
    int boundclass = 0;
    utf8proc_ssize_t n = keep_whole && keep_whole(c)
                             ? 0
                             : utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                                       UTF8PROC_DECOMPOSE, &boundclass);
    if (n <= 0 || n > 32) {
      buf[0] = static_cast<utf8proc_int32_t>(c);
      n = 1;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      const auto cp = static_cast<char32_t>(buf[k]);
      d.push_back({cp, k == 0 ? 0 : 1, tables.starter && tables.starter(cp) ? 0 : ccc_of(cp)});
    }
  }
  for (size_t i = 0; i < d.size();) {
    if (d[i].ccc == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && d[j].ccc != 0)
      ++j;
    std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i),
                     d.begin() + static_cast<std::ptrdiff_t>(j),
                     [](const Cp& x, const Cp& y) { return x.ccc < y.ccc; });
    i = j;
  }
  return d;
}

// NFC of one segment, simulating decomposition, canonical reordering and composition while
// carrying the change of every code point (decomposition: first part 0, the others +1;
// composition: the composite takes starter.change + absorbed.change - 1).
void segment_changes(const std::vector<char32_t>& input, std::vector<CharChange>& out) {
  const std::vector<Cp> d = decompose_ordered(input, NormalizationTables{});
  // Canonical composition.
  std::vector<Cp> r;
  long starter = -1;  // index in r of the last starter
  int last_ccc = -1;  // ccc of the last code point kept after the starter; -1: none yet
  for (const Cp& x : d) {
    if (starter >= 0 && (last_ccc == -1 || (last_ccc != 0 && last_ccc < x.ccc))) {
      if (const char32_t comp = compose_pair(r[static_cast<size_t>(starter)].c, x.c)) {
        Cp& s = r[static_cast<size_t>(starter)];
        s.c = comp;
        s.change += x.change - 1;
        continue;
      }
    }
    if (x.ccc == 0) {
      starter = static_cast<long>(r.size());
      last_ccc = -1;
    } else {
      last_ccc = x.ccc;
    }
    r.push_back(x);
  }
  for (const Cp& x : r)
    out.push_back({x.c, x.change});
}

}  // namespace

bool nfc_with_changes(std::string_view text, std::vector<CharChange>& out) {
  // Fast path: every code point stable means the text is NFC.
  size_t pos = 0;
  bool all_stable = true;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    size_t len = 0;
    if (!is_stable(decode_utf8(text, pos, &len))) {
      all_stable = false;
      break;
    }
    pos += len;
  }
  if (all_stable) return false;

  // Cut into segments before stable code points; only segments that NFC changes need the
  // alignment-carrying simulation.
  std::vector<CharChange> changes;
  bool changed = false;
  std::vector<char32_t> seg;
  size_t seg_begin = 0;
  auto flush = [&](size_t seg_end) {
    if (seg.empty()) return;
    const std::string_view bytes = text.substr(seg_begin, seg_end - seg_begin);
    bool simple = true;
    for (char32_t c : seg)
      simple = simple && is_stable(c);
    if (simple || nfc_string(bytes) == bytes) {
      for (char32_t c : seg)
        changes.push_back({c, 0});
    } else {
      changed = true;
      segment_changes(seg, changes);
    }
    seg.clear();
  };
  pos = 0;
  while (pos < text.size()) {
    size_t len = 0;
    const char32_t c = decode_utf8(text, pos, &len);
    if (is_stable(c)) {
      flush(pos);
      seg_begin = pos;
    }
    seg.push_back(c);
    pos += len;
  }
  flush(text.size());
  if (!changed) return false;
  out.insert(out.end(), changes.begin(), changes.end());
  return true;
}

bool nfd_with_changes(std::string_view text, std::vector<CharChange>& out,
                      const NormalizationTables& tables) {
  std::vector<char32_t> input;
  bool ascii = true;
  for (size_t pos = 0; pos < text.size();) {
    size_t len = 0;
    input.push_back(decode_utf8(text, pos, &len));
    ascii = ascii && len == 1;
    pos += len;
  }
  if (ascii) return false;  // ASCII is in NFD
  const std::vector<Cp> d = decompose_ordered(input, tables);
  bool changed = d.size() != input.size();
  for (size_t i = 0; i < d.size() && !changed; ++i)
    changed = d[i].c != input[i];
  if (!changed) return false;
  for (const Cp& x : d)
    out.push_back({x.c, x.change});
  return true;
}

}  // namespace s3::unicode
