"""Shared pytest fixtures: the s3attn binary, the shared data folder and the default model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "scripts"))


def s3attn_binary() -> Path:
    return Path(os.environ.get("S3ATTN_BIN", REPO / "build" / "s3attn"))


@pytest.fixture(scope="session")
def s3attn() -> Path:
    binary = s3attn_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with scripts/build.sh (scripts/test.sh does)")
    return binary


def run_s3attn(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the binary; with check=True a non-zero exit fails the test with its stderr."""
    proc = subprocess.run([str(s3attn_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"s3attn {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def run_json(*args: str) -> dict:
    return json.loads(run_s3attn(*args).stdout)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data through $S3ATTN_DATA; tests that need it skip by name without it."""
    value = os.environ.get("S3ATTN_DATA")
    if not value:
        pytest.skip("S3ATTN_DATA is not set (the shared data folder)")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"S3ATTN_DATA={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The default model (SmolLM2-135M-Instruct) exported to models/default, as scripts/demo.sh does."""
    subprocess.run(["bash", str(REPO / "scripts" / "default_model.sh")], check=True, timeout=1200)
    return REPO / "models" / "default"
