"""Command-line behaviour: random init, overwrite rules, and bad input (one line on stderr, exit 1 or 2 for
usage, never a traceback, nothing left behind)."""

import json
import subprocess
import sys

import torch
from s3attn_testing import REPO as ROOT  # also puts scripts/ and tests/scripts/ on sys.path
from tiny_models import _base, write_tokenizer

EXPORTER = ROOT / "scripts" / "export_model.py"
PYTHON = sys.executable


def run(*args):
    p = subprocess.run([PYTHON, str(EXPORTER), *map(str, args)], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def assert_one_line_error(rc, err, code=1, needle=None):
    assert rc == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1, err
    if needle:
        assert needle in errors[0], errors[0]


def tiny_config(tmp_path, family="llama3", **changes):
    cfg = dict(_base(family), **changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_usage_errors_exit_2(tmp_path):
    rc, _, err = run("--out", tmp_path / "x")
    assert rc == 2 and "Traceback" not in err
    rc, _, err = run("--hf", tmp_path, "--out", tmp_path / "x", "--dtype", "float64")
    assert rc == 2 and "Traceback" not in err


def test_missing_and_non_model_inputs(tmp_path):
    rc, _, err = run("--hf", tmp_path / "nope", "--out", tmp_path / "o")
    assert_one_line_error(rc, err, needle="no such directory")
    rc, _, err = run("--hf", tmp_path, "--out", tmp_path / "o")
    assert_one_line_error(rc, err, needle="not a Hugging Face model directory")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    rc, _, err = run("--gguf", junk, "--out", tmp_path / "o")
    assert_one_line_error(rc, err, needle="GGUF")
    assert not (tmp_path / "o").exists()


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    d = tmp_path / "qwen3"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}))
    (d / "model.safetensors").write_bytes(b"")
    rc, _, err = run("--hf", d, "--out", tmp_path / "o")
    assert_one_line_error(rc, err, needle="unsupported architecture Qwen3ForCausalLM")
    for name in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"):
        assert name in err


def test_bad_random_init_configs(tmp_path):
    from s3export.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    rc, _, err = run("--random-init", bad, "--out", tmp_path / "o")
    assert_one_line_error(rc, err, needle="invalid JSON")
    cases = [
        ({"model_type": "gpt2"}, "unsupported architecture"),
        ({"rope_parameters": {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}}, "rope_type 'dynamic'"),
        ({"hidden_act": "gelu"}, "hidden_act"),
    ]
    for i, (change, needle) in enumerate(cases):
        cfg = tiny_config(tmp_path, **change)
        if "model_type" in change:
            d = json.loads(cfg.read_text())
            d.pop("architectures")
            cfg.write_text(json.dumps(d))
        assert main(["--random-init", str(cfg), "--out", str(tmp_path / f"o{i}")]) == 1
        assert not (tmp_path / f"o{i}").exists()


def test_random_init_export_and_verify(tmp_path, capsys):
    from s3export.cli import main

    tok_dir = tmp_path / "tok"
    write_tokenizer(tok_dir, add_bos=True)
    cfg = tiny_config(tmp_path)
    out = tmp_path / "rand"
    assert main(["--random-init", str(cfg), "--tokenizer", str(tok_dir / "tokenizer.json"), "--out", str(out),
                 "--verify", "--seed", "3"]) == 0
    assert "verify: forward max abs diff" in capsys.readouterr().out
    m = json.loads((out / "model.json").read_text())
    assert m["source"]["kind"] == "random-init" and m["rope_scaling"]["rope_type"] == "llama3"
    assert (out / "tokenizer.json").exists()
    ts = torch.jit.load(str(out / "model.ts"))
    p = dict(ts.named_parameters())
    assert abs(p["layers.0.mlp.up_proj.weight"].std().item() - 0.02) < 0.002
    assert torch.equal(p["norm.weight"], torch.ones(64))
    # same seed, same weights; bfloat16 passes its own --verify tolerance
    out2 = tmp_path / "rand-bf16"
    assert main(["--random-init", str(cfg), "--out", str(out2), "--dtype", "bfloat16", "--verify", "--seed", "3"]) == 0
    p2 = dict(torch.jit.load(str(out2 / "model.ts")).named_parameters())
    assert torch.equal(p2["layers.0.mlp.up_proj.weight"], p["layers.0.mlp.up_proj.weight"].bfloat16()) or \
        p2["layers.0.mlp.up_proj.weight"].dtype == torch.bfloat16
    assert json.loads((out2 / "model.json").read_text())["chat_template"] is None


def test_llama_3_1_8b_config_is_the_real_shape():
    from s3export.load_hf import load_random_init_config

    spec = load_random_init_config(ROOT / "configs" / "models" / "llama-3.1-8b.json")
    assert (spec.n_layers, spec.hidden_size, spec.n_heads, spec.n_kv_heads, spec.head_dim) == (32, 4096, 32, 8, 128)
    assert (spec.intermediate_size, spec.vocab_size, spec.rope_theta) == (14336, 128256, 500000.0)
    assert spec.rope_scaling["rope_type"] == "llama3" and not spec.tie_word_embeddings
    inv_freq, scaling = spec.rope_inv_freq()
    assert inv_freq.dtype == torch.float32 and inv_freq.shape == (64,) and scaling == 1.0


def test_out_exists_needs_overwrite(tmp_path, tiny_dir):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    rc, _, err = run("--hf", tiny_dir("smollm2"), "--out", out)
    assert_one_line_error(rc, err, needle="--overwrite")
    assert (out / "keep.txt").read_text() == "precious"
    rc, stdout, err = run("--hf", tiny_dir("smollm2"), "--out", out, "--overwrite", "--verify")
    assert rc == 0, err
    assert "verify:" in stdout and "Traceback" not in err
    assert not (out / "keep.txt").exists() and (out / "model.ts").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp or old directories left


def test_cuda_without_gpu(tmp_path, tiny_dir, monkeypatch, capsys):
    from s3export.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--hf", str(tiny_dir("llama")), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 1
    assert "CUDA is not available" in capsys.readouterr().err
