"""`--answer-model`: retrieval with the index's model and SAE, the prompt, the budget's tokens and the
answer from another model. Two tiny models whose tokenizers cut the same text differently (300 and
270 BPE entries), so a budget counted in the wrong model's tokens shows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO, assert_one_line_error, export_model, run_json, run_s3attn, s3attn_binary
from tiny_models import make_tiny_model

WORDS = ("river market library grain merchant scholar harbor lantern copper orchard meadow bridge "
         "winter signal archive compass garden tower valley forest candle mirror").split()


def text(seed: int, sentences: int) -> str:
    import random
    rng = random.Random(seed)
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize() + "." for _ in range(sentences)]
    out.insert(sentences // 2, "The harbor code word is zanzibar.")
    return " ".join(out) + "\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("answer-models")
    index_model = export_model(make_tiny_model("llama", root / "hf-index", window=4096), root / "index-model")
    answer_model = export_model(make_tiny_model("qwen2", root / "hf-answer", seed=3, window=2048, tokenizer_vocab=270),
                                root / "answer-model")
    sae = root / "sae"
    layers = ",".join(map(str, json.loads((index_model / "model.json").read_text())["default_taps"]))
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_sae.py"), "--model", str(index_model),
                    "--layers", layers, "--latents", "256", "--k", "8", "--dtype", "float32", "--out", str(sae)],
                   check=True, capture_output=True)
    return {"index": index_model, "answer": answer_model, "sae": sae}


@pytest.fixture(scope="module")
def index(models, tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("answer-docs")
    files = []
    for i in range(2):
        f = root / f"doc{i}.txt"
        f.write_text(text(i, 60))
        files.append(f)
    out = root / "index"
    run_s3attn("index", "--model", models["index"], "--sae", models["sae"], "--input", *files, "--chunk", "128",
               "--passage-words", "15", "--out", out)
    return out, files


def answer_tokens(models, evidence: list[dict]) -> int:
    """The evidence in the answer model's tokens, counted by Hugging Face tokenizers: each run of
    touching ranges of one document as one text."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(models["answer"] / "tokenizer.json"))
    runs, last = [], None
    for e in evidence:
        if last is not None and last["doc"] == e["doc"] and last["end"] == e["start"]:
            runs[-1] += e["text"]
        else:
            runs.append(e["text"])
        last = e
    return sum(len(tok.encode(r, add_special_tokens=False).ids) for r in runs)


@pytest.mark.parametrize("method", ["s3", "bm25", "s3-hybrid", "full"])
def test_budget_counts_the_answer_models_tokens(models, index, method):
    budget = 300
    out = run_json("ask", "--index", index[0], "--question", "What is the harbor code word?", "--method", method,
                   "--budget", str(budget), "--max-new-tokens", "4", "--answer-model", models["answer"], "--json")
    assert out["models"]["answer"]["path"] == str(models["answer"])
    assert out["models"]["answer"]["fingerprint"] == json.loads((models["answer"] / "model.json").read_text())["fingerprint"]
    assert out["models"]["index"] != out["models"]["answer"]
    counted = answer_tokens(models, out["evidence"])
    assert out["answer_evidence_tokens"] == counted
    if method == "full":  # the whole answer window, less the prompt and the answer
        assert out["prompt_tokens"] + 4 <= 2048 and counted > 1500
    else:
        # within the budget in the answer model's tokens, and filled to near it (the packer's steps)
        assert counted <= budget and counted >= budget * 0.8, counted
        # the 270-entry tokenizer cuts more finely: fewer index tokens than answer tokens
        assert out["evidence_tokens"] < counted
    assert out["tokens"] and isinstance(out["answer"], str)


def test_without_answer_model_the_budget_is_index_tokens(models, index):
    out = run_json("ask", "--index", index[0], "--question", "What is the harbor code word?", "--method", "bm25",
                   "--budget", "300", "--max-new-tokens", "4", "--json")
    assert out["evidence_tokens"] == out["answer_evidence_tokens"] == 300
    assert out["models"]["index"] == out["models"]["answer"]


def test_bm25_with_answer_model_does_not_load_the_index_model(models, index):
    """bm25 reads the index alone: the index's model is not needed (nor loaded) with --answer-model."""
    out = run_json("ask", "--index", index[0], "--question", "What is the harbor code word?", "--method", "bm25",
                   "--model", "/nonexistent-model", "--answer-model", models["answer"], "--max-new-tokens", "2",
                   "--budget", "200", "--json")
    assert out["tokens"]


def test_missing_or_bad_answer_model_is_one_line(models, index, tmp_path):
    proc = run_s3attn("ask", "--index", index[0], "--question", "q", "--answer-model", tmp_path / "none", check=False)
    assert_one_line_error(proc, 1, "--answer-model")
    (tmp_path / "empty").mkdir()
    proc = run_s3attn("ask", "--index", index[0], "--question", "q", "--answer-model", tmp_path / "empty", check=False)
    assert_one_line_error(proc, 1, "--answer-model", "model.json")
    # the answer model's window (2,048) is what the budget must fit
    proc = run_s3attn("ask", "--index", index[0], "--question", "q", "--answer-model", models["answer"],
                      "--budget", "3000", check=False)
    assert_one_line_error(proc, 2, "--budget", "2048")


def test_longbench_with_answer_model(models, index, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "dataset2prompt.json").write_text(json.dumps({"mytask": "Read this. {context}\nQuestion: {input}\nAnswer:"}))
    (config / "dataset2maxlen.json").write_text(json.dumps({"mytask": 3}))
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"_id": str(i), "input": "What is the harbor code word?", "context": text(10 + i, 80),
             "answers": ["zanzibar"], "all_classes": None, "length": 1} for i in range(2)]
    (data / "mytask.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for method in ("s3-hybrid", "full"):
        out = tmp_path / method
        proc = subprocess.run([str(s3attn_binary()), "longbench", "--data", str(data), "--config", str(config),
                               "--tasks", "mytask", "--model", str(models["index"]), "--sae", str(models["sae"]),
                               "--answer-model", str(models["answer"]), "--method", method, "--budget", "200",
                               "--out", str(out)], capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")})
        assert proc.returncode == 0, proc.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["model"]["path"] == str(models["answer"].resolve())
        assert manifest["model"]["max_position_embeddings"] == 2048
        assert manifest["max_length"] == 1356 and "window - 692" in manifest["max_length_rule"]
        got = [json.loads(line) for line in (out / "mytask.jsonl").read_text().splitlines()]
        assert len(got) == 2
        if method == "full":
            assert manifest["index_model"] is None
        else:
            assert manifest["index_model"]["path"] == str(models["index"].resolve())
            assert all(0 < r["evidence_tokens"] <= 200 for r in got)
