"""scripts/sae_sweep.py: grid parsing, and a one-configuration sweep on the CPU with the default model
(256 latents, k 8, layers 0 and 11, 20 training steps, 2 needles in 2,000-token haystacks; about a
minute on one core, bounded at 3 minutes)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from s3attn_testing import REPO, s3attn_binary
import sae_sweep

SCRIPT = REPO / "scripts" / "sae_sweep.py"


def test_layer_sets_and_grid():
    assert sae_sweep.layer_sets("0,11,15,27; 27,3,11,19") == [[0, 11, 15, 27], [3, 11, 19, 27]]
    for bad in ("", ";", "1,1", "-1,2", "a,b"):
        with pytest.raises(ValueError):
            sae_sweep.layer_sets(bad)
    g = sae_sweep.grid([64, 256], [8, 128], [[0, 1], [2]])
    assert g == [{"latents": 64, "k": 8, "layers": [0, 1]}, {"latents": 256, "k": 8, "layers": [0, 1]},
                 {"latents": 256, "k": 128, "layers": [0, 1]}, {"latents": 64, "k": 8, "layers": [2]},
                 {"latents": 256, "k": 8, "layers": [2]}, {"latents": 256, "k": 128, "layers": [2]}]


def test_config_key_tells_measurements_apart():
    row = {"latents": 256, "k": 8, "layers": [0, 11], "steps": 20, "batch": 256, "lr": 1e-3, "device": "cpu",
           "needles": 2, "haystack_tokens": 2000, "budget": 1024}
    assert sae_sweep.config_key(row) == sae_sweep.config_key(dict(row, layers=(0, 11)))
    for field, other in (("k", 16), ("layers", [0, 15]), ("steps", 40), ("device", "cuda"), ("needles", 4)):
        assert sae_sweep.config_key(row) != sae_sweep.config_key(dict(row, **{field: other}))


def run_sweep(out, default_model, data_dir):
    return subprocess.run([sys.executable, str(SCRIPT), "--binary", str(s3attn_binary()), "--model", str(default_model),
                           "--data", str(data_dir), "--device", "cpu", "--latents", "256", "--k", "8",
                           "--layers-sets", "0,11", "--steps", "20", "--batch", "256", "--eval-tokens", "1024",
                           "--needles", "2", "--haystack-tokens", "2000", "--out", str(out)],
                          capture_output=True, text=True, timeout=180)


def test_one_config_sweep_on_cpu(default_model, data_dir, tmp_path):
    out = tmp_path / "sweep"
    proc = run_sweep(out, default_model, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert [json.loads(l) for l in (out / "sweep.jsonl").read_text().splitlines()] == [row]
    assert (row["latents"], row["k"], row["layers"], row["steps"], row["batch"]) == (256, 8, [0, 11], 20, 256)
    assert row["train_vectors"] == 20 * 256 and row["train_vectors_per_s"] > 0 and row["train_seconds"] > 0
    for field in ("fvu_keys", "fvu_queries", "dead_fraction", "l0", "train_fvu"):
        assert set(row[field]) == {"0", "11"}, field
    for layer in ("0", "11"):
        assert 0 < row["fvu_keys"][layer] < 1.5 and math.isfinite(row["fvu_queries"][layer])
        assert 0 <= row["dead_fraction"][layer] <= 1
        assert 0 < row["l0"][layer] <= 8
    assert row["eval_tokens"] == 1024
    assert set(row["recall"]) == {"s3", "bm25", "s3-hybrid"}
    assert row["recall"]["bm25"] == 1.0  # BM25 does not depend on the SAE
    assert set(row["control_recall"]) == {"s3", "bm25", "s3-hybrid"}
    # Postings per token: at most k per tapped layer and KV head (3 KV heads, union per token), at least
    # one per layer (every key has an active latent).
    assert 2 <= row["postings_per_token"] <= 2 * 8 * 3
    assert row["index_bytes_per_token"] > 0 and row["retrieval_ms"]["s3"] > 0
    assert len(row["commands"]) == 3 and " sae train " in row["commands"][0]
    needles = json.loads((out / "L256_k8_t0-11" / "needles" / "needles.json").read_text())
    assert needles["config"]["sae"].endswith("L256_k8_t0-11/sae") and needles["recall"]["default"] == row["recall"]
    assert not (out / "L256_k8_t0-11" / "sae").exists()  # dropped without --keep-saes

    again = run_sweep(out, default_model, data_dir)  # the row is there: nothing is measured again
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip() == "" and "already in" in again.stderr
    assert len((out / "sweep.jsonl").read_text().splitlines()) == 1
