"""Bad input: one clear line on stderr, exit code 1 (2 for usage), never a trace, abort or hang."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from s3attn_testing import run_s3attn, assert_one_line_error


def test_no_subcommand_is_usage_error(s3attn):
    assert_one_line_error(run_s3attn(check=False), 2)


def test_unknown_flag_is_usage_error(s3attn, tmp_path):
    assert_one_line_error(run_s3attn("generate", "--model", tmp_path, "--prompt", "x", "--bogus", check=False), 2,
                          "--bogus")


def test_duplicate_flag_is_usage_error(s3attn, tmp_path):
    proc = run_s3attn("generate", "--model", tmp_path, "--prompt", "a", "--prompt", "b", check=False)
    assert_one_line_error(proc, 2)


def test_missing_model_dir(s3attn, tmp_path):
    assert_one_line_error(run_s3attn("generate", "--model", tmp_path / "nope", "--prompt", "x", check=False), 1,
                          "does not exist")


def test_not_a_model_dir(s3attn, tmp_path):
    assert_one_line_error(run_s3attn("generate", "--model", tmp_path, "--prompt", "x", check=False), 1,
                          "model.json")


@pytest.mark.parametrize("args,needle", [
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--max-new-tokens", "many"], "--max-new-tokens"),
    (["--dtype", "float8"], "--dtype"),
    (["--device", "tpu"], "--device"),
])
def test_nonsense_flag_values(s3attn, tiny_export, args, needle):
    proc = run_s3attn("generate", "--model", tiny_export, "--prompt", "x", *args, check=False)
    assert_one_line_error(proc, 2, needle)


def test_cuda_without_gpu(s3attn, tiny_export):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present (this test checks the message on machines without one)")
    proc = run_s3attn("generate", "--model", tiny_export, "--prompt", "x", "--device", "cuda", check=False)
    assert_one_line_error(proc, 1, "no CUDA GPU")


def test_corrupted_model_json(s3attn, tiny_export, tmp_path):
    bad = tmp_path / "m"
    shutil.copytree(tiny_export, bad)
    (bad / "model.json").write_text("{ this is not json")
    assert_one_line_error(run_s3attn("generate", "--model", bad, "--prompt", "x", check=False), 1, "model.json")


def test_model_json_missing_field(s3attn, tiny_export, tmp_path):
    bad = tmp_path / "m"
    shutil.copytree(tiny_export, bad)
    meta = json.loads((bad / "model.json").read_text())
    del meta["n_layers"]
    (bad / "model.json").write_text(json.dumps(meta))
    assert_one_line_error(run_s3attn("generate", "--model", bad, "--prompt", "x", check=False), 1, "n_layers")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_model_ts(s3attn, tiny_export, tmp_path, damage):
    bad = tmp_path / "m"
    shutil.copytree(tiny_export, bad)
    ts = bad / "model.ts"
    data = ts.read_bytes()
    ts.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0garbage" * 100)
    assert_one_line_error(run_s3attn("generate", "--model", bad, "--prompt", "x", check=False), 1, "model.ts")


def test_tokenize_needs_text_or_input(s3attn, tiny_export):
    proc = run_s3attn("tokenize", "--tokenizer", Path(tiny_export) / "tokenizer.json", check=False)
    assert_one_line_error(proc, 2, "--text")


def test_logits_rejects_out_of_vocab_ids(s3attn, tiny_export):
    proc = run_s3attn("logits", "--model", tiny_export, "--ids", "1,99999999", check=False)
    assert_one_line_error(proc, 2, "vocabulary")
