"""`s3attn sae train` and `sae eval` end to end on a tiny model: the SAE directory (sae.json, layer
files Python's safetensors reads, unit-norm decoder rows), eval's JSON, training that lowers the FVU,
checkpoints that resume where they stopped, and one clear line for each kind of bad input."""
from __future__ import annotations

import json
import math
import random
import shutil
import struct
from pathlib import Path

import pytest

from s3attn_testing import run_json, run_s3attn, assert_one_line_error

WORDS = ("river market library grain merchant scholar harbor lantern copper orchard meadow bridge "
         "winter signal archive compass garden tower valley forest candle mirror the a of and is "
         "was 12 345 quick brown fox").split()

# Small enough for the tiny model (4 layers, 2 KV heads of 16, 256 positions) to train in seconds.
TRAIN = ("--latents", "64", "--k", "4", "--batch", "64", "--chunk", "64", "--shuffle-buffer", "512")
LAYERS = ("--layers", "2,0")  # unsorted on purpose: the SAE lists them ascending
STEPS = 150


def make_text(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    return " ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "."
                    for _ in range(sentences))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for i in range(3):
        (root / f"doc{i}.txt").write_text(make_text(i, 150))
    return root


def train(model, corpus, out, *extra) -> dict:
    return run_json("sae", "train", "--model", model, "--corpus", corpus, "--out", out, *TRAIN, *extra,
                    "--json")


def evaluate(model, sae, corpus, *extra) -> dict:
    return run_json("sae", "eval", "--model", model, "--sae", sae, "--corpus", corpus, "--chunk", "64",
                    "--json", *extra)


@pytest.fixture(scope="module")
def trained(tiny_export, corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sae") / "sae"
    summary = train(tiny_export, corpus, out, *LAYERS, "--steps", str(STEPS), "--checkpoint-every", "60")
    return out, summary


def test_sae_json_describes_the_run(trained, tiny_export, corpus):
    out, summary = trained
    info = json.loads((out / "sae.json").read_text())
    model = json.loads((tiny_export / "model.json").read_text())
    assert info["format"] == "s3attn-sae" and info["format_version"] == 1
    assert info["layers"] == [0, 2]
    assert info["d_in"] == model["head_dim"] == 16
    assert (info["d_latent"], info["k"], info["head_mode"], info["dtype"]) == (64, 4, "per-head", "float32")
    assert info["model_fingerprint"] == model["fingerprint"]
    training = info["training"]
    assert training["steps"] == STEPS
    assert training["vectors"] == STEPS * 64
    corpus_bytes = sum(p.stat().st_size for p in corpus.iterdir())
    assert f"{corpus.name}/ (3 files, {corpus_bytes:,} bytes)" in training["corpus"], training["corpus"]
    assert "3 documents" in training["corpus"]
    # Each token gives 2 vectors (KV heads); the buffer holds 512 more than were trained on.
    assert training["tokens"] * 2 >= STEPS * 64
    options = training["options"]
    assert (options["latents"], options["k"], options["batch"], options["steps"]) == (64, 4, 64, STEPS)
    assert options["device"] == "cpu"
    for layer in ("0", "2"):
        stats = info["stats"][layer]
        assert 0 <= stats["fvu"] < 1, stats
        assert 0 <= stats["dead_fraction"] <= 1, stats
        assert summary["layers"][layer] == stats
    assert summary["steps"] == STEPS and summary["resumed_from"] == 0
    assert summary["vectors_per_s"] > 0


def test_layer_files_load_in_python(trained):
    np = pytest.importorskip("numpy")
    from safetensors import safe_open
    out, _ = trained
    assert sorted(p.name for p in out.glob("layer_*.safetensors")) == ["layer_0.safetensors", "layer_2.safetensors"]
    for layer in (0, 2):
        with safe_open(str(out / f"layer_{layer}.safetensors"), framework="numpy") as f:
            meta = f.metadata()
            t = {name: f.get_tensor(name) for name in f.keys()}
        assert meta["format"] == "s3attn-sae-layer" and meta["layer"] == str(layer) and meta["k"] == "4"
        assert {name: v.shape for name, v in t.items()} == {
            "W_enc": (64, 16), "b_enc": (64,), "W_dec": (64, 16), "b_dec": (16,)}
        assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in t.values())
        np.testing.assert_allclose(np.linalg.norm(t["W_dec"], axis=1), 1.0, atol=1e-5)
        # Training moved the encoder away from its initialisation W_enc = W_dec.
        assert np.abs(t["W_enc"] - t["W_dec"]).max() > 1e-3


def test_eval_json_shape_and_ranges(trained, tiny_export, corpus):
    out, _ = trained
    result = evaluate(tiny_export, out, corpus, "--max-tokens", "2000")
    assert set(result["layers"]) == {"0", "2"}
    for layer, m in result["layers"].items():
        assert set(m) == {"fvu_keys", "fvu_queries", "dead_fraction", "l0"}, m
        assert all(isinstance(v, float) and math.isfinite(v) for v in m.values()), m
        assert 0 <= m["fvu_keys"] < 1, m
        assert m["fvu_queries"] >= 0
        assert 0 <= m["dead_fraction"] <= 1
        assert 0 < m["l0"] <= 4
        q = result["queries"][layer]
        assert q["key_vectors"] == 2 * result["tokens"] and q["query_vectors"] == 4 * result["tokens"]
    assert result["tokens"] == 2000 and result["k"] == 4 and result["head_mode"] == "per-head"


def test_training_lowers_fvu(trained, tiny_export, corpus, tmp_path):
    out, _ = trained
    one = tmp_path / "one"
    train(tiny_export, corpus, one, *LAYERS, "--steps", "1", "--checkpoint-every", "0")
    assert not (one / "checkpoint").exists()
    after = evaluate(tiny_export, out, corpus, "--max-tokens", "1500")["layers"]
    before = evaluate(tiny_export, one, corpus, "--max-tokens", "1500")["layers"]
    for layer in ("0", "2"):
        assert after[layer]["fvu_keys"] < 0.8 * before[layer]["fvu_keys"], (before, after)


def test_resume_continues_the_run(trained, tiny_export, corpus, tmp_path):
    out, summary = trained
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == STEPS
    # Older checkpoints (steps 60 and 120) were replaced: one file per layer remains.
    assert sorted(p.name for p in (out / "checkpoint").glob("layer_*")) == [
        f"layer_0.step{STEPS}.safetensors", f"layer_2.step{STEPS}.safetensors"]

    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    proc = run_s3attn("sae", "train", "--model", tiny_export, "--corpus", corpus, "--out", resumed, *TRAIN,
                      *LAYERS, "--steps", str(STEPS + 30), "--checkpoint-every", "60", "--resume", "--json")
    assert f"resuming from step {STEPS}" in proc.stderr
    again = json.loads(proc.stdout)
    assert (again["resumed_from"], again["steps"]) == (STEPS, STEPS + 30)
    info = json.loads((resumed / "sae.json").read_text())
    assert info["training"]["steps"] == STEPS + 30
    assert info["training"]["vectors"] == (STEPS + 30) * 64
    assert info["training"]["tokens"] > summary["tokens"]
    assert json.loads((resumed / "checkpoint" / "state.json").read_text())["step"] == STEPS + 30
    # The resumed weights continue the trained ones rather than starting over.
    assert evaluate(tiny_export, resumed, corpus, "--max-tokens", "1500")["layers"]["0"]["fvu_keys"] < 0.5


def test_resume_refuses_a_different_run(trained, tiny_export, corpus, tmp_path):
    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    base = ("sae", "train", "--model", tiny_export, "--corpus", corpus, "--out", copy, "--batch", "64",
            "--chunk", "64", "--shuffle-buffer", "512", *LAYERS)
    proc = run_s3attn(*base, "--latents", "128", "--k", "4", "--steps", "400", "--resume", check=False)
    assert_one_line_error(proc, 1, "latents", "--resume")
    proc = run_s3attn(*base, "--latents", "64", "--k", "4", "--steps", str(STEPS), "--resume", check=False)
    assert_one_line_error(proc, 2, "raise --steps")
    # Without --resume an existing SAE is never overwritten.
    proc = run_s3attn(*base, "--latents", "64", "--k", "4", "--steps", "5", check=False)
    assert_one_line_error(proc, 1, "already holds an SAE")
    # An interrupted run (a checkpoint, no sae.json yet) is neither overwritten nor silently restarted.
    (copy / "sae.json").unlink()
    proc = run_s3attn(*base, "--latents", "64", "--k", "4", "--steps", "5", check=False)
    assert_one_line_error(proc, 1, "holds a checkpoint", "--resume")
    (copy / "checkpoint" / "state.json").write_text('{"format": "s3attn-sae-train-state", "step": "x"}')
    proc = run_s3attn(*base, "--latents", "64", "--k", "4", "--steps", "400", "--resume", check=False)
    assert_one_line_error(proc, 1, "state.json", "malformed")
    proc = run_s3attn("sae", "train", "--model", tiny_export, "--corpus", corpus, "--out", tmp_path / "new",
                      *TRAIN, "--steps", "5", "--resume", check=False)
    assert_one_line_error(proc, 1, "nothing to resume")


def test_concat_mode_and_half_precision(tiny_export, corpus, tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    out = tmp_path / "concat"
    train(tiny_export, corpus, out, "--layers", "1", "--head-mode", "concat", "--steps", "20", "--save-dtype",
          "bfloat16", "--checkpoint-every", "0")
    info = json.loads((out / "sae.json").read_text())
    assert (info["head_mode"], info["d_in"], info["dtype"]) == ("concat", 32, "bfloat16")
    t = load_file(str(out / "layer_1.safetensors"))
    assert t["W_dec"].dtype == torch.bfloat16 and tuple(t["W_dec"].shape) == (64, 32)
    assert torch.allclose(t["W_dec"].float().norm(dim=1), torch.ones(64), atol=1e-2)
    m = evaluate(tiny_export, out, corpus, "--max-tokens", "500")["layers"]["1"]
    assert math.isfinite(m["fvu_keys"]) and math.isfinite(m["fvu_queries"]) and m["l0"] <= 4


def test_default_layers_are_the_models_taps(tiny_export, corpus, tmp_path):
    out = tmp_path / "default"
    train(tiny_export, corpus, out, "--steps", "2", "--checkpoint-every", "0")
    taps = json.loads((tiny_export / "model.json").read_text())["default_taps"]
    assert json.loads((out / "sae.json").read_text())["layers"] == sorted(taps)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args,code,needles", [
    (["--latents", "4", "--k", "8"], 2, ["--k 8 is larger than --latents 4"]),
    (["--layers", "0,9"], 2, ["layer 9 does not exist", "4 layers"]),
    (["--chunk", "1000"], 2, ["--chunk 1000", "plus BOS", "the model's window of"]),
    (["--save-dtype", "float64"], 2, ["--save-dtype"]),
    (["--model-dtype", "float64"], 2, ["--model-dtype", "float64", "float32, bfloat16, float16"]),
    (["--device", "gpu"], 2, ["--device", "'gpu' is not a device"]),
    # --dtype is the model's in every other command; here it is refused by name, never guessed.
    (["--dtype", "bfloat16"], 2, ["--dtype", "ambiguous", "--save-dtype", "--model-dtype"]),
    (["--head-mode", "both"], 2, ["--head-mode"]),
])
def test_bad_training_options(tiny_export, corpus, tmp_path, args, code, needles):
    proc = run_s3attn("sae", "train", "--model", tiny_export, "--corpus", corpus, "--out", tmp_path / "o",
                      "--steps", "5", *args, check=False)
    assert_one_line_error(proc, code, *needles)
    assert not (tmp_path / "o").exists()


def test_empty_corpus(tiny_export, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    proc = run_s3attn("sae", "train", "--model", tiny_export, "--corpus", empty, "--out", tmp_path / "o",
                      "--steps", "5", check=False)
    assert_one_line_error(proc, 1, "no documents with text")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"content": "some text"}\n')
    proc = run_s3attn("sae", "train", "--model", tiny_export, "--corpus", rows, "--out", tmp_path / "o",
                      "--steps", "5", check=False)
    assert_one_line_error(proc, 1, "no string field 'text'", "--doc-field")


def test_eval_with_an_sae_of_another_model(trained, default_model, corpus):
    out, _ = trained
    proc = run_s3attn("sae", "eval", "--model", default_model, "--sae", out, "--corpus", corpus, check=False)
    assert_one_line_error(proc, 1, "d_in 16", "gives 64")


def test_eval_refuses_another_models_fingerprint(trained, tiny_export, corpus, tmp_path):
    out, _ = trained
    model = tmp_path / "model"
    shutil.copytree(tiny_export, model)
    meta = json.loads((model / "model.json").read_text())
    meta["fingerprint"] = "0" * 64
    (model / "model.json").write_text(json.dumps(meta))
    proc = run_s3attn("sae", "eval", "--model", model, "--sae", out, "--corpus", corpus, check=False)
    assert_one_line_error(proc, 1, "trained on model", "retrain")


def test_eval_missing_layer_file(trained, tiny_export, corpus, tmp_path):
    out, _ = trained
    copy = tmp_path / "sae"
    shutil.copytree(out, copy)
    (copy / "layer_2.safetensors").unlink()
    proc = run_s3attn("sae", "eval", "--model", tiny_export, "--sae", copy, "--corpus", corpus, check=False)
    assert_one_line_error(proc, 1, "layer_2.safetensors", "missing")


def test_eval_corrupted_header(trained, tiny_export, corpus, tmp_path):
    out, _ = trained
    copy = tmp_path / "sae"
    shutil.copytree(out, copy)
    layer = copy / "layer_0.safetensors"
    data = bytearray(layer.read_bytes())
    data[:8] = struct.pack("<Q", len(data) * 4)  # header length beyond the file
    layer.write_bytes(bytes(data))
    proc = run_s3attn("sae", "eval", "--model", tiny_export, "--sae", copy, "--corpus", corpus, check=False)
    assert_one_line_error(proc, 1, "layer_0.safetensors")
    data = bytearray(out.joinpath("layer_0.safetensors").read_bytes())
    data[8:9] = b"["  # the header is no longer a JSON object
    layer.write_bytes(bytes(data))
    proc = run_s3attn("sae", "eval", "--model", tiny_export, "--sae", copy, "--corpus", corpus, check=False)
    assert_one_line_error(proc, 1, "layer_0.safetensors")


def test_eval_missing_sae(tiny_export, corpus, tmp_path):
    proc = run_s3attn("sae", "eval", "--model", tiny_export, "--sae", tmp_path / "none", "--corpus", corpus,
                      check=False)
    assert_one_line_error(proc, 1, "does not exist", "sae train")


def test_wikitext_jsonl(data_dir, tiny_export, tmp_path):
    """The shared WikiText-2 test split through --doc-field (skips without S3ATTN_DATA)."""
    wiki = data_dir / "corpora" / "wikitext-2-v1_test.jsonl"
    out = tmp_path / "wiki"
    summary = train(tiny_export, wiki, out, "--doc-field", "content", "--layers", "3", "--steps", "30",
                    "--checkpoint-every", "0")
    info = json.loads((out / "sae.json").read_text())
    assert "wikitext-2-v1_test.jsonl" in info["training"]["corpus"] and "field 'content'" in info["training"]["corpus"]
    assert summary["steps"] == 30
    m = evaluate(tiny_export, out, wiki, "--doc-field", "content", "--max-tokens", "1000")["layers"]["3"]
    assert 0 <= m["fvu_keys"] < 1 and m["l0"] <= 4


def test_same_seed_same_sae(tiny_export, corpus, tmp_path):
    """Corpus order, chunk offsets, batches and initialisation all come from --seed."""
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        train(tiny_export, corpus, tmp_path / name, "--layers", "1", "--steps", "20", "--seed", seed,
              "--checkpoint-every", "0")
        runs[name] = (tmp_path / name / "layer_1.safetensors").read_bytes()
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_eval_bad_encoder_dtype(trained, tiny_export, corpus):
    """The encoder dtype's error names what it is, not another command's --dtype."""
    proc = run_s3attn("sae", "eval", "--model", tiny_export, "--sae", trained[0], "--corpus", corpus,
                      "--sae-dtype", "float64", check=False)
    assert_one_line_error(proc, 2, "SAE encoder's dtype", "float64")
    assert "--dtype" not in proc.stderr
