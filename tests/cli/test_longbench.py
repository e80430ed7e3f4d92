"""`s3attn longbench` end to end with the default model on two multi_news samples: every method,
scoring with side-by-side retention, resume after a cut last line, sharding, middle truncation,
the error paths, and the L-Eval adapter. Needs S3ATTN_DATA (the data folder)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s3attn_testing import REPO, assert_one_line_error, run_s3attn, s3attn_binary

METHODS = ("full", "bm25", "s3", "s3-hybrid")
# Small enough for two CPU cores: prompts cut to 1,024 tokens, 8 answer tokens.
SMOKE = ("--limit", "2", "--max-length", "1024", "--max-new-tokens-cap", "8", "--budget", "256")


@pytest.fixture(scope="module")
def lb(data_dir) -> dict:
    return {"data": data_dir / "longbench" / "v1", "config": data_dir / "longbench" / "config"}


def longbench(lb, model, out, *extra, env=None, check=True, sae=None):
    args = [str(s3attn_binary()), "longbench", "--data", str(lb["data"]), "--config", str(lb["config"]),
            "--tasks", "multi_news", "--model", str(model), "--out", str(out), *map(str, extra)]
    if sae:
        args += ["--sae", str(sae)]
    full_env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    full_env.update(env or {})
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=full_env)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def sample_ids(lb, n=2) -> list[str]:
    with open(lb["data"] / "multi_news.jsonl") as f:
        return [json.loads(next(f))["_id"] for _ in range(n)]


@pytest.fixture(scope="module")
def runs(lb, default_model, default_sae, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("longbench")
    out = {}
    for method in METHODS:
        out[method] = root / method
        longbench(lb, default_model, out[method], "--method", method, *SMOKE, sae=default_sae)
    return out


def test_every_method_writes_rows_and_manifest(runs, lb):
    ids = sample_ids(lb)
    for method, run in runs.items():
        got = rows(run / "multi_news.jsonl")
        assert [r["_id"] for r in got] == ids
        for r in got:
            assert isinstance(r["pred"], str) and r["answers"] and r["all_classes"] is None
            assert r["prompt_tokens"] > 0 and r["evidence_tokens"] > 0 and r["new_tokens"] <= 8
            assert set(r["timings"]) >= {"index_s", "retrieval_s", "prefill_s", "decode_s", "total_s"}
            if method != "full":
                assert r["evidence_tokens"] <= 256
        m = json.loads((run / "manifest.json").read_text())
        assert m["method"] == method and m["model"]["fingerprint"]
        assert m["max_length"] == 1024 and m["max_new_tokens_cap"] == 8 and m["stop_ids"]
        t = m["tasks"]["multi_news"]
        assert t["chat"] is True and t["max_new_tokens"] == 8 and t["dataset2maxlen"] == 512
        assert len(t["data_xxh3_64"]) == 16 and m["hash"] == "xxh3_64"
        assert (m.get("budget") == 256) == (method != "full")
        assert (m["sae"] is None) == (method == "full")
        assert not (run / ".tmp").exists()


def test_scorer_side_by_side(runs, tmp_path):
    dirs = [str(runs[m]) for m in METHODS]
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "longbench_score.py"), *dirs, "--out-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for m in METHODS:
        res = json.loads((runs[m] / "results.json").read_text())
        assert 0 <= res["multi_news"] <= 100
    table = (tmp_path / "longbench_compare.md").read_text()
    assert "retention" in table and "multi_news" in table


def test_resume_after_cut_line(runs, lb, default_model, default_sae, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    src = runs["bm25"]
    (run / "manifest.json").write_text((src / "manifest.json").read_text())
    lines = (src / "multi_news.jsonl").read_text().splitlines(keepends=True)
    (run / "multi_news.jsonl").write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-row
    proc = longbench(lb, default_model, run, "--method", "bm25", *SMOKE, sae=default_sae)
    summary = json.loads(proc.stdout)["tasks"]["multi_news"]
    assert summary == {"file": str(run / "multi_news.jsonl"), "written": 1, "skipped": 1}
    assert [r["_id"] for r in rows(run / "multi_news.jsonl")] == sample_ids(lb)
    # A finished run: nothing to do, nothing duplicated.
    proc = longbench(lb, default_model, run, "--method", "bm25", *SMOKE, sae=default_sae)
    assert json.loads(proc.stdout)["tasks"]["multi_news"]["written"] == 0
    assert [r["_id"] for r in rows(run / "multi_news.jsonl")] == sample_ids(lb)
    # Another configuration in the same run directory is refused.
    proc = longbench(lb, default_model, run, "--method", "bm25", *SMOKE[:-1], "128", sae=default_sae, check=False)
    assert_one_line_error(proc, 1, "budget")


def test_batch_gives_the_same_rows(runs, lb, default_model, default_sae, tmp_path):
    """--batch groups samples for generation; rows, order and predictions do not change (on the CPU
    the group runs one by one; on CUDA tests/cli/test_generate_cuda.py checks batched decoding)."""
    run = tmp_path / "run"
    longbench(lb, default_model, run, "--method", "bm25", *SMOKE, "--batch", "2", sae=default_sae)
    got, want = rows(run / "multi_news.jsonl"), rows(runs["bm25"] / "multi_news.jsonl")
    assert [r["_id"] for r in got] == [r["_id"] for r in want]
    assert [r["pred"] for r in got] == [r["pred"] for r in want]
    assert [r["batch"] for r in got] == [2, 2]
    assert json.loads((run / "manifest.json").read_text())["batch"] == 2
    proc = longbench(lb, default_model, run, "--method", "bm25", *SMOKE, "--batch", "0", sae=default_sae, check=False)
    assert_one_line_error(proc, 2, "--batch")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_batched_cuda_decoding_matches_one_by_one(lb, default_model, tmp_path):
    """On CUDA a group of prompts of different lengths decodes together (one CUDA graph); in float32
    the predictions are those of one-by-one decoding."""
    # multi_news contexts of 1.7K-2.9K tokens, none cut at 4,000: four different prompt lengths.
    common = ("--method", "full", "--limit", "4", "--max-length", "4000", "--max-new-tokens-cap", "48",
              "--device", "cuda", "--dtype", "float32")
    longbench(lb, default_model, tmp_path / "one", *common, "--batch", "1")
    longbench(lb, default_model, tmp_path / "four", *common, "--batch", "4")
    one, four = rows(tmp_path / "one" / "multi_news.jsonl"), rows(tmp_path / "four" / "multi_news.jsonl")
    assert len({r["prompt_tokens"] for r in four}) > 1  # rows at different positions
    assert [r["pred"] for r in four] == [r["pred"] for r in one]


def test_sharding_merges(lb, default_model, tmp_path):
    run = tmp_path / "run"
    for rank in (0, 1):
        longbench(lb, default_model, run, "--method", "full", "--limit", "3", "--max-length", "256",
                  "--max-new-tokens-cap", "2", env={"WORLD_SIZE": "2", "RANK": str(rank)})
    r0, r1 = rows(run / "multi_news.rank0-of2.jsonl"), rows(run / "multi_news.rank1-of2.jsonl")
    ids = sample_ids(lb, 3)
    assert [r["_id"] for r in r0] == [ids[0], ids[2]] and [r["_id"] for r in r1] == [ids[1]]
    assert not (run / "multi_news.jsonl").exists()
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "longbench_score.py"), str(run)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "multi_news" in json.loads((run / "results.json").read_text())
    # SLURM variables work the same way; a rank beyond the world size is refused.
    proc = longbench(lb, default_model, run, "--method", "full", env={"SLURM_PROCID": "2", "SLURM_NTASKS": "2"},
                     check=False)
    assert_one_line_error(proc, 2, "SLURM_PROCID")


def test_shards_running_together_share_the_temporary_folder(lb, default_model, tmp_path):
    """Two ranks of a retrieval run at once: the one that finishes first must not take the folder
    of the context indexes from under the other (it is left in place, empty, when sharded)."""
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    args = [str(s3attn_binary()), "longbench", "--data", str(lb["data"]), "--config", str(lb["config"]),
            "--tasks", "multi_news", "--model", str(default_model), "--out", str(run), "--method", "bm25",
            "--limit", "6", "--max-length", "512", "--max-new-tokens-cap", "1", "--budget", "128"]
    procs = [subprocess.Popen(args, env={**env, "WORLD_SIZE": "2", "RANK": str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert len(rows(run / "multi_news.rank0-of2.jsonl")) == 3 and len(rows(run / "multi_news.rank1-of2.jsonl")) == 3
    assert not list((run / ".tmp").iterdir())


def test_middle_truncation(lb, default_model, tmp_path):
    run = tmp_path / "run"
    longbench(lb, default_model, run, "--method", "full", "--limit", "1", "--max-length", "64",
              "--max-new-tokens-cap", "1")
    (row,) = rows(run / "multi_news.jsonl")
    assert row["truncated"] is True and row["raw_prompt_tokens"] > 1000
    # 64 tokens (32 + 32, re-tokenized at the seam: a few more at most) plus the chat template.
    template = json.loads((default_model / "model.json").read_text())["chat_template"]
    overhead = len(template["prefix"]) + len(template["suffix"])  # characters bound the tokens
    assert row["prompt_tokens"] <= 64 + 4 + overhead


def test_errors(lb, default_model, tmp_path):
    out = tmp_path / "run"
    base = ["longbench", "--model", str(default_model), "--out", str(out)]
    proc = run_s3attn(*base, "--data", lb["data"], "--config", lb["config"], "--tasks", "nosuch", check=False)
    assert_one_line_error(proc, 2, "unknown task 'nosuch'", "multi_news", "narrativeqa")
    proc = run_s3attn(*base, "--data", lb["data"], "--config", lb["config"], "--tasks", "qasper", check=False)
    assert_one_line_error(proc, 1, "missing data file", "qasper.jsonl")
    proc = run_s3attn(*base, "--data", lb["data"], "--config", tmp_path, "--tasks", "multi_news", check=False)
    assert_one_line_error(proc, 1, "missing config file", "dataset2prompt.json")
    proc = run_s3attn(*base, "--data", lb["data"], "--config", lb["config"], "--tasks", "multi_news",
                      "--method", "nope", check=False)
    assert proc.returncode == 2 and "nope" in proc.stderr
    proc = run_s3attn(*base, "--data", lb["data"], "--tasks", "multi_news", check=False)
    assert_one_line_error(proc, 2, "--config")
    proc = run_s3attn(*base, "--data", lb["data"], "--config", lb["config"], "--tasks", "multi_news",
                      "--method", "full", "--max-length", "8190", check=False)
    assert_one_line_error(proc, 2, "--max-length 8190", "window")
    proc = run_s3attn(*base, "--data", lb["data"], "--config", lb["config"], "--tasks", "multi_news",
                      "--method", "s3", "--sae", tmp_path / "nosae", check=False)
    assert_one_line_error(proc, 1, "nosae")
    assert not out.exists() or not any(out.glob("*.jsonl"))


def test_leval_adapter(data_dir, default_model, tmp_path):
    run = tmp_path / "run"
    leval = data_dir / "leval"
    base = [str(s3attn_binary()), "longbench", "--suite", "leval", "--data", str(leval), "--model", str(default_model)]
    proc = subprocess.run([*base, "--tasks", "leval_multidoc_qa", "--method", "bm25", "--limit", "2", "--budget",
                           "256", "--max-length", "1024", "--max-new-tokens-cap", "4", "--out", str(run)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = rows(run / "leval_multidoc_qa.jsonl")
    first = json.loads((leval / "multidoc_qa.jsonl").read_text().splitlines()[0])
    assert [r["_id"] for r in got] == ["0-0", "0-1"]
    assert [r["answers"] for r in got] == [[first["outputs"][0]], [first["outputs"][1]]]
    assert all(r["evaluation"] == "f1" and r["all_classes"] is None for r in got)
    assert got[0]["timings"]["index_s"] > 0 and got[1]["timings"]["index_s"] == 0  # one index per document
    m = json.loads((run / "manifest.json").read_text())
    assert m["suite"] == "leval" and m["tasks"]["leval_multidoc_qa"]["chat"] is True
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "longbench_score.py"), str(run)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "leval_multidoc_qa" in json.loads((run / "results.json").read_text())
    proc = subprocess.run([*base, "--tasks", "nosuch", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert_one_line_error(proc, 2, "nosuch", "leval_quality")
