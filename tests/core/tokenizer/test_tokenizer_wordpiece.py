"""The C++ WordPiece tokenizer (BERT normalizer and pre-tokenizer, WordPiece model and decoder)
against Hugging Face `tokenizers`, the reference.

Always run (CI): a small BERT-style WordPiece tokenizer.json trained here with `tokenizers`, and
variants of it that switch the normalizer options, use the standalone NFD / Lowercase /
StripAccents normalizers, a short max_input_chars_per_word, added tokens and the decoder without
cleanup; the varied text set (tokenizer_texts.json), random strings and, with $S3ATTN_DATA, long
documents: same ids, same offsets, same decoded text. Every code point of Unicode goes once through
the normalizer and once between two letters through the pre-tokenizer (the class tables of
core/tokenizer/unicode_bert_tables.cpp are checked there). With the dense model installed
(scripts/get_model.sh all-minilm-l6-v2), the same on its real tokenizer.json.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, normalizers

from test_tokenizer_parity import FUZZ_POOL, REPO, compare, long_documents, run_tool, text_set, tool

MINILM = REPO / "models" / "all-minilm-l6-v2" / "tokenizer.json"
# Characters BERT's normalizer and pre-tokenizer treat specially: accents (composed and combining),
# CJK ideographs (spaced) next to kana and Hangul (not), controls and format characters (removed),
# private use, U+FFFD and NUL, dotted capital I (two code points in lowercase), punctuation of
# other scripts, newer marks tokenizers' tables do not know.
BERT_POOL = FUZZ_POOL + [
    "\u00c9", "\u00e0", "\u0301", "\u0308", "\u0130", "\u1e9e", "\u00df", "\u4e00", "\u9fa5", "\u3400", "\u20000",
    "\uf900", "\u3042", "\uac00", "\u0000", "\ufffd", "\u0007", "\u007f", "\u00ad", "\u200e", "\ue000",
    "\U000f0000", "\u061d", "\u2e43", "\u0eba", "\u1734", "\u166d", "\u3001", "\uff0c", "\u00bf", "\u00a1",
    "\u2019", "\u201c", "\u2014", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##", "do not", " n't", " 's", "unaffable",
    "playing", "tokenization"]


def train_small(path: Path) -> Path:
    """A BERT WordPiece tokenizer.json with a 1,500-entry vocabulary trained on the text set."""
    from tokenizers import BertWordPieceTokenizer

    corpus = [t for _, t in text_set()] * 3
    rng = random.Random(7)
    words = "the of unaffable playing tokenization running runner café naïve über straße İstanbul".split()
    corpus += [" ".join(rng.choice(words) for _ in range(12)) for _ in range(200)]
    tok = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.train_from_iterator(corpus, vocab_size=1500, min_frequency=1, show_progress=False)
    tok.save(str(path))
    config = json.loads(path.read_text(encoding="utf-8"))
    assert config["model"]["type"] == "WordPiece" and config["normalizer"]["type"] == "BertNormalizer"
    assert config["pre_tokenizer"]["type"] == "BertPreTokenizer" and config["decoder"]["type"] == "WordPiece"
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return train_small(tmp_path_factory.mktemp("wordpiece") / "tokenizer.json")


def random_texts(seed: int, short: int, long: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    texts = ["".join(rng.choice(BERT_POOL) for _ in range(rng.randint(0, 40))) for _ in range(short)]
    texts += ["".join(rng.choice(BERT_POOL) for _ in range(rng.randint(300, 3000))) for _ in range(long)]
    return [(f"random_{i}", t) for i, t in enumerate(texts)]


def test_small_tokenizer_matches_tokenizers(small, tmp_path):
    compare(small, text_set() + random_texts(11, 600, 20), tmp_path)


def test_small_tokenizer_long_documents(small, tmp_path):
    import os
    if not os.environ.get("S3ATTN_DATA"):
        pytest.skip("S3ATTN_DATA is not set (long documents of the shared data folder)")
    compare(small, long_documents(Path(os.environ["S3ATTN_DATA"])), tmp_path)


def bert_normalizer(**flags) -> dict:
    config = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None,
              "lowercase": True}
    config.update(flags)
    return config


def added(content, special=False, **flags):
    token = {"id": 0, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": not special, "special": special}
    token.update(flags)
    return token


# name -> (top-level fields replaced, model fields replaced, added tokens appended)
VARIANTS = {
    "cased_accents_kept": ({"normalizer": bert_normalizer(lowercase=False)}, {}, []),
    "lowercase_accents_kept": ({"normalizer": bert_normalizer(strip_accents=False)}, {}, []),
    "accents_stripped_cased": ({"normalizer": bert_normalizer(lowercase=False, strip_accents=True)}, {}, []),
    "no_clean_no_chinese": ({"normalizer": bert_normalizer(clean_text=False, handle_chinese_chars=False)}, {}, []),
    "nfd_lowercase_strip": ({"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]}}, {}, []),
    "strip_without_nfd": ({"normalizer": {"type": "StripAccents"}}, {}, []),
    "no_normalizer": ({"normalizer": None}, {}, []),
    "short_words": ({}, {"max_input_chars_per_word": 5}, []),
    "other_prefix": ({"decoder": {"type": "WordPiece", "prefix": "@@", "cleanup": False}},
                     {"continuing_subword_prefix": "@@"}, []),
    "added_tokens": ({}, {}, [added("<mask>", special=True, lstrip=True), added("Café", single_word=True),
                              added("[SEP]x", normalized=True), added("ZZ")]),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_match_tokenizers(variant, small, tmp_path):
    fields, model_fields, extra_tokens = VARIANTS[variant]
    config = json.loads(small.read_text(encoding="utf-8"))
    config.update(fields)
    config["model"].update(model_fields)
    if model_fields.get("continuing_subword_prefix"):
        prefix = model_fields["continuing_subword_prefix"]
        config["model"]["vocab"] = {(prefix + k[2:] if k.startswith("##") else k): v
                                    for k, v in config["model"]["vocab"].items()}
    config["added_tokens"] = config["added_tokens"] + extra_tokens
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    extra = [("added", "Café <mask> [SEP]x café CAFÉ zz ZZ unaffable playing tokenizationtokenization")]
    compare(file, text_set() + random_texts(23, 200, 4) + extra, tmp_path)


def all_code_points() -> list[str]:
    return [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def run_mode(tokenizer_file: Path, mode: str, texts: list[str], tmp_path: Path) -> list:
    import subprocess
    batch = tmp_path / "texts.json"
    batch.write_text(json.dumps(texts), encoding="utf-8")
    proc = subprocess.run([str(tool()), str(tokenizer_file), mode, str(batch)], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


@pytest.mark.parametrize("normalizer", ["bert_default", "bert_lowercase_only", "bert_clean_chinese_only"])
def test_every_code_point_normalizes_as_tokenizers(normalizer, small, tmp_path):
    """Each code point alone through the normalizer: tokenizers' tables (older Unicode than
    utf8proc's, newer lowercase mappings) are matched everywhere, not only on common text."""
    flags = {"bert_default": {}, "bert_lowercase_only": {"clean_text": False, "handle_chinese_chars": False,
                                                          "strip_accents": False},
             "bert_clean_chinese_only": {"lowercase": False}}[normalizer]
    config = json.loads(small.read_text(encoding="utf-8"))
    config["normalizer"] = bert_normalizer(**flags)
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    ref = normalizers.BertNormalizer(**{k: v for k, v in config["normalizer"].items() if k != "type"})
    texts = all_code_points()
    ours = run_mode(file, "--normalize", texts, tmp_path)
    bad = [(f"U+{ord(t):04X}", got, ref.normalize_str(t)) for t, got in zip(texts, ours, strict=True)
           if got != ref.normalize_str(t)]
    assert not bad, f"{len(bad)} code points normalize differently, e.g. {bad[:10]}"


def test_every_code_point_pre_tokenizes_as_tokenizers(small, tmp_path):
    """Each code point between two letters through BertPreTokenizer: whitespace removed,
    punctuation isolated, anything else kept inside the word."""
    ref = Tokenizer.from_file(str(small)).pre_tokenizer
    texts = ["a" + c + "a" for c in all_code_points()]
    ours = run_mode(small, "--pre-tokenize", texts, tmp_path)
    bad = []
    for t, got in zip(texts, ours, strict=True):
        want = [w for w, _ in ref.pre_tokenize_str(t)]
        if got != want:
            bad.append((f"U+{ord(t[1]):04X}", got, want))
    assert not bad, f"{len(bad)} code points pre-tokenize differently, e.g. {bad[:10]}"


def test_decoder_cleanup_matches_tokenizers(small):
    """The WordPiece decoder's cleanup rules on ids that produce every one of them."""
    ref = Tokenizer.from_file(str(small))
    text = "I do not know . Is it ? Yes ! a , b ' c isn't I'm he's we've they're"
    ids = ref.encode(text, add_special_tokens=False).ids
    got = run_tool(small, [text], Path(small).parent)[0]
    assert got["ids"] == ids and got["decoded"] == ref.decode(ids)
    assert "know. is it? yes! a, b" in got["decoded"], got["decoded"]  # cleanup ran, token by token


def test_unknown_unk_token_is_refused(small, tmp_path):
    import subprocess
    config = json.loads(small.read_text(encoding="utf-8"))
    config["model"]["unk_token"] = "<nope>"
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    text = tmp_path / "text.txt"
    text.write_text("hello", encoding="utf-8")
    proc = subprocess.run([str(tool()), str(file), str(text)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "unk_token" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


# --- the real all-MiniLM-L6-v2 tokenizer, when installed ---------------------------------------------

@pytest.fixture(scope="module")
def minilm() -> Path:
    if not MINILM.exists():
        pytest.skip(f"{MINILM.parent.relative_to(REPO)} is not installed (scripts/get_model.sh all-minilm-l6-v2)")
    return MINILM


def test_minilm_matches_tokenizers(minilm, tmp_path):
    compare(minilm, text_set() + random_texts(31, 600, 20), tmp_path)


def test_minilm_long_documents(minilm, tmp_path):
    import os
    if not os.environ.get("S3ATTN_DATA"):
        pytest.skip("S3ATTN_DATA is not set (long documents of the shared data folder)")
    compare(minilm, long_documents(Path(os.environ["S3ATTN_DATA"])), tmp_path)
