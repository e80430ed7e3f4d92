"""Shared pytest fixtures: the s3attn binary, the shared data folder and the default model."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from s3attn_testing import REPO, s3attn_binary


@pytest.fixture(scope="session")
def s3attn() -> Path:
    binary = s3attn_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with scripts/build.sh (scripts/test.sh does)")
    return binary


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data folder through $S3ATTN_DATA; tests that need it skip by name without it."""
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


@pytest.fixture(scope="session")
def default_sae(default_model) -> Path:
    """The default SAE of the default model (installed by scripts/default_model.sh)."""
    sae = default_model / "sae"
    if not (sae / "sae.json").exists():
        pytest.fail(f"{sae} is missing: scripts/default_model.sh installs it")
    return sae
