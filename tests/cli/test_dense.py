"""Dense retrieval end to end on tiny models (a random Llama, its random SAE, a random sentence-
transformers BERT exported by scripts/export_embedding.py): `index --dense-model` stores one vector
per BM25 passage, `inspect` shows them, `ask --method dense` ranks passages by cosine with the
question's embedding and packs them to the budget like every method, s3-dense mixes them with S3,
appends keep the embeddings consistent, and every misuse is one clear line."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from s3attn_testing import assert_one_line_error, export_tiny_bert, run_json, run_s3attn

# Sentences of exactly 20 words: with --passage-words 20 each one is a passage of its own.
FILLER = ("river market library grain merchant scholar harbor lantern copper orchard meadow bridge winter signal "
          "archive compass garden tower valley forest candle mirror").split()
SECRET = ("The secret code word of the harbor office is zanzibar and only the old lighthouse keeper "
          "remembers it today.")
OTHER_SECRET = ("The night train to the northern valley always leaves from platform fourteen just after the "
                "church bells ring.")


def sentence(seed: int) -> str:
    import random
    rng = random.Random(seed)
    return " ".join(rng.choice(FILLER) for _ in range(20)).capitalize() + "."


def write_doc(path: Path, seed: int, planted: str, n: int = 40) -> Path:
    sentences = [sentence(seed * 1000 + i) for i in range(n)]
    sentences.insert(n // 2, planted)
    path.write_text(" ".join(sentences) + "\n")
    return path


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dense-docs")
    write_doc(root / "doc0.txt", 0, SECRET)
    write_doc(root / "doc1.txt", 1, OTHER_SECRET)
    return root


def index_args(tiny_export, tiny_sae, inputs, out, *extra):
    return ("index", "--model", tiny_export, "--sae", tiny_sae, "--input", *inputs, "--chunk", "128",
            "--passage-words", "20", "--out", out, *extra)


@pytest.fixture(scope="module")
def dense_index(tiny_export, tiny_sae, tiny_bert, docs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dense-idx") / "index"
    summary = run_json(*index_args(tiny_export, tiny_sae, [docs], out, "--dense-model", tiny_bert, "--json"))
    assert summary["dense"]["passages"] == run_json("inspect", out, "--json")["passages"]
    # The tiny vocabulary spends several tokens a word: passages exceed max_seq_length (48) and are cut.
    assert 0 < summary["dense"]["truncated"] <= summary["dense"]["passages"] and summary["dense"]["embed_s"] > 0
    return out


def ask(index, question, method, *extra):
    return run_json("ask", "--index", index, "--question", question, "--method", method, "--evidence-only", "--json",
                    *extra)


def test_inspect_shows_the_embeddings(dense_index, tiny_bert):
    info = run_json("inspect", dense_index, "--json")
    dense = info["dense"]
    assert dense["passages"] == info["passages"] == 2 * 41
    assert dense["dim"] == 32 and dense["dtype"] == "float16"
    assert dense["file_bytes"] == 16 + 16 + info["passages"] * 32 * 2 + 16  # envelope, header, vectors, footer
    model = json.loads((tiny_bert / "embedding.json").read_text())
    assert dense["model"]["fingerprint"] == model["fingerprint"] and dense["model"]["dim"] == 32
    assert info["configuration"]["dense_model_dir"] == str(tiny_bert)
    text = run_s3attn("inspect", dense_index).stdout
    assert "dense passage embeddings: 82 vectors of 32 float16 values" in text


def test_dense_finds_the_passage_the_question_repeats(dense_index, docs):
    """A question equal to a passage's text has that passage's embedding (cosine 1 up to float16):
    its range comes first by score and is in the evidence whole."""
    out = ask(dense_index, SECRET, "dense", "--budget", "100", "--explain")
    evidence = out["evidence"]
    assert {e["source"] for e in evidence} == {"dense"}
    best = max(evidence, key=lambda e: e["score"])
    assert SECRET in best["text"] and best["doc"].endswith("doc0.txt")
    assert best["score"] > 0.999 and best["explain"]["cosine"] == pytest.approx(best["score"], abs=1e-6)
    assert all(e["score"] <= best["score"] for e in evidence)
    assert out["timings"]["embed_question_s"] > 0 and "dense_ms" in out["timings"]["retrieval"]
    other = ask(dense_index, OTHER_SECRET, "dense", "--budget", "100")
    assert OTHER_SECRET in max(other["evidence"], key=lambda e: e["score"])["text"]


@pytest.mark.parametrize("method", ["dense", "s3-dense"])
def test_evidence_is_exact_text_within_budget(dense_index, docs, method):
    budget = 300
    out = ask(dense_index, "Where is the secret code word?", method, "--budget", str(budget), "--doc", "0")
    doc_text = (docs / "doc0.txt").read_text()
    used = sum(e["end"] - e["start"] for e in out["evidence"])
    assert used == out["evidence_tokens"] == budget
    starts = [e["start"] for e in out["evidence"]]
    assert starts == sorted(starts)
    for e in out["evidence"]:
        assert e["text"] in doc_text
    sources = {e["source"] for e in out["evidence"]}
    assert sources == {"dense"} if method == "dense" else sources <= {"dense", "s3", "lead", "tail"}
    if method == "s3-dense":
        assert {"dense", "lead", "tail"} <= sources


def test_dense_passages_answer_end_to_end(dense_index):
    # One document (--doc): evidence over several would come under per-document headers, which the
    # tiny model's 256-token window has no room for.
    out = run_json("ask", "--index", dense_index, "--question", SECRET, "--method", "dense", "--budget", "48",
                   "--doc", "0", "--max-new-tokens", "4", "--json")
    assert out["method"] == "dense" and out["tokens"] and out["prompt_tokens"] > out["evidence_tokens"] > 0


def test_append_embeds_the_new_documents(tiny_export, tiny_sae, tiny_bert, docs, tmp_path):
    out = tmp_path / "idx"
    run_s3attn(*index_args(tiny_export, tiny_sae, [docs / "doc0.txt"], out, "--dense-model", tiny_bert))
    seg0 = (out / "seg-000000" / "dense.bin").read_bytes()
    run_s3attn(*index_args(tiny_export, tiny_sae, [docs / "doc1.txt"], out, "--dense-model", tiny_bert, "--append"))
    info = run_json("inspect", out, "--json")
    assert info["documents"] == 2 and len(info["segments"]) == 2
    assert info["dense"]["passages"] == info["passages"] == 82
    assert (out / "seg-000000" / "dense.bin").read_bytes() == seg0
    best = max(ask(out, OTHER_SECRET, "dense", "--budget", "100")["evidence"], key=lambda e: e["score"])
    assert OTHER_SECRET in best["text"] and best["doc"].endswith("doc1.txt")
    # The same run without the dense model would leave the new documents without vectors.
    proc = run_s3attn(*index_args(tiny_export, tiny_sae, [docs / "doc1.txt"], out, "--append"), check=False)
    assert_one_line_error(proc, 1, "cannot append", "dense passage embeddings", "has no --dense-model")


def test_index_without_embeddings_is_refused_for_dense_methods(tiny_export, tiny_sae, docs, tmp_path):
    out = tmp_path / "plain"
    run_s3attn(*index_args(tiny_export, tiny_sae, [docs / "doc0.txt"], out))
    assert run_json("inspect", out, "--json")["dense"] is None
    for method in ("dense", "s3-dense"):
        proc = run_s3attn("ask", "--index", out, "--question", "x", "--method", method, "--evidence-only", check=False)
        assert_one_line_error(proc, 1, "no dense passage embeddings", "--dense-model")


def test_bad_dense_models_are_refused(tiny_export, tiny_sae, tiny_bert, dense_index, docs, tmp_path):
    args = index_args(tiny_export, tiny_sae, [docs / "doc0.txt"], tmp_path / "idx")
    proc = run_s3attn(*args, "--dense-model", tmp_path / "missing", check=False)
    assert_one_line_error(proc, 1, "does not exist", "get_model.sh all-minilm-l6-v2")
    proc = run_s3attn(*args, "--dense-model", tiny_export, check=False)
    assert_one_line_error(proc, 1, "not an embedding model directory", "language model")
    assert not (tmp_path / "idx").exists()
    # Another sentence encoder than the one that embedded the passages.
    other = export_tiny_bert(tmp_path / "other", seed=5)
    proc = run_s3attn("ask", "--index", dense_index, "--question", "x", "--method", "dense", "--dense-model", other,
                      "--evidence-only", check=False)
    assert_one_line_error(proc, 1, "another dense model")
    # The model the index recorded is gone: --dense-model points at a copy.
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert, copy)
    out = ask(dense_index, SECRET, "dense", "--dense-model", str(copy), "--budget", "40")
    assert SECRET[:40] in "".join(e["text"] for e in out["evidence"])


def test_sharded_builds_refuse_dense_embeddings(tiny_export, tiny_sae, tiny_bert, docs, tmp_path):
    """Under torchrun (RANK / WORLD_SIZE) a build would need every rank's passages embedded and
    carried through the merge: refused with one usage line before any work, nothing written."""
    import os
    import subprocess

    from s3attn_testing import s3attn_binary

    out = tmp_path / "idx"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(RANK="0", WORLD_SIZE="2", LOCAL_RANK="0")
    args = [str(a) for a in index_args(tiny_export, tiny_sae, [docs / "doc0.txt"], out, "--dense-model", tiny_bert)]
    proc = subprocess.run([str(s3attn_binary()), *args], capture_output=True, text=True, timeout=300, env=env)
    assert_one_line_error(proc, 2, "--dense-model is not supported in sharded builds")
    assert not any(tmp_path.iterdir())


def test_damaged_embeddings_are_refused(dense_index, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(dense_index, bad)
    victim = bad / "seg-000000" / "dense.bin"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x40
    victim.write_bytes(bytes(data))
    for method in ("dense", "bm25"):  # the reader checks every file whatever the method
        proc = run_s3attn("ask", "--index", bad, "--question", "x", "--method", method, "--evidence-only", check=False)
        assert_one_line_error(proc, 1, "dense.bin", "checksum")
    proc = run_s3attn("inspect", bad, check=False)
    assert_one_line_error(proc, 1, "dense.bin")


def write_longbench(root: Path) -> tuple[Path, Path]:
    """A LongBench-shaped multi_news task of two rows over the dense test documents (the retrieval
    question is the row's input), with a minimal config."""
    data, config = root / "data", root / "config"
    data.mkdir()
    config.mkdir()
    rows = []
    for i, planted in enumerate((SECRET, OTHER_SECRET)):
        context = write_doc(root / f"ctx{i}.txt", i, planted, n=30).read_text()
        rows.append({"input": planted, "context": context, "answers": ["x"], "length": len(context.split()),
                     "dataset": "multi_news", "language": "en", "all_classes": None, "_id": f"dense-{i}"})
    (data / "multi_news.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (config / "dataset2prompt.json").write_text(json.dumps({"multi_news": "News:\n{context}\n\nSummary:"}))
    (config / "dataset2maxlen.json").write_text(json.dumps({"multi_news": 4}))
    return data, config


@pytest.mark.parametrize("method", ["dense", "s3-dense"])
def test_longbench_runs_the_dense_methods(tiny_export, tiny_sae, tiny_bert, tmp_path, method):
    """`s3attn longbench --method dense|s3-dense --dense-model`: each context is indexed with its
    passages embedded, the evidence fills the budget, the manifest records the dense model."""
    data, config = write_longbench(tmp_path)
    out = tmp_path / "run"
    base = ("longbench", "--data", data, "--config", config, "--tasks", "multi_news", "--model", tiny_export,
            "--sae", tiny_sae, "--method", method, "--budget", "64", "--max-length", "160",
            "--max-new-tokens-cap", "4", "--out", out)
    proc = run_s3attn(*base, check=False)  # the dense model is required
    assert_one_line_error(proc, 2, "--dense-model")
    run_s3attn(*base, "--dense-model", tiny_bert)
    got = [json.loads(line) for line in (out / "multi_news.jsonl").read_text().splitlines()]
    assert [r["_id"] for r in got] == ["dense-0", "dense-1"]
    for r in got:
        assert r["evidence_tokens"] == 64 and r["prompt_tokens"] > 64 and isinstance(r["pred"], str)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == method
    assert manifest["dense_model"]["fingerprint"] == json.loads((tiny_bert / "embedding.json").read_text())["fingerprint"]
