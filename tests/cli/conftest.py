"""Tiny random Hugging Face models of each family, exported once per test session."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO, export_tiny_bert
from s3attn_testing import export_model as export
from tiny_models import FAMILIES, make_tiny_model


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


@pytest.fixture(scope="session")
def tiny_sae(tiny_export, tmp_path_factory) -> Path:
    """A random SAE (256 latents, k 8) for tiny_export's default taps."""
    out = tmp_path_factory.mktemp("sae") / "sae"
    meta = json.loads((tiny_export / "model.json").read_text())
    layers = ",".join(map(str, meta["default_taps"]))
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_sae.py"), "--model", str(tiny_export),
                    "--layers", layers, "--latents", "256", "--k", "8", "--dtype", "float32", "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random sentence encoder exported by scripts/export_embedding.py."""
    return export_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
