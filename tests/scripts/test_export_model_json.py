"""model.json content (docs/model-format.md) and the tokenizer files of exported tiny models."""

import hashlib
import json

import pytest
import s3attn_testing  # noqa: F401  (puts scripts/ and tests/scripts/ on sys.path)
from tiny_models import FAMILIES


def model_json(model_dir):
    return json.loads((model_dir / "model.json").read_text())


def test_default_taps():
    from s3export.meta import default_taps

    assert default_taps(32) == [0, 12, 16, 29]  # the paper's Llama-3.1-8B taps
    assert default_taps(30) == [0, 11, 15, 27]  # SmolLM2-135M
    assert default_taps(4) == [0, 2, 3]
    assert default_taps(1) == [0]


@pytest.mark.parametrize("family", FAMILIES)
def test_model_json_facts(family, exported, hf_model, tiny_dir):
    d = exported(family)
    m = model_json(d)
    cfg = hf_model(family).config
    assert m["format"] == "s3attn-model" and m["format_version"] == 1
    assert m["architecture"] == cfg.architectures[0]
    assert m["family"] == cfg.model_type
    assert m["source"] == {"kind": "hf", "path": str(tiny_dir(family).resolve())}
    assert m["dtype"] == "float32"
    assert (m["n_layers"], m["hidden_size"], m["intermediate_size"]) == (4, 64, 128)
    assert (m["n_heads"], m["n_kv_heads"], m["head_dim"], m["vocab_size"]) == (
        4, cfg.num_key_value_heads, 16, 320)
    assert m["tie_word_embeddings"] == (family == "smollm2")
    assert m["attention_bias"] == (family == "qwen2")
    assert m["default_taps"] == [0, 2, 3]
    assert len(m["fingerprint"]) == 64 and int(m["fingerprint"], 16) >= 0
    assert set(m["exporter"]) == {"torch", "transformers"}
    assert (d / "tokenizer.json").read_bytes() == (tiny_dir(family) / "tokenizer.json").read_bytes()
    assert (d / "tokenizer_config.json").exists()


def test_stop_ids_bos_and_rope(exported):
    llama3 = model_json(exported("llama3"))
    assert llama3["stop_token_ids"] == [2, 5]  # generation_config's list: </s> and <|eot|>
    assert llama3["eos_token_id"] == 2
    assert llama3["rope_scaling"]["rope_type"] == "llama3" and llama3["rope_theta"] == 500000.0
    assert llama3["add_bos_token"] is True and llama3["bos_token"] == "<s>" and llama3["bos_token_id"] == 1

    smol = model_json(exported("smollm2"))
    assert smol["stop_token_ids"] == [4] and smol["add_bos_token"] is False
    assert smol["rope_scaling"] is None

    mistral = model_json(exported("mistral"))
    assert mistral["sliding_window"] == 16 and mistral["sliding_window_layers"] == [0, 1, 2, 3]
    qwen = model_json(exported("qwen2_swa"))
    assert qwen["sliding_window"] == 16 and qwen["sliding_window_layers"] == [2, 3]
    assert model_json(exported("qwen2"))["sliding_window"] is None


@pytest.mark.parametrize("family", ["llama3", "smollm2"])
def test_chat_template_parts_reproduce_transformers(family, exported, tiny_dir):
    """prefix + text + suffix, encoded as the contract says (BOS added when add_bos_token and the text
    does not already start with bos_token), equals transformers' apply_chat_template."""
    from transformers import AutoTokenizer

    m = model_json(exported(family))
    tok = AutoTokenizer.from_pretrained(str(tiny_dir(family)))
    for text in ["What is the capital of France?", "two\nlines  and {braces} <s>"]:
        msgs = [{"role": "user", "content": text}]
        want_text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        prompt = m["chat_template"]["prefix"] + text + m["chat_template"]["suffix"]
        assert prompt == want_text
        add = m["add_bos_token"] and not prompt.startswith(m["bos_token"] or "\0")
        ids = tok(prompt, add_special_tokens=add)["input_ids"]
        want_ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=True)
        assert ids == list(want_ids["input_ids"])


def test_add_bos_detection(exported, tiny_dir):
    from transformers import AutoTokenizer

    for family in ("llama", "qwen2"):
        tok = AutoTokenizer.from_pretrained(str(tiny_dir(family)))
        with_sp = tok("hello", add_special_tokens=True)["input_ids"]
        assert model_json(exported(family))["add_bos_token"] == (with_sp[0] == tok.bos_token_id)
    assert model_json(exported("llama"))["add_bos_token"] is True
    assert model_json(exported("qwen2"))["add_bos_token"] is False


def test_tiny_models_are_deterministic(tmp_path):
    from tiny_models import make_tiny_model

    a = make_tiny_model("qwen2", tmp_path / "a")
    b = make_tiny_model("qwen2", tmp_path / "b")
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_fingerprint_is_the_weights_not_the_archive(tmp_path):
    """The same weights exported twice give the same fingerprint; other weights another one."""
    import subprocess
    import sys
    from s3attn_testing import REPO
    EXPORTER = REPO / "scripts" / "export_model.py"
    from tiny_models import make_tiny_model

    prints = []
    for i, seed in enumerate((0, 0, 1)):
        hf = make_tiny_model("llama", tmp_path / f"hf{i}", seed=seed)
        out = tmp_path / f"m{i}"
        subprocess.run([sys.executable, str(EXPORTER), "--hf", str(hf), "--out", str(out)], check=True,
                       capture_output=True)
        prints.append(json.loads((out / "model.json").read_text())["fingerprint"])
    assert prints[0] == prints[1] != prints[2]
