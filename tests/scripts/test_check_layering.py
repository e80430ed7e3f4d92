"""scripts/check_layering.py: the repository keeps docs/architecture.md's layering, and the checker finds
each kind of violation (a lower layer including a higher one, siblings, LibTorch where it may not be)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from check_layering import check

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_keeps_its_layering():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_layering.py"), str(ROOT)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("name,text,found", [
    ("index/x.cpp", '#include "core/pipeline/scan.h"\n', "index includes pipeline"),
    ("retrieval/x.cpp", '#include "index/index_reader.h"\n', "retrieval includes index"),
    ("core/base/x.h", '#include "core/tokenizer/tokenizer.h"\n', "base includes tokenizer"),
    ("core/runtime/x.cpp", '#include "sae/weights.h"\n', "runtime includes sae"),
    ("sae/x.cpp", '#include "core/runtime/model.h"\n', "sae includes runtime"),
    ("core/tokenizer/x.cpp", '#include "core/runtime/model.h"\n', "tokenizer includes runtime"),
    ("index/x.cpp", "#include <torch/script.h>\n", "includes LibTorch"),
    ("core/pipeline/x.h", "#include <ATen/core/Tensor.h>\n", "includes LibTorch"),
    ("cli/x.cpp", "  #  include <c10/core/Device.h>\n", "includes LibTorch"),
    ("sae/safetensors.cpp", "#include <torch/torch.h>\n", "includes LibTorch"),
])
def test_each_kind_of_violation_is_found(tmp_path, name, text, found):
    problems = check(tree(tmp_path, {name: text}))
    assert len(problems) == 1 and problems[0].startswith(f"{name}:1: ") and found in problems[0], problems


def test_what_the_rule_allows(tmp_path):
    allowed = {
        "core/pipeline/x.cpp": '#include <torch/script.h>\n#include "core/runtime/model.h"\n#include "index/index_reader.h"\n'
                               '#include "retrieval/pipeline.h"\n#include "sae/weights.h"\n',
        "core/runtime/model_torch.h": "#include <torch/script.h>\n",
        "cli/x.cpp": '#include "core/pipeline/ask.h"\n#include "index/index_writer.h"\n',
        "index/x.cpp": '#include "core/base/error.h"\n#include <vector>\n#include "local.h"\n',
        "retrieval/bench/x.cpp": '#include "core/pipeline/index_sources.h"\n#include "index/index_reader.h"\n',
        "tests/x.cpp": '#include "core/pipeline/scan.h"\n#include <torch/torch.h>\n',
    }
    assert check(tree(tmp_path, allowed)) == []
