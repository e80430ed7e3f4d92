"""scripts/profile_decode.py needs CUDA (graphs, the CUDA profiler): without a device it says so in
one line and exits 2, before touching the model; its argument errors exit 2 too."""
from __future__ import annotations

import subprocess
import sys

import pytest

from s3attn_testing import REPO

SCRIPT = REPO / "scripts" / "profile_decode.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_without_cuda_one_line_and_exit_2(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = run("--model", str(tmp_path / "no-such-model"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("profile_decode: error:") and "CUDA" in lines[0]


def test_bad_dtype_is_a_usage_error(tmp_path):
    r = run("--model", str(tmp_path), "--dtype", "int8")
    assert r.returncode == 2 and "invalid choice" in r.stderr
