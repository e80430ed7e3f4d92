"""Facts planted in a long haystack (Paul Graham essays, longer than the default model's 8K window)
must be found by `s3attn ask`: in the evidence of s3-hybrid and of bm25, and in s3-hybrid's answer.
The recall of s3 on its own is printed (`pytest -s`), not asserted: two needles say little about
it, and docs/results.md and docs/needles.md measure it on many."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3attn_testing import run_json, run_s3attn

# (planted sentence, question, the fact that must be in the evidence, the word that must be in the
# answer). The fact leaves out the sentence's first word: a token that starts with the space before
# it belongs to the previous BM25 passage.
NEEDLES = [
    ("The secret passphrase of the lighthouse keeper is marigold.", "What is the secret passphrase of the lighthouse keeper?",
     "lighthouse keeper is marigold", "marigold"),
    ("The expedition's ship was named the Silver Heron.", "What was the name of the expedition's ship?",
     "ship was named the Silver Heron", "Heron"),
]
DEPTHS = (0.2, 0.8)
HAYSTACK_CHARS = 60_000  # about 13K tokens with the SmolLM2 tokenizer


@pytest.fixture(scope="module")
def haystack(data_dir, tmp_path_factory) -> Path:
    text = json.loads((data_dir / "haystack" / "PaulGrahamEssays.json").read_text())["text"][:HAYSTACK_CHARS]
    for (needle, _, _, _), depth in sorted(zip(NEEDLES, DEPTHS), key=lambda x: -x[1]):
        at = text.find(". ", int(len(text) * depth)) + 2  # at a sentence boundary
        text = text[:at] + needle + " " + text[at:]
    path = tmp_path_factory.mktemp("haystack") / "haystack.txt"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def haystack_index(s3attn, default_model, default_sae, haystack, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hsidx") / "index"
    summary = run_json("index", "--model", default_model, "--sae", default_sae, "--input", haystack, "--out", out,
                       "--json")
    meta = json.loads((default_model / "model.json").read_text())
    assert summary["tokens"] > meta["max_position_embeddings"], "the haystack must be longer than the window"
    return out


def evidence_text(out: dict) -> str:
    """Evidence ranges joined: touching ranges (possibly of different sources) run together."""
    text, last_end = "", None
    for e in out["evidence"]:
        text += ("" if e["start"] == last_end else "\n") + e["text"]
        last_end = e["end"]
    return text


def test_s3_hybrid_finds_and_answers_planted_facts(haystack_index):
    for _, question, fact, key in NEEDLES:
        out = run_json("ask", "--index", haystack_index, "--question", question, "--method", "s3-hybrid",
                       "--budget", "1024", "--max-new-tokens", "32", "--json")
        assert fact in evidence_text(out), (question, [e["source"] for e in out["evidence"]])
        assert key.lower() in out["answer"].lower(), (question, out["answer"])


def test_retrieval_recall_of_s3_and_bm25(haystack_index, capsys):
    recall = {}
    for method in ("s3", "bm25", "s3-hybrid"):
        found = 0
        for _, question, fact, _ in NEEDLES:
            out = run_json("ask", "--index", haystack_index, "--question", question, "--method", method,
                           "--budget", "1024", "--evidence-only", "--json")
            found += fact in evidence_text(out)
        recall[method] = found / len(NEEDLES)
    with capsys.disabled():
        print(f"\nhaystack retrieval recall at budget 1024 ({len(NEEDLES)} needles): {json.dumps(recall)}")
    # BM25 is deterministic and finds both facts by their words; s3 alone is what docs/results.md measures.
    assert recall["s3-hybrid"] == 1.0 and recall["bm25"] == 1.0
