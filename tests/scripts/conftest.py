"""Shared fixtures of the exporter tests: tiny HF checkpoints and their exports (made once per session)."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

from tiny_models import make_tiny_model  # noqa: E402

EXPORTER = ROOT / "scripts" / "export_model.py"
PYTHON = sys.executable


def pytest_configure(config):
    # TorchScript is deprecated upstream but is the C++ runtime's contract (docs/model-format.md).
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.:DeprecationWarning")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """tiny_dir(family) -> HF checkpoint directory (made once per session)."""
    root = tmp_path_factory.mktemp("tiny_hf")
    made = {}

    def get(family: str) -> Path:
        if family not in made:
            made[family] = make_tiny_model(family, root / family)
        return made[family]

    return get


@pytest.fixture(scope="session")
def exported(tiny_dir, tmp_path_factory):
    """exported(family, dtype="float32") -> model directory exported from the tiny checkpoint."""
    from s3export.cli import main

    root = tmp_path_factory.mktemp("exported")
    made = {}

    def get(family: str, dtype: str = "float32") -> Path:
        key = (family, dtype)
        if key not in made:
            out = root / f"{family}-{dtype}"
            assert main(["--hf", str(tiny_dir(family)), "--out", str(out), "--dtype", dtype]) == 0
            made[key] = out
        return made[key]

    return get


@pytest.fixture(scope="session")
def hf_model(tiny_dir):
    """hf_model(family) -> the transformers model of the tiny checkpoint (float32, eval)."""
    from transformers import AutoModelForCausalLM

    made = {}

    def get(family: str):
        if family not in made:
            made[family] = AutoModelForCausalLM.from_pretrained(str(tiny_dir(family)), dtype=torch.float32,
                                                                attn_implementation="sdpa").eval()
        return made[family]

    return get
