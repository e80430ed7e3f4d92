"""The C++ runtime against transformers on tiny random models of every family (float32):
logits within 1e-4 through both the uncached and the cached path, and identical greedy generations."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from s3attn_testing import run_json

TOLERANCE = 1e-4
PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"


def hf_model(hf_dir):
    return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()


def test_logits_match_transformers(s3attn, family_export):
    family, hf_dir, model_dir = family_export
    model = hf_model(hf_dir)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, model.config.vocab_size, size=24).tolist()
    out = run_json("logits", "--model", model_dir, "--ids", ",".join(map(str, ids)))
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    for path in ("forward", "cached"):
        ours = np.asarray(out[path], dtype=np.float32)
        assert ours.shape == ref.shape
        diff = float(np.abs(ours - ref).max())
        assert diff < TOLERANCE, f"{family} {path}: max |diff| {diff:.2e}"


@pytest.mark.parametrize("chat", [False, True])
def test_greedy_generation_matches_transformers(s3attn, family_export, chat):
    family, hf_dir, model_dir = family_export
    meta = json.loads((model_dir / "model.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    args = ["generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", "32", "--json"]
    if chat:
        args.append("--chat")
        expected_prompt = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                                        add_generation_prompt=True, tokenize=True)
        if hasattr(expected_prompt, "input_ids") or isinstance(expected_prompt, dict):
            expected_prompt = expected_prompt["input_ids"]
    else:
        expected_prompt = tokenizer(PROMPT).input_ids
    out = run_json(*args)
    assert out["prompt_tokens"] == list(expected_prompt)

    model = hf_model(hf_dir)
    with torch.no_grad():
        ref = model.generate(torch.tensor([out["prompt_tokens"]]), do_sample=False, max_new_tokens=32,
                             eos_token_id=meta["stop_token_ids"], pad_token_id=meta["stop_token_ids"][0])
    expected = ref[0, len(out["prompt_tokens"]):].tolist()
    assert out["tokens"] == expected, family
    assert out["stop_reason"] == ("stop_token" if expected[-1] in meta["stop_token_ids"] else "max_new_tokens")


def test_default_model_answers_capital_question(s3attn, default_model):
    out = run_json("generate", "--model", default_model, "--chat", "--max-new-tokens", "48", "--json",
                   "--prompt", "What is the capital of France?")
    assert "Paris" in out["text"], out["text"]
    assert out["timings"]["prefill_tokens_per_s"] > 0
