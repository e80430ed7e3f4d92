"""Lexical-only indexes end to end on a tiny model: `s3attn index` without --sae tokenizes only (no
model.ts needed), `ask --method bm25 | dense | full` give the evidence of the index the SAE scan
builds from the same documents, the SAE methods refuse such an index with one line, and `longbench
--method bm25` without --sae writes the rows of a run with it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from s3attn_testing import assert_one_line_error, make_text, rewrite_manifest, run_json, run_s3attn, s3attn_binary

QUESTIONS = ("What is the secret code word?", "Which lantern stood by the harbor bridge?",
             "Where did the merchant keep the grain?")


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    for i in range(3):
        (root / f"doc{i}.txt").write_text(make_text(i, 40 + 30 * i) + f"\nThe secret code word is zanzibar{i}.\n" +
                                          make_text(10 + i, 25))
    return root


@pytest.fixture(scope="module")
def indexes(tiny_export, tiny_sae, docs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("idx")
    common = ["--model", tiny_export, "--input", docs, "--passage-words", "20"]
    run_s3attn("index", *common, "--sae", tiny_sae, "--chunk", "128", "--out", root / "sae")
    run_s3attn("index", *common, "--out", root / "lex")
    return {"sae": root / "sae", "lex": root / "lex"}


def test_index_without_sae_is_lexical_only(indexes, tiny_export, tmp_path, docs):
    lex = run_json("inspect", indexes["lex"], "--json")
    sae = run_json("inspect", indexes["sae"], "--json")
    assert lex["content"] == "lexical-only" and sae["content"] == "sae-features"
    assert lex["layers"] == [] and lex["postings"] == 0 and lex["d_latent"] == 0
    for key in ("documents", "tokens", "passages"):
        assert lex[key] == sae[key], key
    assert [d["tokens"] for d in lex["document_list"]] == [d["tokens"] for d in sae["document_list"]]
    assert "scan" not in lex["configuration"]
    assert lex["configuration"]["model_fingerprint"] == sae["configuration"]["model_fingerprint"]
    assert lex["configuration"]["tokenizer_fingerprint"] == sae["configuration"]["tokenizer_fingerprint"]
    assert not list(indexes["lex"].glob("seg-*/postings-*"))
    text = run_s3attn("inspect", indexes["lex"]).stdout
    assert "lexical-only" in text and "built without --sae" in text
    # Tokenizing needs model.json and tokenizer.json only: model.ts is never loaded (here it is not
    # TorchScript at all), so no forward runs.
    bare = tmp_path / "bare"
    shutil.copytree(tiny_export, bare)
    (bare / "model.ts").write_bytes(b"not a TorchScript archive")
    summary = run_json("index", "--model", bare, "--input", docs, "--passage-words", "20", "--out", tmp_path / "i",
                       "--json")
    assert summary["content"] == "lexical-only" and summary["chunks"] == 0 and summary["postings"] == 0
    assert summary["tokens"] == lex["tokens"]


@pytest.mark.parametrize("method", ["bm25", "full"])
@pytest.mark.parametrize("budget", [60, 400, 100000])
def test_evidence_equals_the_sae_index(indexes, method, budget):
    size = run_json("inspect", indexes["lex"], "--json")["tokens"]
    assert budget < size or budget > size
    for question in QUESTIONS:
        for doc in ([], ["--doc", "1"]):
            got = {}
            for kind, index in indexes.items():
                out = run_json("ask", "--index", index, "--question", question, "--method", method, "--budget",
                               str(budget), "--evidence-only", "--json", *doc)
                got[kind] = {k: out[k] for k in ("evidence", "context", "evidence_tokens", "budget")}
            assert got["lex"]["evidence"], got
            assert got["lex"] == got["sae"], (question, doc)


@pytest.mark.parametrize("method", ["s3", "s3-hybrid", "s3-dense"])
def test_sae_methods_refuse_a_lexical_only_index(indexes, method):
    proc = run_s3attn("ask", "--index", indexes["lex"], "--question", "What?", "--method", method,
                      "--evidence-only", check=False)
    assert_one_line_error(proc, 1, str(indexes["lex"]), "without an SAE", f"method {method}", "--method bm25")


def test_scan_flags_and_appends_without_sae(indexes, tiny_export, tiny_sae, docs, tmp_path):
    proc = run_s3attn("index", "--model", tiny_export, "--input", docs, "--chunk", "128", "--out", tmp_path / "x",
                      check=False)
    assert_one_line_error(proc, 2, "--chunk", "without --sae")
    assert not (tmp_path / "x").exists()
    copy = tmp_path / "lex"
    shutil.copytree(indexes["lex"], copy)
    proc = run_s3attn("index", "--model", tiny_export, "--sae", tiny_sae, "--chunk", "128", "--input", docs,
                      "--passage-words", "20", "--out", copy, "--append", check=False)
    assert_one_line_error(proc, 1, "lexical-only (built without an SAE)")
    run_s3attn("index", "--model", tiny_export, "--input", docs, "--passage-words", "20", "--out", copy, "--append")
    assert run_json("inspect", copy, "--json")["documents"] == 6


def test_zero_layers_without_the_marker_is_refused(indexes, tmp_path):
    copy = tmp_path / "lex"
    shutil.copytree(indexes["lex"], copy)
    rewrite_manifest(copy, lambda m: m.pop("content"))
    proc = run_s3attn("ask", "--index", copy, "--question", "What?", "--method", "bm25", "--evidence-only",
                      check=False)
    assert_one_line_error(proc, 1, "manifest.json", "no layers")


# --- longbench -----------------------------------------------------------------------------------

def task_files(root: Path, rows: list[dict]) -> tuple[Path, Path]:
    config, data = root / "config", root / "data"
    config.mkdir(parents=True)
    data.mkdir(parents=True)
    (config / "dataset2prompt.json").write_text(json.dumps({"qa": "{context}\n\nQuestion: {input}\nAnswer:"}))
    (config / "dataset2maxlen.json").write_text(json.dumps({"qa": 4}))
    (data / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return config, data


def longbench(model, config, data, out, *extra, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    proc = subprocess.run([str(s3attn_binary()), "longbench", "--data", str(data), "--config", str(config),
                           "--tasks", "qa", "--model", str(model), "--out", str(out), *map(str, extra)],
                          capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def lb_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    rows = [{"_id": f"s{i}", "input": QUESTIONS[i % len(QUESTIONS)], "answers": [f"zanzibar{i}"],
             "context": make_text(i, 30 + 10 * i) + f" The secret code word is zanzibar{i}. " + make_text(20 + i, 20)}
            for i in range(3)]
    rows.append({"_id": "empty", "input": "What?", "context": "", "answers": ["x"]})
    return task_files(root, rows)


def test_longbench_bm25_without_sae_writes_the_rows_of_a_run_with_it(tiny_export, tiny_sae, lb_task, tmp_path):
    config, data = lb_task
    args = ("--method", "bm25", "--budget", "64", "--passage-words", "20", "--max-length", "200",
            "--record-evidence")
    longbench(tiny_export, config, data, tmp_path / "with", *args, "--sae", tiny_sae, "--chunk", "128")
    longbench(tiny_export, config, data, tmp_path / "without", *args)
    read = lambda run: [json.loads(line) for line in (run / "qa.jsonl").read_text().splitlines()]
    keep = ("_id", "pred", "answers", "prompt_tokens", "raw_prompt_tokens", "truncated", "evidence_tokens",
            "new_tokens", "stop_reason", "evidence")
    with_rows, without_rows = read(tmp_path / "with"), read(tmp_path / "without")
    assert [r["_id"] for r in without_rows] == ["s0", "s1", "s2", "empty"]
    assert [{k: r[k] for k in keep} for r in without_rows] == [{k: r[k] for k in keep} for r in with_rows]
    assert all(r["evidence"] for r in without_rows[:3])
    m_with = json.loads((tmp_path / "with" / "manifest.json").read_text())
    m_without = json.loads((tmp_path / "without" / "manifest.json").read_text())
    assert m_with["context_index"] == "sae-features" and m_with["sae"]["path"]
    assert m_without["context_index"] == "lexical-only" and m_without["sae"] is None
    assert not (tmp_path / "without" / ".tmp").exists()


def test_longbench_sae_methods_still_need_an_sae(tiny_export, lb_task, tmp_path):
    config, data = lb_task
    # The tiny model has no <model>/sae: s3 without --sae names the missing default and the flag.
    assert not (tiny_export / "sae").exists()
    for method in ("s3", "s3-hybrid"):
        proc = longbench(tiny_export, config, data, tmp_path / method, "--method", method, check=False)
        assert_one_line_error(proc, 1, f"method {method}", str(tiny_export / "sae"), "pass --sae")
        assert not list((tmp_path / method).glob("*.jsonl"))
