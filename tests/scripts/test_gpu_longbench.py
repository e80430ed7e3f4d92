"""scripts/gpu_longbench.sh's process queue on the CPU with the default model: MAX_PROCS caps how
many `s3attn longbench` processes run at once without changing a row, and a process that fails with
"out of device memory" (a GPU full of the others) is queued again and resumes, up to RETRIES times.
The device failure is played by a stand-in for the binary that prints s3attn's own out-of-memory
line once and then runs the real binary. Needs S3ATTN_DATA and models/default; skipped without."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from s3attn_testing import REPO, s3attn_binary

MODEL = REPO / "models" / "default"
# bm25 reads no SAE features, so each process only tokenizes its context: fast on two cores.
RUNS = "bm25@128=bm25 --budget 128"


@pytest.fixture(scope="module")
def model() -> Path:
    if not (MODEL / "model.json").is_file():
        pytest.skip("models/default (the default model) is missing")
    return MODEL


def gpu_longbench(data_dir: Path, out: Path, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    full_env.update({"S3ATTN_BIN": str(s3attn_binary()), "DEVICE": "cpu", "DTYPE": "float32", "SUITES": "longbench",
                     "TASKS": "multi_news", "METHODS": "bm25", "RUNS": RUNS, "SHARDS": "2", "LIMIT": "2", "CAP": "4",
                     "BUDGET": "256"})
    full_env.update(env)
    return subprocess.run(["bash", str(REPO / "scripts" / "gpu_longbench.sh"), str(MODEL), str(data_dir), str(out)],
                          capture_output=True, text=True, env=full_env, timeout=900)


def preds(out: Path) -> dict[str, dict[str, str]]:
    runs = {}
    for label in ("bm25", "bm25@128"):
        rows = [json.loads(line) for f in sorted((out / "longbench" / label).glob("*.jsonl"))
                for line in f.read_text().splitlines() if line]
        runs[label] = {r["_id"]: r["pred"] for r in rows}
    return runs


@pytest.fixture(scope="module")
def all_at_once(data_dir, model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("all-at-once")
    proc = gpu_longbench(data_dir, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_max_procs_changes_no_row(data_dir, all_at_once, tmp_path):
    out = tmp_path / "one-at-a-time"
    proc = gpu_longbench(data_dir, out, MAX_PROCS="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    want = preds(all_at_once)
    assert all(len(p) == 2 for p in want.values()), want
    assert preds(out) == want
    assert "longbench/bm25: 2 rows" in proc.stdout and "longbench/bm25@128: 2 rows" in proc.stdout


def stand_in(tmp_path: Path, failures: int) -> Path:
    """A binary that fails like s3attn on a full GPU the first `failures` times, then is s3attn."""
    count = tmp_path / "calls"
    script = tmp_path / "s3attn-full-gpu"
    script.write_text(f"""#!/usr/bin/env bash
n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo $n > {count}
if [ $n -le {failures} ]; then
  echo "error: {MODEL}/model.ts: out of device memory while loading the model (CUDA out of memory)" >&2
  exit 1
fi
exec {s3attn_binary()} "$@"
""")
    script.chmod(0o755)
    return script


def test_out_of_memory_is_queued_again(data_dir, all_at_once, tmp_path):
    out = tmp_path / "retried"
    proc = gpu_longbench(data_dir, out, MAX_PROCS="1", RETRY_WAIT="0", S3ATTN_BIN=str(stand_in(tmp_path, 2)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("out of device memory (try 1); queued again") == 2, proc.stderr
    assert preds(out) == preds(all_at_once)


def test_retries_run_out(data_dir, tmp_path):
    out = tmp_path / "given-up"
    proc = gpu_longbench(data_dir, out, METHODS="bm25", RUNS="", SHARDS="1", RETRIES="1", RETRY_WAIT="0",
                         S3ATTN_BIN=str(stand_in(tmp_path, 5)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "out of device memory (try 1); queued again" in proc.stderr
    assert "out of device memory while loading the model" in proc.stdout  # the failure is reported
    assert "longbench/bm25: 0 rows" in proc.stdout
