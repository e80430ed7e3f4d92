"""The C++ tokenizer (core/tokenizer/tokenizer.h) against Hugging Face `tokenizers`, the reference.

For the real Llama-2, Llama-3 and Qwen3 tokenizer.json files in $S3ATTN_DATA, for variants of them
that switch on the other supported components (Metaspace, Digits, every Split behavior, GPT-2
style ByteLevel, added tokens with lstrip / rstrip / single_word / normalized), and for a varied
text set (tokenizer_texts.json) plus long real documents, the C++ side must give exactly the same
ids, the same offsets (tokenizers' char offsets converted to byte offsets) and the same decoded
text, with and without special tokens.

The C++ side is driven through tests/core/tokenizer/tokenize_tool ($S3ATTN_TOKENIZE_TOOL, default
build/tests/core/tokenizer/tokenize_tool); one test also checks `s3attn tokenize --json` ($S3ATTN_BIN).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[3]
TEXTS = json.loads((Path(__file__).parent / "tokenizer_texts.json").read_text(encoding="utf-8"))
REAL = ("llama2", "llama3", "qwen3")


def tool() -> Path:
    path = Path(os.environ.get("S3ATTN_TOKENIZE_TOOL", REPO / "build" / "tests" / "core" / "tokenizer" / "tokenize_tool"))
    if not path.exists():
        pytest.fail(f"{path} is missing: build the tokenize_tool target (scripts/build.sh does)")
    return path


@pytest.fixture(scope="module")
def tokenizers_dir() -> Path:
    value = os.environ.get("S3ATTN_DATA")
    if not value:
        pytest.skip("S3ATTN_DATA is not set (the shared data folder with tokenizers/)")
    path = Path(value) / "tokenizers"
    if not path.is_dir():
        pytest.fail(f"S3ATTN_DATA={value} has no tokenizers/ folder")
    return path


def run_tool(tokenizer_file: Path, texts: list[str], tmp_path: Path) -> list[dict]:
    batch = tmp_path / "texts.json"
    batch.write_text(json.dumps(texts), encoding="utf-8")
    proc = subprocess.run([str(tool()), str(tokenizer_file), "--batch", str(batch)], capture_output=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


def byte_offsets(text: str, offsets) -> np.ndarray:
    """tokenizers' offsets are in chars for Python strings: convert them to UTF-8 byte offsets."""
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    lengths = 1 + (code_points >= 0x80).astype(np.int64) + (code_points >= 0x800) + (code_points >= 0x10000)
    starts = np.concatenate(([0], np.cumsum(lengths)))
    return starts[np.asarray(offsets, dtype=np.int64).reshape(-1, 2)]


def compare(tokenizer_file: Path, named_texts: list[tuple[str, str]], tmp_path: Path) -> None:
    """Asserts ids, offsets and both decodes equal tokenizers' for every text; reports every mismatch."""
    ref = Tokenizer.from_file(str(tokenizer_file))
    ours = run_tool(tokenizer_file, [t for _, t in named_texts], tmp_path)
    problems = []
    for (name, text), got in zip(named_texts, ours, strict=True):
        assert "error" not in got, f"{name}: {got.get('error')}"
        enc = ref.encode(text, add_special_tokens=False)
        if got["ids"] != enc.ids:
            first = next((i for i, (a, b) in enumerate(zip(got["ids"], enc.ids)) if a != b),
                         min(len(got["ids"]), len(enc.ids)))
            problems.append(f"{name}: ids differ at token {first}: ours {got['ids'][first:first + 6]} "
                            f"vs {enc.ids[first:first + 6]} ({len(got['ids'])} vs {len(enc.ids)} tokens)")
            continue
        ours_offsets = np.asarray(got["offsets"], dtype=np.int64).reshape(-1, 2)
        expected = byte_offsets(text, enc.offsets)
        if not np.array_equal(ours_offsets, expected):
            first = int(np.argmax((ours_offsets != expected).any(axis=1)))
            problems.append(f"{name}: offsets differ at token {first}: ours {ours_offsets[first].tolist()} "
                            f"vs {expected[first].tolist()}")
        if got["decoded"] != ref.decode(enc.ids, skip_special_tokens=False):
            problems.append(f"{name}: decode differs: {got['decoded']!r} vs "
                            f"{ref.decode(enc.ids, skip_special_tokens=False)!r}")
        if got["decoded_skip_special"] != ref.decode(enc.ids, skip_special_tokens=True):
            problems.append(f"{name}: decode(skip_special_tokens) differs: {got['decoded_skip_special']!r} vs "
                            f"{ref.decode(enc.ids, skip_special_tokens=True)!r}")
    assert not problems, f"{tokenizer_file.name}: {len(problems)} mismatches:\n" + "\n".join(problems)


def text_set() -> list[tuple[str, str]]:
    return [(t["name"], t["text"]) for t in TEXTS]


def test_text_set_is_varied():
    names = {t["name"] for t in TEXTS}
    assert len(TEXTS) >= 40 and len(names) == len(TEXTS)
    assert "" in {t["text"] for t in TEXTS}


@pytest.mark.parametrize("name", REAL)
def test_real_tokenizer_matches_tokenizers(name, tokenizers_dir, tmp_path):
    compare(tokenizers_dir / name / "tokenizer.json", text_set(), tmp_path)


@pytest.mark.parametrize("name", REAL)
def test_decode_round_trips(name, tokenizers_dir, tmp_path):
    """decode(encode(text)) gives the text back wherever tokenizers' does: byte-level BPE always (after NFC
    for Qwen), SentencePiece-style except for the leading space its decoder strips."""
    file = tokenizers_dir / name / "tokenizer.json"
    ref = Tokenizer.from_file(str(file))
    texts = [t for _, t in text_set()]
    ours = run_tool(file, texts, tmp_path)
    round_trips = 0
    for text, got in zip(texts, ours, strict=True):
        if ref.decode(ref.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text:
            assert got["decoded"] == text
            round_trips += 1
    assert round_trips >= (len(texts) * 2) // 3, f"only {round_trips} of {len(texts)} texts round-trip"


# Characters that stress the pipeline: combining marks and NFC compositions (Latin, Devanagari,
# Tibetan, Hangul jamo), exotic spaces and format characters, case folding in the (?i:'s) branch
# (long s, Kelvin sign), digits of other scripts, emoji parts, special-token strings.
FUZZ_POOL = (list("aAeEiouxyzZ09 '\t\r\n.,!?-_<>|/\\\"") + [
    "\u0301", "\u0300", "\u0323", "\u0302", "\u0308", "\u0327", "\u093c", "\u0915", "\u0958", "\u1100", "\u1161",
    "\u11a8", "\uac00", "\u00e9", "\u00c5", "\u212b", "\u2126", "\u0344", "\u0f73", "\u0f71", "\u0f72", "\u00a0",
    "\u2003", "\u3000", "\u0085", "\u180e", "\u200b", "\u200d", "\ufeff", "\u2028", "\u017f", "\u212a", "\u0130",
    "\u4e2d", "\u6587", "\u3042", "\u30a2", "\u0410", "\u044f", "\u03a3", "\u03c3", "\u05d0", "\u0627", "\u0661",
    "\uff11", "\u00bd", "\u2167", "\U0001F600", "\U0001F44D", "\U0001F3FD", "\U0001F1EB", "\U0001F1F7", "\ufe0f",
    "\u20e3", "\U0001D518", "'s", "'S", "'ll", "<s>", "</s>", "<|begin_of_text|>", "<|im_start|>", "<|endoftext|>",
    "<unk>", "  ", "\n\n", "123", "4567"])


@pytest.mark.parametrize("name", REAL)
def test_random_texts_match_tokenizers(name, tokenizers_dir, tmp_path):
    """Random strings over FUZZ_POOL (fixed seed): 600 short ones and 20 long ones."""
    rng = random.Random(20240601)
    texts = ["".join(rng.choice(FUZZ_POOL) for _ in range(rng.randint(0, 40))) for _ in range(600)]
    texts += ["".join(rng.choice(FUZZ_POOL) for _ in range(rng.randint(300, 3000))) for _ in range(20)]
    compare(tokenizers_dir / name / "tokenizer.json", [(f"random_{i}", t) for i, t in enumerate(texts)], tmp_path)


def long_documents(data: Path) -> list[tuple[str, str]]:
    docs = [("paul_graham_essays", json.loads((data / "haystack" / "PaulGrahamEssays.json").read_text())["text"])]
    with open(data / "corpora" / "wikitext-2-v1_test.jsonl", encoding="utf-8") as f:
        docs.append(("wikitext_first_article", json.loads(f.readline())["content"]))
    with open(data / "longbench" / "lcc_waterbench200.jsonl", encoding="utf-8") as f:
        docs.append(("lcc_code", json.loads(f.readline())["input"]))
    with open(data / "longbench" / "v1" / "multi_news.jsonl", encoding="utf-8") as f:
        docs.append(("multi_news", json.loads(f.readline())["context"]))
    return docs


@pytest.mark.parametrize("name", REAL)
def test_long_documents_match_tokenizers(name, tokenizers_dir, tmp_path):
    compare(tokenizers_dir / name / "tokenizer.json", long_documents(tokenizers_dir.parent), tmp_path)


# --- variants of the real files that switch on the other supported components ---------------------

def added(content, special=False, **flags):
    token = {"id": 0, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": not special, "special": special}
    token.update(flags)
    return token


BYTE_LEVEL_LAST = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


def metaspace(scheme: str, split: bool) -> dict:
    m = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
    return {"normalizer": None, "pre_tokenizer": m, "decoder": m}


def gpt2(add_prefix_space: bool) -> dict:
    return {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
                              "use_regex": True}, "post_processor": None}


def split(behavior: str) -> dict:
    return {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\s+|[.,!?]"}, "behavior": behavior, "invert": False},
        {"type": "Digits", "individual_digits": behavior == "Isolated"}, BYTE_LEVEL_LAST]}}


# name -> (base file, top-level fields replaced, added tokens appended)
VARIANTS = {
    "llama2_metaspace_first": ("llama2", metaspace("first", False), []),
    "llama2_metaspace_always_split": ("llama2", metaspace("always", True), []),
    "llama2_metaspace_never_split": ("llama2", metaspace("never", True), []),
    "gpt2_style": ("llama3", gpt2(False), []),
    "gpt2_style_prefix_space": ("llama3", gpt2(True), []),
    **{f"split_{b}": ("llama3", split(b), [])
       for b in ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")},
    "split_inverted": ("llama3", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": True},
        {"type": "Split", "pattern": {"Regex": r"\p{L}+"}, "behavior": "Isolated", "invert": True},
        BYTE_LEVEL_LAST]}}, []),
    "llama3_added_flags": ("llama3", {}, [
        added("<mask>", special=True, lstrip=True, rstrip=True), added("world", single_word=True),
        added("user", normalized=False, rstrip=True), added("ZZ"), added("Hello", special=True, normalized=False)]),
    "qwen3_normalized_added": ("qwen3", {}, [
        added("caf\u00e9"), added("\u00e9t\u00e9", single_word=True), added("<mask>", lstrip=True)]),
    "llama2_regex_replace_nfc": ("llama2", {
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            {"type": "NFC"},
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"Regex": "o+"}, "content": "0"},
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}, [
        added("\u2581foo"), added("bar", single_word=True, lstrip=True), added("<q>", special=True, normalized=True),
        added("<r>", special=True)]),
}


@pytest.fixture(scope="module")
def base_files(tokenizers_dir):
    return {n: json.loads((tokenizers_dir / n / "tokenizer.json").read_text(encoding="utf-8")) for n in REAL}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_component_variants_match_tokenizers(variant, base_files, tmp_path):
    base, fields, extra_tokens = VARIANTS[variant]
    config = {**base_files[base], **fields, "added_tokens": base_files[base]["added_tokens"] + extra_tokens}
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    extra = [("added_flags", "Hello world <mask> worlds world! user   x<mask>y ZZz caf\u00e9 cafe\u0301 "
                             "\u00e9t\u00e9 e\u0301te\u0301s foo \u2581foo bar xbar bar. a<q>b <r> <q>")]
    compare(file, text_set() + extra, tmp_path)


# --- long inputs: tokenized in pieces, cut where the pipeline cannot join the two sides -------------

def long_lines(data: Path, small: bool = False) -> list[tuple[str, str]]:
    """Single-line texts several times the tokenizer's 64 KiB piece, so that each is cut several times:
    English prose, the multilingual text set, random text over FUZZ_POOL (combining marks, exotic
    spaces, special-token strings next to spaces) and CJK with few spaces. `small`: the first and the
    third, shorter."""
    essays = " ".join(json.loads((data / "haystack" / "PaulGrahamEssays.json").read_text())["text"].split())
    rng = random.Random(7)
    fuzz = "".join(rng.choice(FUZZ_POOL + [" "] * 12) for _ in range(60_000 if small else 120_000))
    if small:
        return [("essays_one_line", essays[:200_000]), ("fuzz_one_line", fuzz)]
    multilingual = " ".join(t for _, t in text_set() if t)
    cjk = "".join(rng.choice(["\u4e2d\u6587", "\u6587\u5b57", "\u3002", " ", "\u3042\u308a", "abc", "\uff0c"])
                  for _ in range(100_000))
    return [("essays_one_line", essays[:400_000]), ("multilingual_one_line", (multilingual + " ") * 10),
            ("fuzz_one_line", fuzz), ("cjk_one_line", cjk)]


def variant_file(variant: str, base_files: dict, tmp_path: Path) -> Path:
    base, fields, extra_tokens = VARIANTS[variant]
    config = {**base_files[base], **fields, "added_tokens": base_files[base]["added_tokens"] + extra_tokens}
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    return file


@pytest.mark.parametrize("name", list(REAL) + list(VARIANTS))
def test_long_lines_match_tokenizers(name, tokenizers_dir, base_files, tmp_path):
    """Long inputs are tokenized in pieces (core/tokenizer/tokenizer_cuts.h): the ids and offsets must be those
    of the whole text, for every real tokenizer and every component variant."""
    real = name in REAL
    file = tokenizers_dir / name / "tokenizer.json" if real else variant_file(name, base_files, tmp_path)
    compare(file, long_lines(tokenizers_dir.parent, small=not real), tmp_path)


def peak_rss_bytes(command: list[str]) -> int:
    """Peak resident memory of `command`, run alone under a fresh Python process."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return int(out.stdout) * 1024


@pytest.mark.parametrize("name", REAL)
def test_long_line_memory_does_not_grow_with_the_line(name, tokenizers_dir, tmp_path):
    """A 16 MiB one-line document: the tokenizer's working memory is bounded by its pieces. The whole
    text cost ~55 bytes of memory per byte before; what remains is the text itself and the output
    (ids and offsets: ~12 bytes per token, ~3 per byte, twice that while a vector grows)."""
    data = tokenizers_dir.parent
    essays = " ".join(json.loads((data / "haystack" / "PaulGrahamEssays.json").read_text())["text"].split())
    size = 16 << 20
    text = tmp_path / "line.txt"
    text.write_text((essays + " ") * (size // len(essays) + 1), encoding="utf-8")
    with open(text, "r+b") as f:  # cut on a character boundary near 16 MiB
        f.truncate(len(text.read_bytes()[:size].decode("utf-8", errors="ignore").encode("utf-8")))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("hello world", encoding="utf-8")
    file = str(tokenizers_dir / name / "tokenizer.json")
    base = peak_rss_bytes([str(tool()), file, "--bench", str(tiny), "1"])
    peak = peak_rss_bytes([str(tool()), file, "--bench", str(text), "1"])
    per_byte = (peak - base) / text.stat().st_size
    assert per_byte < 10, f"{name}: {per_byte:.1f} bytes of memory per input byte ({peak >> 20} MiB peak)"


# --- the s3attn binary ----------------------------------------------------------------------------

def test_s3attn_tokenize_json_matches_tool(tokenizers_dir, tmp_path):
    """`s3attn tokenize --json` gives the tool's ids ($S3ATTN_BIN; scripts/test.sh sets it)."""
    binary = os.environ.get("S3ATTN_BIN")
    if not binary:
        pytest.skip("S3ATTN_BIN is not set (the s3attn binary to test)")
    assert Path(binary).exists(), f"S3ATTN_BIN={binary} does not exist"
    texts = [t for name, t in text_set() if name in ("english_paragraph", "emoji", "qwen_specials", "crlf", "empty")]
    for name in REAL:
        file = tokenizers_dir / name / "tokenizer.json"
        expected = [r["ids"] for r in run_tool(file, texts, tmp_path)]
        for text, ids in zip(texts, expected, strict=True):
            input_file = tmp_path / "input.txt"
            input_file.write_bytes(text.encode("utf-8"))
            proc = subprocess.run([binary, "tokenize", "--tokenizer", str(file), "--input", str(input_file), "--json"],
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout)["ids"] == ids, (name, text)


def test_tool_rejects_bad_input(tmp_path):
    """Errors are one clear line, exit code 1: missing file, invalid JSON, invalid UTF-8 text."""
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json", encoding="utf-8")
    text = tmp_path / "text.txt"
    text.write_bytes(b"ok")
    for file, needle in ((tmp_path / "missing.json", "no such tokenizer file"), (bad_json, "not valid JSON")):
        proc = subprocess.run([str(tool()), str(file), str(text)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"model": {"type": "BPE", "vocab": {"o": 0, "k": 1}, "merges": []}}), encoding="utf-8")
    text.write_bytes(b"ok\xff")
    proc = subprocess.run([str(tool()), str(good), str(text)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "not valid UTF-8" in proc.stderr, proc.stderr
