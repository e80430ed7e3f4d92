"""GGUF input (llama.cpp's format): HF config, dequantized float32 weights in HF naming, and a Hugging
Face tokenizer rebuilt from the GGUF vocabulary.

Done with the `gguf` package directly. (transformers' own `from_pretrained(gguf_file=...)` needs
`accelerate`, and its GGUF tokenizer conversion swaps BOS/EOS and drops the SmolLM digit splitting.)
Only float/quantized types that `gguf.quants.dequantize` knows are accepted. llama.cpp stores the q/k
projections of `llama` models permuted for its interleaved rotary layout; they are permuted back exactly
as transformers does (`LlamaTensorProcessor._reverse_permute_weights`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .errors import ExportError

ARCH = {"llama": ("llama", "LlamaForCausalLM"), "qwen2": ("qwen2", "Qwen2ForCausalLM")}

TENSOR_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}

# Pre-tokenizer regexes of the GGUF `tokenizer.ggml.pre` values we rebuild (same as the HF originals).
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def open_reader(path: Path):
    try:
        import gguf
    except ImportError:
        raise ExportError("the 'gguf' Python package is needed for --gguf (pip install gguf)")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such GGUF file")
    try:
        return gguf.GGUFReader(str(path))
    except Exception as e:
        raise ExportError(f"{path}: not a readable GGUF file ({str(e).splitlines()[0] if str(e) else type(e).__name__})")


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


def read_gguf(path: Path) -> tuple[dict, dict, dict]:
    """(config dict for transformers, HF-named float32 state dict, tokenizer metadata)."""
    import gguf

    reader = open_reader(path)
    arch = _field(reader, "general.architecture")
    if arch not in ARCH:
        raise ExportError(f"unsupported GGUF architecture {arch!r}; supported: {', '.join(ARCH)} "
                          "(LlamaForCausalLM incl. SmolLM2 and Mistral, Qwen2ForCausalLM)")
    model_type, hf_arch = ARCH[arch]
    g = lambda k, d=None: _field(reader, f"{arch}.{k}", d)  # noqa: E731
    names = {t.name for t in reader.tensors}
    if "rope_freqs.weight" in names or g("rope.scaling.type") not in (None, "none"):
        raise ExportError("GGUF files with rope scaling (rope_freqs / rope.scaling.*) are not supported; "
                          "export the original Hugging Face checkpoint instead")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    n_heads = int(g("attention.head_count"))
    n_kv = int(g("attention.head_count_kv", n_heads))
    hidden = int(g("embedding_length"))
    head_dim = int(g("attention.key_length", g("rope.dimension_count", hidden // n_heads)))
    vocab = int(g("vocab_size", len(tokens) if tokens else 0))
    config = {
        "model_type": model_type, "architectures": [hf_arch],
        "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": int(g("feed_forward_length")), "num_hidden_layers": int(g("block_count")),
        "num_attention_heads": n_heads, "num_key_value_heads": n_kv, "head_dim": head_dim,
        "max_position_embeddings": int(g("context_length", 2048)),
        "rms_norm_eps": float(g("attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(g("rope.freq_base", 10000.0)),
        "tie_word_embeddings": "output.weight" not in names,
        "bos_token_id": _field(reader, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": _field(reader, "tokenizer.ggml.eos_token_id"),
        "pad_token_id": _field(reader, "tokenizer.ggml.padding_token_id"),
        "hidden_act": "silu",
    }
    if model_type == "qwen2":
        config["use_sliding_window"] = False

    state = {}
    for t in reader.tensors:
        if t.name in TENSOR_NAMES:
            hf = TENSOR_NAMES[t.name]
        elif t.name.startswith("blk."):
            _, layer, rest = t.name.split(".", 2)
            if rest not in BLOCK_NAMES:
                raise ExportError(f"GGUF tensor {t.name} is not part of a supported {arch} model")
            hf = f"model.layers.{int(layer)}.{BLOCK_NAMES[rest]}"
        else:
            raise ExportError(f"GGUF tensor {t.name} is not part of a supported {arch} model")
        try:
            w = gguf.quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError:
            raise ExportError(f"GGUF tensor type {t.tensor_type.name} ({t.name}) cannot be dequantized")
        w = np.ascontiguousarray(w, dtype=np.float32).reshape([int(x) for x in reversed(t.shape.tolist())])
        if arch == "llama" and rest_is(t.name, "attn_q.weight"):
            w = reverse_permute(w, n_heads)
        elif arch == "llama" and rest_is(t.name, "attn_k.weight"):
            w = reverse_permute(w, n_kv)
        state[hf] = torch.from_numpy(np.array(w, dtype=np.float32, copy=True))
    return config, state, tokenizer_metadata(reader)


def rest_is(name: str, suffix: str) -> bool:
    return name.startswith("blk.") and name.endswith("." + suffix)


def reverse_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's convert permute (per head: [2, D/2] interleave -> HF's half-split layout)."""
    dim = w.shape[0] // n_head // 2
    return np.ascontiguousarray(w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape))


def tokenizer_metadata(reader) -> dict:
    keys = ("model", "pre", "tokens", "token_type", "merges", "bos_token_id", "eos_token_id",
            "unknown_token_id", "padding_token_id", "add_bos_token", "add_eos_token")
    meta = {k: _field(reader, f"tokenizer.ggml.{k}") for k in keys}
    meta["chat_template"] = _field(reader, "tokenizer.chat_template")
    return meta


# Control tokens that end a turn or a text. GGUF files record one eos id, while the checkpoints they
# come from stop on several (Qwen2.5 on <|im_end|> and <|endoftext|>, Llama-3.1 on <|eot_id|>,
# <|eom_id|> and <|end_of_text|>): a control token of one of these names stops generation too, as
# llama.cpp's end-of-generation rule does.
END_OF_GENERATION = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|end|>",
                     "<end_of_turn>", "</s>")


def generation_eos(meta: dict) -> list[int]:
    """Ids of the control tokens (GGUF token type 3) named in END_OF_GENERATION."""
    tokens = list(meta.get("tokens") or [])
    types = list(meta.get("token_type") or [])
    return [i for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3 and t in END_OF_GENERATION]


def write_gguf_tokenizer(meta: dict, out_dir: Path) -> None:
    """tokenizer.json + tokenizer_config.json rebuilt from GGUF metadata (byte-level BPE, model 'gpt2')."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if meta.get("model") != "gpt2":
        raise ExportError(f"GGUF tokenizer model {meta.get('model')!r} is not supported (only byte-level BPE "
                          "'gpt2'); pass --tokenizer with the original tokenizer.json")
    tokens = list(meta["tokens"])
    types = list(meta.get("token_type") or [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in (meta.get("merges") or [])]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False,
                               byte_fallback=False))
    pre = meta.get("pre") or "default"
    if pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    elif pre in ("default", "gpt-2", "gpt2"):
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    elif pre in ("llama-bpe", "llama3", "qwen2"):
        regex = QWEN2_REGEX if pre == "qwen2" else LLAMA3_REGEX
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
        if pre == "qwen2":
            tok.normalizer = normalizers.NFC()
    else:
        raise ExportError(f"GGUF pre-tokenizer {pre!r} is not supported (smollm, gpt-2, llama-bpe, qwen2); "
                          "pass --tokenizer with the original tokenizer.json")
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(tokens[i], special=True, normalized=False) for i, ty in enumerate(types) if ty == 3]
    user = [AddedToken(tokens[i], special=False, normalized=False) for i, ty in enumerate(types) if ty == 4]
    tok.add_special_tokens(special)
    if user:
        tok.add_tokens(user)

    def name(key):
        i = meta.get(key)
        return tokens[int(i)] if i is not None and 0 <= int(i) < len(tokens) else None

    bos = name("bos_token_id")
    add_bos = bool(meta.get("add_bos_token")) and bos is not None
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, int(meta["bos_token_id"]))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(str(out_dir / "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": name("eos_token_id"),
           "unk_token": name("unknown_token_id"), "pad_token": name("padding_token_id"),
           "clean_up_tokenization_spaces": False, "add_prefix_space": False}
    if meta.get("chat_template"):
        cfg["chat_template"] = meta["chat_template"]
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")
