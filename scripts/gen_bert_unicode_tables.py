#!/usr/bin/env python3
"""Writes core/tokenizer/unicode_bert_tables.cpp: where Hugging Face tokenizers' BERT components disagree with
utf8proc about a code point's Unicode properties.

    .venv/bin/python scripts/gen_bert_unicode_tables.py [--out core/tokenizer/unicode_bert_tables.cpp]

The BERT normalizer and pre-tokenizer of `tokenizers` read general categories from the Rust crate
unicode_categories (an old Unicode version: "control" = Cc/Cf/Co, punctuation = P*, nonspacing
marks = Mn), decompose (and, for StripAccents, find combining marks M*) with
unicode-normalization-alignments (another old version) and lowercase
with the Rust standard library (a newer version than Debian 12's utf8proc 2.8, Unicode 15). The C++
side (core/tokenizer/unicode_bert.h) asks utf8proc and corrects it with these tables, so that every code point
behaves as in `tokenizers`. The tables are found by probing `tokenizers` one code point at a time
(each probe isolates one property) and comparing with utf8proc (through ctypes); the parity test
tests/core/tokenizer/test_tokenizer_wordpiece.py checks every code point again, so a table that no longer
matches the installed libraries fails there. Rerun this after upgrading `tokenizers` or utf8proc.
"""
from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASCII_PUNCT = set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')


def code_points():
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


class Utf8proc:
    def __init__(self):
        self.lib = ctypes.CDLL("libutf8proc.so.2")
        self.lib.utf8proc_category_string.restype = ctypes.c_char_p
        self.lib.utf8proc_tolower.restype = ctypes.c_int32
        self.lib.utf8proc_version.restype = ctypes.c_char_p

        class Property(ctypes.Structure):  # the leading fields of utf8proc_property_t
            _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]

        self.lib.utf8proc_get_property.restype = ctypes.POINTER(Property)

    def category(self, c: int) -> str:
        return self.lib.utf8proc_category_string(c).decode()

    def lower(self, c: int) -> str:
        return "i\u0307" if c == 0x130 else chr(self.lib.utf8proc_tolower(c))

    def combining_class(self, c: int) -> int:
        return self.lib.utf8proc_get_property(c).contents.combining_class

    def decompose(self, c: int) -> str:
        buf = (ctypes.c_int32 * 32)()
        boundclass = ctypes.c_int(0)
        n = self.lib.utf8proc_decompose_char(c, buf, 32, 1 << 3, ctypes.byref(boundclass))  # UTF8PROC_DECOMPOSE
        return "".join(chr(buf[i]) for i in range(n)) if n > 0 else chr(c)

    def version(self) -> str:
        return self.lib.utf8proc_version().decode()


def ranges(cps: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in sorted(cps):
        if out and out[-1][1] + 1 == c:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def probe() -> dict:
    from tokenizers import normalizers, pre_tokenizers

    u = Utf8proc()
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                       lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    nfd = normalizers.NFD()
    lower = normalizers.Lowercase()
    strip_marks = normalizers.StripAccents()
    bert_pre = pre_tokenizers.BertPreTokenizer()
    t = {k: [] for k in ("control_added", "control_removed", "punct_added", "punct_removed", "mn_added",
                         "mn_removed", "mark_added", "mark_removed", "no_decomposition", "ccc_zero", "lower")}
    for c in code_points():
        ch = chr(c)
        cat = u.category(c)
        # clean_text removes NUL, U+FFFD and "controls" (tab, newline and return excepted).
        if c not in (0, 0xFFFD, 9, 10, 13):
            theirs = clean.normalize_str(ch) == ""
            ours = cat in ("Cc", "Cf", "Co")
            if theirs and not ours:
                t["control_added"].append(c)
            elif ours and not theirs:
                t["control_removed"].append(c)
        decomposed = nfd.normalize_str(ch)
        if decomposed == ch and u.decompose(c) != ch:
            t["no_decomposition"].append(c)
        elif decomposed != u.decompose(c):
            raise SystemExit(f"U+{c:04X}: tokenizers decomposes it to {decomposed!r}, utf8proc to "
                             f"{u.decompose(c)!r}; core/tokenizer/unicode_bert.cpp has no table for that")
        # Canonical ordering: a mark of combining class > 1 goes after U+0334 (class 1) unless
        # tokenizers' tables do not know its class (then it is a starter there).
        if u.combining_class(c) > 1 and decomposed == ch:
            if nfd.normalize_str(ch + "\u0334") == ch + "\u0334":
                t["ccc_zero"].append(c)
        if decomposed == ch:  # a nonspacing mark is what strip_accents removes after NFD
            theirs = strip.normalize_str(ch) == ""
            ours = cat == "Mn"
            if theirs and not ours:
                t["mn_added"].append(c)
            elif ours and not theirs:
                t["mn_removed"].append(c)
        # The StripAccents normalizer removes every combining mark (M*, the normalization crate's table).
        theirs = strip_marks.normalize_str(ch) == ""
        ours = cat in ("Mn", "Mc", "Me")
        if theirs and not ours:
            t["mark_added"].append(c)
        elif ours and not theirs:
            t["mark_removed"].append(c)
        parts = [p for p, _ in bert_pre.pre_tokenize_str("a" + ch + "a")]
        if parts != ["a", "a"]:  # not whitespace
            theirs = parts == ["a", ch, "a"]
            ours = ch in ASCII_PUNCT or cat.startswith("P")
            if theirs and not ours:
                t["punct_added"].append(c)
            elif ours and not theirs:
                t["punct_removed"].append(c)
        low = lower.normalize_str(ch)
        if low != u.lower(c):
            if len(low) != 1:
                raise SystemExit(f"U+{c:04X}: tokenizers lowercases it to {len(low)} code points; "
                                 "core/tokenizer/unicode_bert.cpp has no table for that")
            t["lower"].append((c, ord(low)))
    t["versions"] = {"utf8proc": u.version()}
    return t


TABLES = [
    ("kControlAdded", "control_added", "not Cc/Cf/Co in utf8proc, removed by clean_text"),
    ("kControlRemoved", "control_removed", "Cc/Cf/Co in utf8proc, kept by clean_text (newer than the crate)"),
    ("kPunctuationAdded", "punct_added", "not P* in utf8proc, punctuation to BertPreTokenizer"),
    ("kPunctuationRemoved", "punct_removed", "P* in utf8proc, not punctuation to BertPreTokenizer"),
    ("kNonspacingAdded", "mn_added", "not Mn in utf8proc, removed by strip_accents"),
    ("kNonspacingRemoved", "mn_removed", "Mn in utf8proc, kept by strip_accents (newer than the crate)"),
    ("kMarkAdded", "mark_added", "not M* in utf8proc, removed by StripAccents"),
    ("kMarkRemoved", "mark_removed", "M* in utf8proc, kept by StripAccents (newer than the crate)"),
    ("kNoDecomposition", "no_decomposition", "decomposed by utf8proc, not by tokenizers' NFD"),
    ("kCombiningClassZero", "ccc_zero", "a combining class in utf8proc, none (a starter) in tokenizers' NFD"),
]


def render(t: dict, tokenizers_version: str) -> str:
    lines = [
        "// Generated by scripts/gen_bert_unicode_tables.py; do not edit. Where Hugging Face tokenizers'",
        "// BERT components disagree with utf8proc about a code point (see core/tokenizer/unicode_bert.h).",
        f"//   tokenizers {tokenizers_version}, utf8proc {t['versions']['utf8proc']}",
        '#include "core/tokenizer/unicode_bert_tables.h"',
        "",
        "namespace s3::unicode::bert_tables {",
        "",
        "// The generator lays the tables out.",
        "// clang-format off",
        "",
    ]
    for name, key, what in TABLES:
        rs = ranges(t[key])
        lines.append(f"// {what}: {len(t[key])} code points.")
        lines.append(f"const std::array<CodeRange, {len(rs)}> {name}{{{{")
        row = "   "
        for a, b in rs:
            item = f" {{0x{a:X}, 0x{b:X}}},"
            if len(row) + len(item) > 100:
                lines.append(row)
                row = "   "
            row += item
        if row.strip():
            lines.append(row)
        lines.append("}};")
        lines.append("")
    pairs = t["lower"]
    lines.append(f"// Lowercase mappings of the Rust standard library that utf8proc lacks: {len(pairs)}.")
    lines.append(f"const std::array<LowerPair, {len(pairs)}> kLowercase{{{{")
    row = "   "
    for a, b in pairs:
        item = f" {{0x{a:X}, 0x{b:X}}},"
        if len(row) + len(item) > 100:
            lines.append(row)
            row = "   "
        row += item
    if row.strip():
        lines.append(row)
    lines.append("}};")
    lines.append("")
    lines.append("// clang-format on")
    lines.append("")
    lines.append("}  // namespace s3::unicode::bert_tables")
    return "\n".join(lines) + "\n"


def render_header(t: dict) -> str:
    decls = "\n".join(f"extern const std::array<CodeRange, {len(ranges(t[key]))}> {name};"
                      for name, key, _ in TABLES)
    return f"""// Generated by scripts/gen_bert_unicode_tables.py; do not edit. Declarations of
// core/tokenizer/unicode_bert_tables.cpp (sorted, disjoint code point ranges). Internal to
// core/tokenizer/unicode_bert.cpp.
#pragma once

#include <array>

namespace s3::unicode::bert_tables {{

struct CodeRange {{
  char32_t first, last;  // inclusive
}};
struct LowerPair {{
  char32_t from, to;
}};

{decls}
extern const std::array<LowerPair, {len(t['lower'])}> kLowercase;

}}  // namespace s3::unicode::bert_tables
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "core" / "tokenizer" / "unicode_bert_tables.cpp")
    args = p.parse_args(argv)
    import tokenizers

    t = probe()
    args.out.write_text(render(t, tokenizers.__version__), encoding="utf-8")
    args.out.with_suffix(".h").write_text(render_header(t), encoding="utf-8")
    print(f"wrote {args.out} and {args.out.with_suffix('.h')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
