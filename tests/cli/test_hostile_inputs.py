"""Hostile inputs (issue "Reliability", items 2-5) on a tiny model: files that are not regular files or
are too large are refused at once, work that would grow without bound is bounded, every user-caused
failure is one line naming the file or flag (exit 1, or 2 for flags), and inputs that are wrong are
refused instead of silently accepted."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO, assert_one_line_error, rewrite_manifest, run_json, run_s3attn

QUESTION = "What is the secret code word?"
QUICK = 60  # seconds: every refusal here is immediate; a blocked read or a runaway allocation is not


@pytest.fixture(scope="module")
def sae(tiny_export, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sae") / "sae"
    layers = ",".join(map(str, json.loads((tiny_export / "model.json").read_text())["default_taps"]))
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_sae.py"), "--model", str(tiny_export),
                    "--layers", layers, "--latents", "256", "--k", "8", "--dtype", "float32", "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    (root / "a.txt").write_text("The river market opened at dawn. " * 40 + "The secret code word is zanzibar.\n")
    (root / "b.txt").write_text("Copper lanterns lit the harbor tower. " * 40)
    return root


@pytest.fixture(scope="module")
def index(tiny_export, sae, docs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", docs, "--chunk", "128",
               "--passage-words", "20", "--out", out)
    return out


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def ask(index: Path, model: Path, sae: Path, *extra: str):
    return run_s3attn("ask", "--index", index, "--model", model, "--sae", sae, "--question", QUESTION,
                      "--method", "s3-hybrid", "--budget", "64", "--evidence-only", *extra, check=False, timeout=QUICK)


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# --- 2. Unbounded reads ----------------------------------------------------------------------------

def sae_layer_file(sae: Path) -> str:
    return sorted(p.name for p in sae.glob("layer_*.safetensors"))[0]


@pytest.mark.parametrize("where,name", [
    ("index", "manifest.json"), ("index", "seg-000000/docs.bin"), ("model", "model.json"),
    ("model", "tokenizer.json"), ("model", "model.ts"), ("sae", "sae.json"), ("sae", "layer")])
def test_fifo_instead_of_a_file_is_refused_at_once(s3attn, tiny_export, sae, index, tmp_path, where, name):
    """A named pipe where a file belongs blocked the reader forever."""
    dirs = {"index": copy(index, tmp_path / "idx"), "model": copy(tiny_export, tmp_path / "model"),
            "sae": copy(sae, tmp_path / "sae")}
    if name == "layer":
        name = sae_layer_file(dirs["sae"])
    target = dirs[where] / name
    target.unlink()
    os.mkfifo(target)
    proc = ask(dirs["index"], dirs["model"], dirs["sae"])
    assert_one_line_error(proc, 1, Path(name).name, "regular file")


@pytest.mark.parametrize("where,name", [("index", "manifest.json"), ("model", "model.json"),
                                        ("model", "tokenizer.json"), ("sae", "sae.json")])
def test_device_instead_of_a_file_is_refused(s3attn, tiny_export, sae, index, tmp_path, where, name):
    """A link to a device: /dev/zero made `ask` grow to 23 GB; /dev/null (tested here, harmless if
    the check is missing) is refused for the same reason, before anything is read."""
    dirs = {"index": copy(index, tmp_path / "idx"), "model": copy(tiny_export, tmp_path / "model"),
            "sae": copy(sae, tmp_path / "sae")}
    target = dirs[where] / name
    target.unlink()
    target.symlink_to("/dev/null")
    assert_one_line_error(ask(dirs["index"], dirs["model"], dirs["sae"]), 1, name, "character device")


@pytest.mark.parametrize("where,name,limit", [("index", "manifest.json", "64 MiB"), ("model", "model.json", "16 MiB"),
                                              ("model", "tokenizer.json", "256 MiB"), ("sae", "sae.json", "16 MiB")])
def test_oversized_metadata_is_refused_before_reading(s3attn, tiny_export, sae, index, tmp_path, where, name, limit):
    dirs = {"index": copy(index, tmp_path / "idx"), "model": copy(tiny_export, tmp_path / "model"),
            "sae": copy(sae, tmp_path / "sae")}
    with open(dirs[where] / name, "r+b") as f:  # sparse: costs no disk
        f.truncate(int(limit.split()[0]) * 2**20 + 1)
    assert_one_line_error(ask(dirs["index"], dirs["model"], dirs["sae"]), 1, name, f"larger than the limit of {limit}")


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_index_input_that_is_not_a_file(s3attn, tiny_export, sae, tmp_path, kind):
    """`index --input /dev/zero` ended in a raw allocator message, a FIFO blocked forever."""
    source = Path("/dev/null")
    if kind == "fifo":
        source = tmp_path / "pipe.txt"
        os.mkfifo(source)
    proc = run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", source, "--out", tmp_path / "idx",
                      check=False, timeout=QUICK)
    assert_one_line_error(proc, 1, str(source), "character device" if kind == "device" else "named pipe")


def test_tokenize_input_that_is_not_a_file(s3attn, tiny_export, tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    proc = run_s3attn("tokenize", "--tokenizer", tiny_export / "tokenizer.json", "--input", fifo, check=False,
                      timeout=QUICK)
    assert_one_line_error(proc, 1, str(fifo), "named pipe")


# --- 3. Work that grows without bound --------------------------------------------------------------

@pytest.mark.parametrize("method", ["s3", "bm25"])
def test_question_longer_than_the_window_is_refused(s3attn, index, tiny_export, sae, method):
    """A 100,000-character question ran for minutes under --evidence-only."""
    window = json.loads((tiny_export / "model.json").read_text())["max_position_embeddings"]
    question = "where is the secret code word hidden " * window
    proc = run_s3attn("ask", "--index", index, "--sae", sae, "--question", question, "--method", method,
                      "--evidence-only", check=False, timeout=QUICK)
    assert_one_line_error(proc, 2, "--question", f"window of {window} tokens")


def test_questions_file_is_bounded(s3attn, index, tiny_export, sae, tmp_path):
    """`ask --questions-file`: a FIFO is refused at once, and each question must fit the window."""
    fifo = tmp_path / "questions.txt"
    os.mkfifo(fifo)
    proc = run_s3attn("ask", "--index", index, "--sae", sae, "--questions-file", fifo, "--method", "bm25",
                      "--evidence-only", check=False, timeout=QUICK)
    assert_one_line_error(proc, 1, str(fifo), "named pipe")
    window = json.loads((tiny_export / "model.json").read_text())["max_position_embeddings"]
    questions = tmp_path / "long.txt"
    questions.write_text(QUESTION + "\n" + "where is the secret code word hidden " * window + "\n")
    proc = run_s3attn("ask", "--index", index, "--sae", sae, "--questions-file", questions, "--method", "s3",
                      "--evidence-only", "--json", check=False, timeout=QUICK)
    assert_one_line_error(proc, 2, f"window of {window} tokens")


def test_generate_caps_new_tokens_at_the_window(s3attn, tiny_export):
    """--max-new-tokens 2147483647 tried to allocate a KV cache of 49 TB."""
    window = json.loads((tiny_export / "model.json").read_text())["max_position_embeddings"]
    proc = run_s3attn("generate", "--model", tiny_export, "--prompt", "Hello there", "--max-new-tokens", "2147483647",
                      "--ignore-stop", "--json", check=False, timeout=QUICK)
    assert proc.returncode == 0, proc.stderr
    assert "capped" in proc.stderr and "--max-new-tokens" in proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["prompt_tokens"]) + len(out["tokens"]) == window + 1  # the last token needs no position
    assert out["stop_reason"] == "window"


@pytest.mark.parametrize("flag,value", [("--latents", "2147483647"), ("--batch", "2147483647")])
def test_sae_train_sizes_are_bounded(s3attn, tiny_export, docs, tmp_path, flag, value):
    """`sae train --latents 2147483647` tried to allocate 549 GB and printed 25 backtrace frames."""
    proc = run_s3attn("sae", "train", "--model", tiny_export, "--corpus", docs, "--out", tmp_path / "sae",
                      "--k", "8", "--chunk", "128", flag, value, check=False, timeout=QUICK)
    assert_one_line_error(proc, 2, flag)


@pytest.mark.parametrize("field,needle", [("input", "retrieval question"), ("control_question", "control_question")])
def test_longbench_input_longer_than_the_window_is_refused_up_front(s3attn, tiny_export, sae, tmp_path, field,
                                                                     needle):
    window = json.loads((tiny_export / "model.json").read_text())["max_position_embeddings"]
    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()
    data.mkdir()
    (config / "dataset2prompt.json").write_text(json.dumps({"qa": "{context}\n\nQuestion: {input}\nAnswer:"}))
    (config / "dataset2maxlen.json").write_text(json.dumps({"qa": 4}))
    rows = [{"_id": "short", "input": "Where?", "context": "The code is zanzibar. " * 20, "answers": ["zanzibar"]},
            {"_id": "long", "input": "Where?", "context": "Nothing here. " * 20, "answers": ["x"]}]
    rows[1][field] = "where is it " * window
    (data / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_s3attn("longbench", "--data", data, "--config", config, "--tasks", "qa", "--model", tiny_export,
                      "--sae", sae, "--method", "bm25", "--max-length", "128", "--out", tmp_path / "run",
                      check=False, timeout=QUICK)
    assert_one_line_error(proc, 1, "qa.jsonl", "sample long", needle, f"window of {window} tokens")
    assert not list((tmp_path / "run").glob("*.jsonl")), "no sample may run before the inputs are checked"


# --- 4. One line, every time -----------------------------------------------------------------------

def test_negative_bos_token_id_is_refused(s3attn, tiny_export, tmp_path):
    """bos_token_id -7 printed a multi-line TorchScript trace."""
    model = copy(tiny_export, tmp_path / "model")
    edit_json(model / "model.json", lambda m: m.update(bos_token_id=-7, add_bos_token=True))
    proc = run_s3attn("generate", "--model", model, "--prompt", "Hello", check=False, timeout=QUICK)
    assert_one_line_error(proc, 1, "model.json", "bos_token_id")


@pytest.mark.parametrize("link", ["loop", "dangling"])
def test_unfollowable_link_in_an_input_directory(s3attn, tiny_export, sae, docs, tmp_path, link):
    """A symbolic link loop inside an input directory printed "internal: filesystem error"."""
    corpus = copy(docs, tmp_path / "docs")
    (corpus / "sub").mkdir()
    entry = corpus / "sub" / link
    entry.symlink_to(entry.name if link == "loop" else "missing.txt")
    proc = run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", corpus, "--out", tmp_path / "idx",
                      check=False, timeout=QUICK)
    assert_one_line_error(proc, 1, str(entry))
    assert "internal" not in proc.stderr


def test_unreadable_directory_in_the_input(s3attn, tiny_export, sae, docs, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    corpus = copy(docs, tmp_path / "docs")
    (corpus / "locked").mkdir(mode=0)
    try:
        proc = run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", corpus, "--out",
                          tmp_path / "idx", check=False, timeout=QUICK)
        assert_one_line_error(proc, 1, "locked")
    finally:
        (corpus / "locked").chmod(0o755)


# --- 5. Refuse what is wrong -----------------------------------------------------------------------

@pytest.mark.parametrize("field,value,needle", [
    ("eos_token_id", "2", "eos_token_id"),
    ("rope_theta", "10000", "rope_theta"),
    ("n_layers", 4.5, "n_layers"),
    ("vocab_size", 2**40, "vocab_size"),
    ("bos_token_id", 320, "bos_token_id"),  # token ids outside the tiny model's vocabulary of 320
    ("stop_token_ids", [2, 320], "stop_token_ids"),
    ("pad_token_id", -1, "pad_token_id"),
    ("add_bos_token", "yes", "add_bos_token"),
    ("architecture", 7, "architecture"),
    ("max_position_embeddings", 0, "max_position_embeddings"),
])
def test_model_json_fields_of_the_wrong_type_or_range(s3attn, tiny_export, tmp_path, field, value, needle):
    model = copy(tiny_export, tmp_path / "model")
    edit_json(model / "model.json", lambda m: m.update({field: value}))
    proc = run_s3attn("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "2", check=False,
                      timeout=QUICK)
    assert_one_line_error(proc, 1, "model.json", needle)


def test_vocab_size_smaller_than_the_tokenizer(s3attn, tiny_export, tmp_path):
    model = copy(tiny_export, tmp_path / "model")
    edit_json(model / "model.json", lambda m: m.update(vocab_size=100, stop_token_ids=[2]))
    proc = run_s3attn("generate", "--model", model, "--prompt", "Hello", check=False, timeout=QUICK)
    assert_one_line_error(proc, 1, "vocab_size 100", "tokenizer")


def test_sae_with_nan_weights_is_refused(s3attn, index, tiny_export, sae, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    bad = copy(sae, tmp_path / "sae")
    layer = bad / sae_layer_file(bad)
    with safe_open(str(layer), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    tensors["W_dec"][3, 1] = float("nan")
    save_file(tensors, str(layer), metadata=metadata)
    assert_one_line_error(ask(index, tiny_export, bad), 1, layer.name, "W_dec", "NaN")


def test_chunk_larger_than_the_window_is_refused(s3attn, tiny_export, sae, docs, tmp_path):
    window = json.loads((tiny_export / "model.json").read_text())["max_position_embeddings"]
    proc = run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", docs, "--chunk", str(4 * window),
                      "--out", tmp_path / "idx", check=False, timeout=QUICK)
    assert_one_line_error(proc, 2, "--chunk", f"window of {window} tokens")
    assert not (tmp_path / "idx").exists()


def test_default_chunk_is_lowered_to_fit_a_small_window(s3attn, tiny_export, sae, docs, tmp_path):
    """Without --chunk, the default of 4,096 tokens is lowered to the model's window (the tiny
    model's is smaller) instead of being refused like an explicit --chunk that does not fit."""
    meta = json.loads((tiny_export / "model.json").read_text())
    window = meta["max_position_embeddings"]
    assert window < 4096
    run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", docs, "--out", tmp_path / "idx",
               timeout=QUICK)
    scan = run_json("inspect", tmp_path / "idx", "--json")["configuration"]["scan"]
    assert scan["chunk"] == window - (1 if scan["chunk_bos"] else 0)


@pytest.mark.parametrize("key,value,needle", [
    ("chunk", -5, "'chunk'"), ("chunk", 1.5, "'chunk'"), ("overlap", 4096, "'overlap'"),
    ("k", 2**31, "'k'"), ("chunk_bos", "yes", "'chunk_bos'"), ("layers", [0], "'layers'"),
])
def test_scan_metadata_out_of_range_is_refused(s3attn, index, tiny_export, sae, tmp_path, key, value, needle):
    bad = copy(index, tmp_path / "idx")
    rewrite_manifest(bad, lambda m: m["metadata"]["scan"].update({key: value}))
    for method in ("s3", "bm25"):
        proc = run_s3attn("ask", "--index", bad, "--sae", sae, "--question", QUESTION, "--method", method,
                          "--evidence-only", check=False, timeout=QUICK)
        assert_one_line_error(proc, 1, "manifest.json", needle)


def test_rewritten_manifest_is_still_accepted(s3attn, index, tmp_path):
    """The test helper's checksum is the reader's: an edit that changes nothing is accepted."""
    same = copy(index, tmp_path / "idx")
    rewrite_manifest(same, lambda m: None)
    assert run_json("inspect", same, "--json")["documents"] == 2


def test_manifest_counts_that_do_not_fit(s3attn, index, tmp_path):
    """2^40 documents read as 0."""
    bad = copy(index, tmp_path / "idx")
    rewrite_manifest(bad, lambda m: m["segments"][0].update(n_docs=2**40 + m["segments"][0]["n_docs"]))
    assert_one_line_error(run_s3attn("inspect", bad, check=False, timeout=QUICK), 1, "manifest.json", "'n_docs'")


def test_inspect_escapes_control_characters_in_names(s3attn, tiny_export, sae, tmp_path):
    name = "evil\x1b[31m red\nsecond line\x07\u0085end"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "The harbor tower was lit. " * 20, "name": name}) + "\n")
    run_s3attn("index", "--model", tiny_export, "--sae", sae, "--input", rows, "--name-field", "name", "--chunk", "128",
               "--out", tmp_path / "idx")
    text = run_s3attn("inspect", tmp_path / "idx").stdout
    for raw in ("\x1b", "\x07", "\u0085", "red\nsecond"):
        assert raw not in text, text
    assert "evil\\x1B[31m red\\nsecond line\\x07\\u0085end" in text, text
    assert json.loads(run_s3attn("inspect", tmp_path / "idx", "--json").stdout)["document_list"][0]["name"] == name
