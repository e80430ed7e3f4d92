"""scripts/eval_aoti.py on the CPU with a tiny exported model of each family: the AOTInductor
package of the decode step decodes the same greedy tokens as model.ts with logits within float32
rounding, and the row carries its timings; bad inputs are one line and exit 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from s3attn_testing import REPO

SCRIPT = REPO / "scripts" / "eval_aoti.py"


def run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_aoti_decodes_the_same_tokens(exported, tmp_path, family):
    model = exported(family)
    rows = tmp_path / "rows.jsonl"
    r = run("--model", str(model), "--prompt-tokens", "24", "--new-tokens", "12", "--out", str(rows))
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(rows.read_text().splitlines()[-1])
    assert row["what"] == "aoti_decode" and row["device"] == "cpu"
    assert row["tokens_identical"] and row["tokens_agreeing"] == 12
    assert row["max_abs_logit_diff"] < 1e-3
    assert row["package_bytes"] > 0 and row["compile_s"] > 0
    assert row["torchscript_ms_per_token"] > 0 and row["aoti_ms_per_token"] > 0


def test_missing_model_is_one_line(tmp_path):
    r = run("--model", str(tmp_path / "nothing"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eval_aoti: error:") and "model.ts" in lines[0]


def test_too_few_tokens_is_one_line(exported):
    r = run("--model", str(exported("llama")), "--new-tokens", "2")
    assert r.returncode == 2 and r.stderr.strip().startswith("eval_aoti: error: --new-tokens")
