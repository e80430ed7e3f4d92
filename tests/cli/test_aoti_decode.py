"""`generate --decode-backend aoti` (core/runtime/aoti_decode.h) with the package of
scripts/export_aoti.py, on the CPU with a tiny export: the same greedy tokens as model.ts (one row
and a batch), and clear refusals of a missing package, a package of another export, and bad
values. The CUDA path (the compiled step inside the decode's CUDA graph) runs on a GPU only."""
import json
import shutil
import subprocess
import sys

import pytest
import torch

from s3attn_testing import REPO, assert_one_line_error, run_json, run_s3attn

PROMPT = "The quick brown fox jumps over the lazy dog because"
EXPORT_AOTI = REPO / "scripts" / "export_aoti.py"


def export_aoti(model_dir, *extra):
    return subprocess.run([sys.executable, str(EXPORT_AOTI), "--model", str(model_dir), *extra],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def aoti_model(tiny_export, tmp_path_factory):
    model = tmp_path_factory.mktemp("aoti") / "model"
    shutil.copytree(tiny_export, model)
    r = export_aoti(model)
    assert r.returncode == 0, r.stderr[-2000:]
    return model


def generate(model_dir, device, *extra):
    return run_json("generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", "16",
                    "--ignore-stop", "--device", device, "--json", *extra)


def test_package_and_sidecar(aoti_model):
    meta = json.loads((aoti_model / "model.json").read_text())
    sidecar = json.loads((aoti_model / "aoti" / "decode-cpu-float32.json").read_text())
    assert sidecar["model_fingerprint"] == meta["fingerprint"] and sidecar["dtype"] == "float32"
    assert sidecar["parity"]["identical"] is True
    assert (aoti_model / "aoti" / "decode-cpu-float32.pt2").stat().st_size == sidecar["package_bytes"]


def test_same_tokens_as_model_ts(aoti_model):
    reference = generate(aoti_model, "cpu")
    compiled = generate(aoti_model, "cpu", "--decode-backend", "aoti")
    assert compiled["tokens"] == reference["tokens"] and len(reference["tokens"]) == 16
    batch = generate(aoti_model, "cpu", "--decode-backend", "aoti", "--batch", "2")
    assert batch["tokens"] == reference["tokens"] and batch["rows_identical"] is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_same_tokens_in_the_cuda_graph(aoti_model):
    r = export_aoti(aoti_model, "--device", "cuda")
    assert r.returncode == 0, r.stderr[-2000:]
    reference = generate(aoti_model, "cuda", "--dtype", "float32")
    compiled = generate(aoti_model, "cuda", "--dtype", "float32", "--decode-backend", "aoti")
    assert compiled["tokens"] == reference["tokens"]


def test_missing_package_is_one_line(tiny_export):
    proc = run_s3attn("generate", "--model", tiny_export, "--prompt", PROMPT, "--decode-backend", "aoti",
                      check=False)
    assert_one_line_error(proc, 1, "decode-cpu-float32.pt2", "is missing", "export_aoti.py")


def test_package_of_another_export_is_refused(aoti_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(aoti_model, model)
    sidecar = model / "aoti" / "decode-cpu-float32.json"
    meta = json.loads(sidecar.read_text())
    meta["model_fingerprint"] = "0" * 64
    sidecar.write_text(json.dumps(meta))
    proc = run_s3attn("generate", "--model", model, "--prompt", PROMPT, "--decode-backend", "aoti", check=False)
    assert_one_line_error(proc, 1, "compiled for another export", "export_aoti.py")
    # A sidecar that is not the exporter's: one line naming it.
    for text in ("not json", '{"model_fingerprint": 7, "dtype": "float32"}'):
        sidecar.write_text(text)
        proc = run_s3attn("generate", "--model", model, "--prompt", PROMPT, "--decode-backend", "aoti",
                          check=False)
        assert_one_line_error(proc, 1, "decode-cpu-float32.json")
    # Another dtype than the package's: its own package is missing.
    proc = run_s3attn("generate", "--model", aoti_model, "--prompt", PROMPT, "--decode-backend", "aoti",
                      "--dtype", "bfloat16", check=False)
    assert_one_line_error(proc, 1, "decode-cpu-bfloat16.pt2", "is missing")


def test_bad_values(tiny_export):
    proc = run_s3attn("generate", "--model", tiny_export, "--prompt", PROMPT, "--decode-backend", "tensorrt",
                      check=False)
    assert_one_line_error(proc, 2, "--decode-backend", "torchscript | aoti")
    r = export_aoti(tiny_export, "--dtype", "int8")
    assert r.returncode == 2 and r.stderr.strip().startswith("export_aoti: error: --dtype")
    assert not (tiny_export / "aoti").exists() or not any((tiny_export / "aoti").iterdir())


def test_ask_answers_alike(aoti_model, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("The lighthouse keeper's dog is named Vosisir. " * 20 + "The harbour closes at dusk.\n")
    index = tmp_path / "index"
    run_s3attn("index", "--model", aoti_model, "--input", doc, "--out", index)  # lexical-only: no SAE needed
    answers = [run_json("ask", "--index", index, "--question", "What is the dog called?", "--method", "bm25",
                        "--budget", "64", "--max-new-tokens", "12", "--ignore-stop", "--json",
                        "--decode-backend", backend) for backend in ("torchscript", "aoti")]
    assert answers[0]["tokens"] == answers[1]["tokens"] and len(answers[0]["tokens"]) == 12
    helptext = run_s3attn("longbench", "--help").stdout
    assert "--decode-backend" in helptext
