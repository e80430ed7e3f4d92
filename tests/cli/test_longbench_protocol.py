"""LongBench protocol details checked against pred.py's rules, on tiny models (no shared data needed):
the prompt max length of model2maxlen, samsum's first token that may not be a stop token, decoding
with the tokenizer's clean_up_tokenization_spaces, rows whose references are named `outputs`, and
the scan flags that `longbench` shares with `index`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3attn_testing import REPO, assert_one_line_error, export_model, run_json, run_s3attn, s3attn_binary
from tiny_models import make_tiny_model


@pytest.fixture(scope="module")
def windows(tmp_path_factory) -> dict[int, Path]:
    """Tiny models with the windows of model2maxlen's table and two outside it."""
    root = tmp_path_factory.mktemp("windows")
    return {w: export_model(make_tiny_model("llama", root / f"hf{w}", window=w), root / f"m{w}")
            for w in (4096, 8192, 32768, 5000, 40000)}


def task_files(root: Path, task: str, rows: list[dict], template: str = "{context}\nQ: {input}\nA:", maxlen: int = 2):
    config, data = root / "config", root / "data"
    config.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    (config / "dataset2prompt.json").write_text(json.dumps({task: template}))
    (config / "dataset2maxlen.json").write_text(json.dumps({task: maxlen}))
    (data / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return config, data


def longbench(model: Path, config: Path, data: Path, task: str, out: Path, *extra: str, check: bool = True):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    proc = subprocess.run([str(s3attn_binary()), "longbench", "--data", str(data), "--config", str(config), "--tasks",
                           task, "--model", str(model), "--out", str(out), *map(str, extra)],
                          capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


ROW = {"_id": "a", "input": "What?", "context": "Some context.", "answers": ["x"], "all_classes": None, "length": 2}


@pytest.mark.parametrize("window,max_length,rule", [
    (4096, 3500, "model2maxlen: 3,500"), (8192, 7500, "model2maxlen: 7,500"), (32768, 31500, "model2maxlen: 31,500"),
    (5000, 4308, "window - 692"), (40000, 38562, "window x 1000/1024 - 500")])
def test_max_length_follows_model2maxlen(windows, tmp_path, window, max_length, rule):
    config, data = task_files(tmp_path, "mytask", [ROW])
    longbench(windows[window], config, data, "mytask", tmp_path / "run", "--method", "full")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["max_length"] == max_length and rule in manifest["max_length_rule"]


def test_outputs_are_read_as_answers(windows, tmp_path):
    """WaterBench's lcc rows name the references `outputs` (and carry extra fields)."""
    row = {k: v for k, v in ROW.items() if k != "answers"}
    row.update(outputs=["def f():"], input_length=3, output_length=2)
    config, data = task_files(tmp_path, "lcc", [row], template="Complete the code.\n{context}Next line:")
    longbench(windows[4096], config, data, "lcc", tmp_path / "run", "--method", "full")
    got = json.loads((tmp_path / "run" / "lcc.jsonl").read_text())
    assert got["answers"] == ["def f():"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["tasks"]["lcc"]["chat"] is False  # pred.py prompts lcc without the chat template


def test_first_token_not_stop(windows):
    """samsum's min_length = prompt + 1: the first greedy token, made a stop id, is skipped."""
    model = windows[4096]
    args = ["generate", "--model", model, "--prompt", "The quick brown fox", "--max-new-tokens", "4", "--json"]
    free = run_json(*args)
    first = free["tokens"][0]
    stopped = run_json(*args, "--stop-ids", str(first))
    assert stopped["tokens"] == [first] and stopped["stop_reason"] == "stop_token" and stopped["text"] == ""
    kept = run_json(*args, "--stop-ids", str(first), "--first-token-not-stop")
    stops = set(json.loads((model / "model.json").read_text())["stop_token_ids"]) | {first}
    # the model's best choice among the ids that do not stop: from the prompt's own logits
    ids = ",".join(map(str, free["prompt_tokens"]))
    logits = run_json("logits", "--model", model, "--ids", ids)["forward"][-1]
    ranked = sorted(range(len(logits)), key=lambda i: -logits[i])
    assert kept["tokens"][0] == next(i for i in ranked if i not in stops)
    proc = run_s3attn(*args, "--stop-ids", "999999", check=False)
    assert_one_line_error(proc, 2, "--stop-ids")


def test_samsum_manifest_records_the_rule(windows, tmp_path):
    config, data = task_files(tmp_path, "samsum", [ROW])
    longbench(windows[4096], config, data, "samsum", tmp_path / "run", "--method", "full")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["first_token_not_stop_tasks"] == ["samsum"] and manifest["newline_stop_tasks"] == ["samsum"]
    row = json.loads((tmp_path / "run" / "samsum.jsonl").read_text())
    assert row["new_tokens"] >= 1 and not (row["stop_reason"] == "stop_token" and row["new_tokens"] == 1)


def test_clean_up_tokenization_spaces(tmp_path):
    """With clean_up_tokenization_spaces in tokenizer_config.json, decoded text loses the spaces
    before punctuation as transformers' clean_up_tokenization removes them (pred.py decodes so)."""
    from transformers import PreTrainedTokenizerFast
    model = export_model(make_tiny_model("llama", tmp_path / "hf"), tmp_path / "m")
    prompt = "Numbers like 12345 appear in text , as do emails . Code : def f(x): return x * 2 ."
    args = ["generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "48", "--json"]
    plain = run_json(*args)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["clean_up_tokenization_spaces"] = True
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    cleaned = run_json(*args)
    assert cleaned["tokens"] == plain["tokens"]
    tok = PreTrainedTokenizerFast(tokenizer_file=str(model / "tokenizer.json"))
    ids = cleaned["tokens"][:-1] if cleaned["stop_reason"] == "stop_token" else cleaned["tokens"]
    raw = tok.decode(ids, skip_special_tokens=True)
    assert plain["text"] == raw
    assert cleaned["text"] == tok.clean_up_tokenization(raw)
    config["clean_up_tokenization_spaces"] = "yes"
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    proc = run_s3attn(*args, check=False)
    assert_one_line_error(proc, 1, "tokenizer_config.json", "clean_up_tokenization_spaces")


def random_sae(model: Path, out: Path) -> Path:
    """A random SAE on the model's default taps (64 latents, k 4), as the context index's SAE."""
    layers = ",".join(map(str, json.loads((model / "model.json").read_text())["default_taps"]))
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_sae.py"), "--model", str(model), "--layers",
                    layers, "--latents", "64", "--k", "4", "--dtype", "float32", "--out", str(out)],
                   check=True, capture_output=True)
    return out


def test_scan_flags_reach_the_context_index(windows, tmp_path):
    """`longbench` takes the scan flags of `index`; the manifest records the scan they made."""
    model = windows[4096]
    sae = random_sae(model, tmp_path / "sae")
    row = dict(ROW, context="A long context. " * 200)
    config, data = task_files(tmp_path, "mytask", [row])
    longbench(model, config, data, "mytask", tmp_path / "run", "--method", "s3-hybrid", "--sae", sae, "--budget", "64",
              "--chunk", "96", "--chunk-overlap", "16", "--passage-words", "30")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["sae"]["scan"]["chunk"] == 96 and manifest["sae"]["scan"]["overlap"] == 16
    assert manifest["passage_words"] == 30
    proc = longbench(model, config, data, "mytask", tmp_path / "run2", "--method", "s3", "--sae", sae,
                     "--chunk", "0", check=False)
    assert_one_line_error(proc, 2, "--chunk")


def test_record_evidence(windows, tmp_path):
    """--record-evidence writes the question and the evidence each retrieval method handed the model
    into its row: pieces of the sample's own context, joined by the separator."""
    model = windows[4096]
    sae = random_sae(model, tmp_path / "sae")
    context = " ".join(f"Sentence number {i} talks about the harbor." for i in range(150))
    config, data = task_files(tmp_path, "mytask", [dict(ROW, context=context)])
    for method in ("bm25", "s3-hybrid", "full"):
        longbench(model, config, data, "mytask", tmp_path / method, "--method", method, "--sae", sae, "--budget", "64",
                  "--record-evidence")
        row = json.loads((tmp_path / method / "mytask.jsonl").read_text())
        assert row["input"] == ROW["input"]
        if method == "full":
            assert "evidence" not in row
            continue
        pieces = row["evidence"].split("\n...\n")
        assert row["evidence"] and all(p and p in context for p in pieces)
