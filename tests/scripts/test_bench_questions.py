"""scripts/bench_questions.py on the CPU with the default model: one row with s3attn's index and
ask timings (one process for every question, and one process per question) and transformers'
reused-cache reference; an empty questions file is refused. Needs models/default; skipped without."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from s3attn_testing import REPO, s3attn_binary

SCRIPT = REPO / "scripts" / "bench_questions.py"
MODEL = REPO / "models" / "default"
TEXT = ("The harbour town kept its lighthouse lit through every winter storm. Fishermen mended nets on "
        "the quay while the keeper logged each ship that passed. ") * 40


@pytest.fixture(scope="module")
def model():
    if not (MODEL / "model.json").is_file() or not (MODEL / "sae" / "sae.json").is_file():
        pytest.skip("models/default (the default model) is missing")
    return MODEL


def bench(tmp_path, model, questions: str, *extra):
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    qfile = tmp_path / "q.txt"
    qfile.write_text(questions)
    cmd = [sys.executable, str(SCRIPT), "--model", str(model), "--sae", str(model / "sae"), "--text", str(text),
           "--tokens", "400", "--questions", str(qfile), "--new-tokens", "3", "--budget", "128", "--device", "cpu",
           "--dtype", "float32", "--binary", str(s3attn_binary()), "--out", str(tmp_path / "work"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_one_row_with_both_sides(model, tmp_path):
    r = bench(tmp_path, model, "Who logged the ships?\nWhat did the fishermen mend?\n", "--hf-config", "model")
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads((tmp_path / "work" / "bench_questions.jsonl").read_text().splitlines()[-1])
    assert row["what"] == "questions" and row["questions"] == 2 and row["tokens"] == 400
    for key in ("s3attn_index_s", "s3attn_ask_one_process_s", "s3attn_ask_per_process_s", "hf_prefill_s",
                "hf_questions_s"):
        assert row[key] > 0, key
    assert row["s3attn_total_s"] == pytest.approx(row["s3attn_index_s"] + row["s3attn_ask_one_process_s"])
    assert row["total_ratio"] == pytest.approx(row["hf_total_s"] / row["s3attn_total_s"])
    assert row["device_name"] == "cpu"


def test_empty_questions_file_is_refused(model, tmp_path):
    r = bench(tmp_path, model, "\n\n")
    assert r.returncode == 2 and "no question" in r.stderr
