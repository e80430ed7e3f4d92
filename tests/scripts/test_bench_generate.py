"""scripts/bench_generate.py on the CPU with a tiny model: one row per (prompt length, batch size)
with s3attn's and the reference's rates, for transformers' dynamic cache and its static cache."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from s3attn_testing import REPO, s3attn_binary

SCRIPT = REPO / "scripts" / "bench_generate.py"


@pytest.mark.parametrize("static", [False, True])
def test_rows_per_batch_size(exported, tiny_dir, tmp_path, static):
    rows = tmp_path / "rows.jsonl"
    cmd = [sys.executable, str(SCRIPT), "--model", str(exported("llama")), "--hf", str(tiny_dir("llama")),
           "--binary", str(s3attn_binary()), "--device", "cpu", "--dtype", "float32", "--prompt-tokens", "16",
           "--new-tokens", "5", "--batch", "1", "3", "--out", str(rows)] + (["--hf-static"] if static else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    got = [json.loads(line) for line in rows.read_text().splitlines()]
    assert [g["batch"] for g in got] == [1, 3]
    for g in got:
        assert g["hf_cache"] == ("static+compile" if static else "dynamic")
        assert abs(g["prompt_tokens"] - 16) <= 1 and g["new_tokens"] == 5  # BOS, if the tokenizer adds one
        for key in ("s3attn_prefill_tok_s", "s3attn_decode_tok_s", "hf_prefill_tok_s", "hf_decode_tok_s"):
            assert g[key] > 0, key


def test_batch_below_one_is_refused(exported, tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--model", str(exported("llama")), "--device", "cpu",
                        "--batch", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--batch" in r.stderr
