"""`ask` over indexes of several documents, as users build them: 2, 3 and 50 documents, in one segment
and in appended segments, every method, budgets below and above the index's size, with and without
`--doc`. The model answers (no error), the evidence is the exact text of the document it names, in
document order and within the budget, and the prompt shows it per document under a header naming
each one. The tiny model has an 8,192-token window, the default model's, so that the default budget
(2,048) fits it as it fits the default model's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO, assert_one_line_error, export_model, run_json, run_s3attn
from tiny_models import make_tiny_model

WINDOW = 8192
ABOVE = 4000  # budget above every index's size (the 2- and 3-document ones also get the default, 2,048)
MAX_NEW = 4
METHODS = ["s3", "bm25", "s3-hybrid", "full"]
WORDS = ("river market library grain merchant scholar harbor lantern copper orchard meadow bridge "
         "winter signal archive compass garden tower valley forest candle mirror").split()


def doc_text(i: int, sentences: int) -> str:
    import random
    rng = random.Random(i)
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 9))).capitalize() + "."
           for _ in range(sentences)]
    out.insert(len(out) // 2, f"The code word of document {i} is zanzibar{i}.")
    return " ".join(out) + "\n"


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wide")
    return export_model(make_tiny_model("llama", root / "hf", window=WINDOW), root / "model")


@pytest.fixture(scope="module")
def wide_sae(wide_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wide-sae") / "sae"
    layers = ",".join(map(str, json.loads((wide_model / "model.json").read_text())["default_taps"]))
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_sae.py"), "--model", str(wide_model),
                    "--layers", layers, "--latents", "256", "--k", "8", "--dtype", "float32", "--out", str(out)],
                   check=True, capture_output=True)
    return out


class Built:
    """An index and what it was built from: files in index order, their text and token offsets."""

    def __init__(self, path: Path, files: list[Path], offsets: list[list[tuple[int, int]]]):
        self.path, self.files, self.offsets = path, files, offsets
        self.texts = [f.read_text() for f in files]
        self.names = [str(f) for f in files]
        self.n_tokens = sum(len(o) for o in offsets)

    def range_text(self, doc: int, start: int, end: int) -> str:
        """Exact text of tokens [start, end) of a document, from Hugging Face tokenizers' offsets."""
        return self.texts[doc][self.offsets[doc][start][0]:self.offsets[doc][end - 1][1]]


# (documents, layout): 2 and 3 documents of about 300 tokens (below 2,048 in all), 50 of about 70 (below 4,000).
CASES = [(2, "one-segment"), (2, "appended"), (3, "one-segment"), (3, "appended"), (50, "one-segment"),
         (50, "appended")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}docs-{layout}" for n, layout in CASES])
def built(request, wide_model, wide_sae, tmp_path_factory) -> Built:
    from tokenizers import Tokenizer
    n, layout = request.param
    root = tmp_path_factory.mktemp(f"docs{n}-{layout}")
    files = []
    for i in range(n):
        f = root / f"d{i:02d}.txt"
        f.write_text(doc_text(i, 12 if n <= 3 else 1))
        files.append(f)
    out = root / "index"
    common = ["--model", wide_model, "--sae", wide_sae, "--chunk", "128", "--passage-words", "12"]
    if layout == "one-segment":
        run_s3attn("index", *common, "--input", *files, "--out", out)
    else:  # the first document, then the rest in two appends
        third = max(1, (n - 1) // 2)
        run_s3attn("index", *common, "--input", files[0], "--out", out)
        run_s3attn("index", *common, "--input", *files[1:1 + third], "--out", out, "--append")
        if files[1 + third:]:
            run_s3attn("index", *common, "--input", *files[1 + third:], "--out", out, "--append")
    tok = Tokenizer.from_file(str(wide_model / "tokenizer.json"))
    offsets = [tok.encode(f.read_text(), add_special_tokens=False).offsets for f in files]
    b = Built(out, files, offsets)
    info = run_json("inspect", out, "--json", "--documents")
    assert [d["name"] for d in info["document_list"]] == b.names
    assert info["tokens"] == b.n_tokens < (2048 if n <= 3 else ABOVE)
    assert len(info["segments"]) == (1 if layout == "one-segment" else min(3, n))
    return b


def ask(index: Path, *extra: str) -> dict:
    return run_json("ask", "--index", index, "--question", "What is the code word of document 1?",
                    "--max-new-tokens", str(MAX_NEW), "--json", *extra)


def check_evidence(b: Built, out: dict, budget: int, docs: list[int]) -> None:
    """Exact text of the named document, in document order, within the budget, shown per document."""
    evidence = out["evidence"]
    assert evidence, out
    order = [(b.names.index(e["doc"]), e["start"]) for e in evidence]
    assert order == sorted(order)
    assert {d for d, _ in order} <= set(docs)
    for (d, _), e in zip(order, evidence):
        assert 0 <= e["start"] < e["end"] <= len(b.offsets[d])
        assert e["text"] == b.range_text(d, e["start"], e["end"])
    for (d1, _), (d2, _), e1, e2 in zip(order, order[1:], evidence, evidence[1:]):
        assert d1 < d2 or e1["end"] <= e2["start"]
    used = sum(e["end"] - e["start"] for e in evidence)
    assert used == out["evidence_tokens"] <= min(budget, sum(len(b.offsets[d]) for d in docs))
    context = out["context"]
    if len(docs) > 1:  # one header per document that gave evidence, in document order
        shown = [b.names[d] for d in dict.fromkeys(d for d, _ in order)]
        at = [context.index(f"[Document: {name}]\n") for name in shown]
        assert at == sorted(at) and context.count("[Document: ") == len(shown)
        for e in evidence:
            assert e["text"] in context
    else:
        assert "[Document: " not in context


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("budget", ["below", "above"])
def test_every_method_answers_over_every_document(built, method, budget):
    few = len(built.files) <= 3
    limit = 64 if budget == "below" else 2048 if few else ABOVE
    extra = ["--method", method]
    if budget == "below" or not few:  # "above" with few documents: the default budget, 2,048
        extra += ["--budget", str(limit)]
    out = ask(built.path, *extra)
    assert isinstance(out["answer"], str) and out["tokens"], out
    assert out["prompt_tokens"] + MAX_NEW <= WINDOW
    check_evidence(built, out, limit if method != "full" else WINDOW, list(range(len(built.files))))
    if budget == "above":  # everything fits: every token of every document, each under its header
        assert out["evidence_tokens"] == built.n_tokens
        for d, text in enumerate(built.texts):
            assert f"[Document: {built.names[d]}]\n{text}" in out["context"]


@pytest.mark.parametrize("method", METHODS)
def test_evidence_only_above_the_index_size_takes_every_token(built, method):
    out = ask(built.path, "--method", method, "--budget", "100000", "--evidence-only")
    assert out["evidence_tokens"] == built.n_tokens and out["answer"] == ""
    check_evidence(built, out, 100000, list(range(len(built.files))))
    for d, text in enumerate(built.texts):  # each document whole, under its own header
        assert f"[Document: {built.names[d]}]\n{text}" in out["context"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("by", ["name", "id"])
def test_one_document_with_doc(built, method, by):
    d = len(built.files) // 2
    out = ask(built.path, "--method", method, "--budget", "64", "--doc", built.names[d] if by == "name" else str(d))
    assert out["tokens"]
    check_evidence(built, out, 64 if method != "full" else WINDOW, [d])


def test_bm25_finds_the_document_asked_about(built):
    out = ask(built.path, "--method", "bm25", "--budget", "64", "--evidence-only")
    hits = [e for e in out["evidence"] if "zanzibar1" in e["text"]]
    assert hits and all(e["doc"] == built.names[1] for e in hits)


def test_document_header_flag(built):
    out = ask(built.path, "--method", "full", "--evidence-only", "--budget", "100000", "--document-header",
              "<<{name}>>\n")
    assert out["context"].count("<<") == len(built.files)
    assert out["context"].startswith(f"<<{built.names[0]}>>\n{built.texts[0]}")


def test_unknown_doc_is_one_line_error(built):
    proc = run_s3attn("ask", "--index", built.path, "--question", "q", "--doc", "no-such-document", check=False)
    assert_one_line_error(proc, 2, "--doc", "no-such-document")
