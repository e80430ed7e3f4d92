"""`s3attn index`, `ask` and `inspect` end to end on a tiny model: evidence is exact original text
within the budget for every method, indexes are refused or replaced as asked, damaged or
mismatched indexes fail clearly, and a killed rebuild leaves the old index usable."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import assert_one_line_error, make_text, read_postings, REPO, run_json, run_s3attn, s3attn_binary


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    for i in range(2):
        (root / f"doc{i}.txt").write_text(make_text(i, 120) + f"\nThe secret code word is zanzibar{i}.\n" +
                                          make_text(10 + i, 60))
    return root


@pytest.fixture(scope="module")
def index(tiny_export, tiny_sae, docs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    # The tiny tokenizer spends about 5 tokens a word: small passages keep one inside a small budget.
    run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs, "--chunk", "128",
               "--passage-words", "20", "--out", out)
    return out


def test_inspect_reports_documents_and_postings(s3attn, index, docs, tiny_export):
    info = run_json("inspect", index, "--json")
    assert info["documents"] == 2
    names = sorted(d["name"] for d in info["document_list"])
    assert names == sorted(str(p) for p in docs.iterdir())
    total = 0
    for d in info["document_list"]:
        ids = run_json("tokenize", "--tokenizer", tiny_export / "tokenizer.json", "--input", d["name"], "--json")["ids"]
        assert d["tokens"] == len(ids)
        total += len(ids)
    assert info["tokens"] == total
    assert all(layer["postings"] > 0 for layer in info["layers"])
    assert info["configuration"]["scan"]["chunk"] == 128
    assert info["configuration"]["model_fingerprint"] == json.loads((tiny_export / "model.json").read_text())["fingerprint"]


@pytest.mark.parametrize("method", ["s3", "bm25", "s3-hybrid", "full"])
def test_evidence_is_exact_text_within_budget(s3attn, index, docs, method):
    budget = 400
    out = run_json("ask", "--index", index, "--question", "What is the secret code word?", "--method", method,
                   "--budget", str(budget), "--evidence-only", "--json", "--doc", "0")
    doc_text = sorted(docs.iterdir())[0].read_text()
    evidence = out["evidence"]
    assert evidence, out
    used = sum(e["end"] - e["start"] for e in evidence)
    doc_tokens = run_json("inspect", index, "--json")["document_list"][0]["tokens"]
    assert used == out["evidence_tokens"] <= doc_tokens
    if method != "full":
        # The document is far longer than the budget: the budget binds, and the packer fills most of it
        # (a passage of 20 words is about 100 tiny-tokenizer tokens, the most it can leave unused).
        assert doc_tokens > 4 * budget
        assert budget - 128 <= used <= budget, (used, budget)
    starts = [e["start"] for e in evidence]
    assert starts == sorted(starts)
    for e in evidence:
        assert e["text"] in doc_text
        assert e["source"] in {"s3", "bm25", "lead", "tail"}
    if method == "bm25":
        assert any("zanzibar0" in e["text"] for e in evidence if e["source"] == "bm25")


def test_question_keys_instead_of_queries(s3attn, index):
    """--query-vectors keys (the default) encodes the question's own keys, queries its attention
    queries: other features, other weights."""
    def explained(*extra):
        out = run_json("ask", "--index", index, "--question", "What is the secret code word?", "--method", "s3",
                       "--budget", "64", "--evidence-only", "--explain", "--json", "--doc", "0", *extra)
        return [(f["layer"], f["feature"], round(f["weight"], 4)) for e in out["evidence"] for f in e["explain"]]
    queries, keys = explained("--query-vectors", "queries"), explained("--query-vectors", "keys")
    assert queries and keys and queries != keys
    assert explained() == keys
    proc = run_s3attn("ask", "--index", index, "--question", "q", "--query-vectors", "values", check=False)
    assert_one_line_error(proc, 2, "--query-vectors")


def test_ask_answers_with_timings(s3attn, index):
    out = run_json("ask", "--index", index, "--question", "What is the secret code word?", "--budget", "64",
                   "--max-new-tokens", "8", "--json")
    assert isinstance(out["answer"], str) and out["tokens"]
    for key in ("open_index_s", "load_model_s", "encode_query_s", "retrieval", "prefill_s", "decode_s"):
        assert key in out["timings"]
    assert out["prompt_tokens"] > out["evidence_tokens"] > 0


def test_existing_index_needs_overwrite_or_append(s3attn, index, tiny_export, tiny_sae, docs):
    proc = run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs, "--out", index, check=False)
    assert proc.returncode == 1 and "--overwrite" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_append_adds_documents_and_keeps_old_ones(s3attn, tiny_export, tiny_sae, docs, tmp_path):
    out = tmp_path / "idx"
    run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc0.txt", "--out", out)
    before = run_json("inspect", out, "--json")
    seg0 = {p.name: p.read_bytes() for p in (out / before["segments"][0]["dir"]).iterdir()}
    run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc1.txt", "--out", out, "--append")
    after = run_json("inspect", out, "--json")
    assert after["documents"] == 2 and len(after["segments"]) == 2
    assert {p.name: p.read_bytes() for p in (out / before["segments"][0]["dir"]).iterdir()} == seg0


def test_corrupted_index_is_refused(s3attn, index, tmp_path):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(index, bad)
    victim = sorted(bad.rglob("postings-*.bin"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = run_s3attn("ask", "--index", bad, "--question", "x", "--evidence-only", check=False)
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1 and victim.name in err, err


def test_index_of_another_model_is_refused(s3attn, index, tmp_path):
    from tiny_models import make_tiny_model
    from s3attn_testing import export_model
    other = export_model(make_tiny_model("llama", tmp_path / "hf", seed=7), tmp_path / "other")
    proc = run_s3attn("ask", "--index", index, "--model", other, "--question", "x", "--method", "bm25",
                      "--evidence-only", check=False)
    assert proc.returncode == 1 and "another model" in proc.stderr


def test_empty_input_is_refused(s3attn, tiny_export, tiny_sae, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    proc = run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", tmp_path / "empty.txt",
                      "--out", tmp_path / "idx", check=False)
    assert proc.returncode == 1 and "no documents" in proc.stderr
    assert not (tmp_path / "idx").exists()


def test_killed_rebuild_leaves_old_index_usable(s3attn, index, tiny_export, tiny_sae, tmp_path):
    import shutil
    target = tmp_path / "idx"
    shutil.copytree(index, target)
    before = run_json("inspect", target, "--json")
    big = tmp_path / "big.txt"
    big.write_text(make_text(99, 6000))
    proc = subprocess.Popen([str(s3attn_binary()), "index", "--model", str(tiny_export), "--sae", str(tiny_sae),
                             "--input", str(big), "--chunk", "64", "--out", str(target), "--overwrite"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill it mid-scan: progress lines ("index  20% ...") go to stderr when it is not a terminal.
    for line in proc.stderr:
        if line.startswith(b"index") and b"100%" not in line and b" 0%" not in line:
            break
    assert proc.poll() is None, "the rebuild finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = run_json("inspect", target, "--json")
    assert after["documents"] == before["documents"] and after["tokens"] == before["tokens"]
    out = run_json("ask", "--index", target, "--question", "secret code", "--method", "bm25", "--evidence-only",
                   "--json")
    assert out["evidence"]


def test_chunk_overlap_is_recorded_and_validated(s3attn, tiny_export, tiny_sae, docs, tmp_path):
    """--chunk-overlap runs warm-up tokens through the model; the index covers the same tokens."""
    out = tmp_path / "idx"
    run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc0.txt", "--chunk", "128",
               "--chunk-overlap", "32", "--out", out)
    info = run_json("inspect", out, "--json")
    assert info["configuration"]["scan"]["overlap"] == 32
    plain = tmp_path / "plain"
    run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc0.txt", "--chunk", "128",
               "--out", plain)
    assert info["tokens"] == run_json("inspect", plain, "--json")["tokens"]
    proc = run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc0.txt", "--chunk",
                      "128", "--chunk-overlap", "128", "--out", tmp_path / "bad", check=False)
    assert proc.returncode == 2 and "--chunk-overlap" in proc.stderr


@pytest.mark.parametrize("flag,bad,choices", [("--chunk-bos", "sometimes", "auto | always | never"),
                                               ("--sae-bitmap", "sideways", "auto | fused | aten")])
def test_enum_flags_name_their_choices(s3attn, tiny_export, tiny_sae, docs, tmp_path, flag, bad, choices):
    """A misspelled choice is refused while parsing (exit 2, one line naming the choices); a valid
    one is taken, and --chunk-bos never is what the index records."""
    proc = run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc0.txt", flag, bad,
                      "--out", tmp_path / "bad", check=False)
    assert_one_line_error(proc, 2)
    assert flag in proc.stderr and f"'{bad}'" in proc.stderr and choices in proc.stderr
    assert not (tmp_path / "bad").exists()
    good = {"--chunk-bos": "never", "--sae-bitmap": "aten"}[flag]
    out = tmp_path / "good"
    run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--input", docs / "doc0.txt", flag, good,
               "--out", out)
    if flag == "--chunk-bos":
        assert run_json("inspect", out, "--json")["configuration"]["scan"]["chunk_bos"] is False


@pytest.mark.parametrize("overlap,text", [("0", "ascii"), ("16", "ascii"), ("0", "multibyte")])
def test_first_chunks_from_text_windows_index_like_any_chunk(s3attn, tiny_export, tiny_sae, docs, tmp_path, overlap,
                                                              text):
    """The first document's first chunks (one per pinned buffer, 3) run from windows of its text
    tokenized on the spot while the whole input is tokenized beside them; the postings are those of
    the same document indexed second (every chunk through the regular path), shifted by the first
    document's tokens, whether an early chunk was kept or redone. Windows of multibyte text end
    between characters."""
    long_doc = docs / "doc0.txt"
    if text == "multibyte":
        import random
        rng = random.Random(7)
        words = ["café", "naïve", "Ødegaard", "日本語", "ελληνικά", "emoji😀", "€uro", "plain"]
        long_doc = tmp_path / "multibyte.txt"
        long_doc.write_text(" ".join(rng.choice(words) for _ in range(900)), encoding="utf-8")
    short_doc = tmp_path / "a_short.txt"
    short_doc.write_text("A short note about the harbor.")
    alone = run_json("index", "--model", tiny_export, "--sae", tiny_sae, "--input", long_doc, "--chunk", "64",
                     "--chunk-overlap", overlap, "--out", tmp_path / "alone", "--json")
    assert alone["early_chunks"] >= 1  # the first window starts where the text does
    assert alone["early_chunks"] + alone["early_chunks_redone"] == 3
    assert alone["chunks"] > 3
    second = run_json("index", "--model", tiny_export, "--sae", tiny_sae, "--input", short_doc, long_doc,
                      "--chunk", "64", "--chunk-overlap", overlap, "--out", tmp_path / "second", "--json")
    shift = second["tokens"] - alone["tokens"]
    assert shift > 0
    files = sorted((tmp_path / "alone" / "seg-000000").glob("postings-l*.bin"))
    assert files
    for file in files:
        want = read_postings(file)
        got = read_postings(tmp_path / "second" / "seg-000000" / file.name)
        assert sum(map(len, want)) > 0
        assert [[p - shift for p in plist if p >= shift] for plist in got] == want, file.name


def test_questions_file_answers_each_line_as_ask_does(s3attn, index, tmp_path):
    """One process, many questions: each JSON line is what `ask --question` gives for that line."""
    asked = ["What is the secret code word?", "Which river is near the market?", "Who is the scholar?"]
    f = tmp_path / "questions.txt"
    f.write_text(asked[0] + "\n\n" + asked[1] + "\r\n" + asked[2])  # blank line skipped, CRLF accepted
    common = ["--budget", "64", "--max-new-tokens", "4", "--json", "--doc", "0"]
    lines = run_s3attn("ask", "--index", index, "--questions-file", f, *common).stdout.splitlines()
    assert len(lines) == 3
    for q, line in zip(asked, lines):
        many, one = json.loads(line), run_json("ask", "--index", index, "--question", q, *common)
        assert many["question"] == q
        for key in ("answer", "evidence", "tokens", "context", "evidence_tokens"):
            assert many[key] == one[key], key
    (tmp_path / "blank.txt").write_text("\n  \n")
    proc = run_s3attn("ask", "--index", index, "--questions-file", tmp_path / "blank.txt", check=False)
    assert_one_line_error(proc, 2, "--questions-file", "no question")
    proc = run_s3attn("ask", "--index", index, "--question", "q", "--questions-file", f, check=False)
    assert_one_line_error(proc, 2, "--question")
    proc = run_s3attn("ask", "--index", index, check=False)
    assert_one_line_error(proc, 2, "--question")
