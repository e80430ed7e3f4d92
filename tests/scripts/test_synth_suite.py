"""The synthetic suite end to end on the CPU with the default model (SmolLM2-135M and its SAE):
scripts/gpu_synth.sh generates niah_single and cwe at 2K and 16K tokens, runs the 2K samples through
`s3attn longbench` with full, bm25, s3 and s3-hybrid (one sample per task, 4 answer tokens), resumes,
and scripts/synth_report.py scores them. Checks that the scores are the scorer's RULER string match
of the rows, that evidence recall is recorded (and reflects truncation for full) and that the
generator's token count is the runner's. Needs S3ATTN_DATA and models/default; skipped without."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO, s3attn_binary

MODEL = REPO / "models" / "default"
METHODS = ("full", "bm25", "s3", "s3-hybrid")
TASKS = ("niah_single", "cwe")


@pytest.fixture(scope="module")
def model() -> Path:
    if not (MODEL / "model.json").is_file() or not (MODEL / "sae" / "sae.json").is_file():
        pytest.skip("models/default (the default model with its SAE) is missing")
    return MODEL


def gpu_synth(out: Path, data_dir: Path, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    full_env.update(PYTHON=sys.executable, S3ATTN_BIN=str(s3attn_binary()), DEVICE="cpu", DTYPE="float32",
                    TASKS=" ".join(TASKS), SAMPLES="2", BUDGET="256", CAP="4", LIMIT="1", JOBS="2", SHARDS="1",
                    **env)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_synth.sh"), str(MODEL), str(data_dir), str(out)],
                          capture_output=True, text=True, env=full_env, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"gpu_synth.sh exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    return proc


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def suite(data_dir, model, s3attn, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth-suite")
    gpu_synth(out, data_dir, STEPS="generate", LENGTHS="2K 16K")
    gpu_synth(out, data_dir, STEPS="runs", LENGTHS="2K")
    return out


def test_suite_is_generated_at_every_length(suite):
    for length in (2048, 16384):
        for task in TASKS:
            got = rows(suite / "data" / str(length) / f"{task}.jsonl")
            assert len(got) == 2 and all(r["length"] == length for r in got)
    assert (suite / "data" / "config" / "dataset2prompt.json").is_file()


def test_every_method_ran_and_recorded_evidence_recall(suite):
    data = {t: {r["_id"]: r for r in rows(suite / "data" / "2048" / f"{t}.jsonl")} for t in TASKS}
    for method in METHODS:
        run = suite / "runs" / "2048" / method
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["method"] == method and manifest["max_length"] == 8192 - 64
        for task in TASKS:
            got = rows(run / f"{task}.jsonl")
            assert [r["_id"] for r in got] == [f"{task}-2K-0"]
            r = got[0]
            src = data[task][r["_id"]]
            assert r["new_tokens"] <= 4 and not r["truncated"]
            if method == "full":  # the generator counts tokens as the runner does
                assert r["raw_prompt_tokens"] == src["tokens"]
            else:
                assert r["evidence_tokens"] <= 256
            if task == "cwe":  # no needles: no recall fields
                assert "evidence_recall" not in r and "control_evidence_recall" not in r
                continue
            assert 0.0 <= r["evidence_recall"] <= 1.0
            if method == "full":  # the whole context fits: the needle is in it; no control question
                assert r["evidence_recall"] == 1.0 and r["control_evidence_recall"] is None
            else:
                assert 0.0 <= r["control_evidence_recall"] <= 1.0


def test_scores_come_out_of_the_scorer(suite):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "synth_report.py"), str(suite), "--label", "smoke"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((suite / "report" / "synth_results.json").read_text())
    md = (suite / "report" / "synth_results.md").read_text()
    for method in METHODS:
        run = suite / "runs" / "2048" / method
        scores = json.loads((run / "results.json").read_text())
        assert list(scores) == list(TASKS)
        for task in TASKS:
            r = rows(run / f"{task}.jsonl")[0]
            # RULER's string_match_all, computed here from the row: share of answers in the prediction
            expected = round(100 * sum(a.lower() in r["pred"].strip().lower() for a in r["answers"]) /
                             len(r["answers"]), 2)
            assert scores[task] == expected
            cell = report["cells"]["2048"][method][task]
            assert cell["score"] == expected and cell["samples"] == 1
            if task == "niah_single":
                assert cell["evidence_recall"] == r["evidence_recall"]
    assert "| niah_single | 2K | 1 |" in md and "## Evidence recall" in md
    for png in ("scores_vs_length.png", "recall_vs_length.png"):
        assert (suite / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_runs_resume_without_redoing_rows(suite, data_dir):
    before = {m: (suite / "runs" / "2048" / m / "niah_single.jsonl").read_text() for m in METHODS}
    gpu_synth(suite, data_dir, STEPS="runs", LENGTHS="2K")
    for m in METHODS:
        assert (suite / "runs" / "2048" / m / "niah_single.jsonl").read_text() == before[m]
        summary = json.loads((suite / "logs" / f"run-2048-{m}-0.json").read_text())
        assert summary["tasks"]["niah_single"] == {**summary["tasks"]["niah_single"], "written": 0, "skipped": 1}


def test_full_evidence_recall_sees_the_middle_truncation(suite, tmp_path):
    # 2K prompts cut to their first and last 256 tokens: the needle (at a quarter of the document)
    # is dropped, and evidence_recall says so.
    proc = subprocess.run([str(s3attn_binary()), "longbench", "--data", str(suite / "data" / "2048"), "--config",
                           str(suite / "data" / "config"), "--tasks", "niah_single", "--limit", "1", "--model",
                           str(MODEL), "--method", "full", "--max-length", "512", "--max-new-tokens-cap", "2",
                           "--out", str(tmp_path / "cut")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = rows(tmp_path / "cut" / "niah_single.jsonl")[0]
    src = rows(suite / "data" / "2048" / "niah_single.jsonl")[0]
    assert 256 / src["tokens"] < src["meta"]["depths"][0] < 1 - 256 / src["tokens"]
    assert r["truncated"] and r["evidence_recall"] == 0.0 and r["control_evidence_recall"] is None
