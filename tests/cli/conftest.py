"""Tiny random Hugging Face models of each family, exported once per test session."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO
from tiny_models import FAMILIES, make_tiny_model


def export(hf_dir: Path, out: Path, dtype: str = "float32") -> Path:
    subprocess.run([sys.executable, str(REPO / "scripts" / "export_model.py"), "--hf", str(hf_dir), "--out", str(out),
                    "--dtype", dtype], check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="session", params=FAMILIES)
def family_export(request, tmp_path_factory):
    """(family, HF checkpoint dir, exported model dir) for each supported family."""
    root = tmp_path_factory.mktemp(f"tiny-{request.param}")
    hf_dir = make_tiny_model(request.param, root / "hf")
    return request.param, hf_dir, export(hf_dir, root / "model")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-export")
    return export(make_tiny_model(FAMILIES[0], root / "hf"), root / "model")
