"""Tiny random Hugging Face models of each family, exported once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

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
