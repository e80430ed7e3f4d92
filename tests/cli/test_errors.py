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


# Every command that loads a model declares --device and the model's dtype once (cli/device_flags.h):
# the same check and the same words everywhere, at parse time, before any file is read.
COMMANDS_WITH_A_DEVICE = {
    "generate": ["generate", "--model", "M", "--prompt", "x"],
    "logits": ["logits", "--model", "M", "--ids", "1"],
    "index": ["index", "--model", "M", "--sae", "S", "--input", "I", "--out", "O"],
    "ask": ["ask", "--index", "X", "--question", "q"],
    "longbench": ["longbench", "--data", "D", "--config", "C", "--tasks", "t", "--model", "M", "--method", "full",
                  "--out", "O"],
    "embed": ["embed", "--model", "M", "--text", "x"],
    "sae eval": ["sae", "eval", "--model", "M", "--sae", "S", "--corpus", "C"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS_WITH_A_DEVICE))
def test_device_is_checked_alike_everywhere(s3attn, tmp_path, command):
    (tmp_path / "C").write_text("a corpus\n")  # sae eval checks --corpus exists while parsing
    args = [str(tmp_path / a) if a in ("M", "S", "I", "O", "X", "D", "C") else a for a in COMMANDS_WITH_A_DEVICE[command]]
    proc = run_s3attn(*args, "--device", "gpu0", check=False)
    assert_one_line_error(proc, 2, "--device", "'gpu0' is not a device (use cpu, cuda or cuda:N)")


@pytest.mark.parametrize("command", sorted(set(COMMANDS_WITH_A_DEVICE) - {"embed"}))
def test_model_dtype_is_checked_alike_everywhere(s3attn, tmp_path, command):
    (tmp_path / "C").write_text("a corpus\n")
    args = [str(tmp_path / a) if a in ("M", "S", "I", "O", "X", "D", "C") else a for a in COMMANDS_WITH_A_DEVICE[command]]
    flag = "--model-dtype" if command.startswith("sae") else "--dtype"
    proc = run_s3attn(*args, flag, "float8", check=False)
    assert_one_line_error(proc, 2, flag, "'float8' is not one of float32, bfloat16, float16")
