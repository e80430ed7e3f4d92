"""Tiny random Hugging Face checkpoints of every supported family, for parity tests (Python and C++).

    from tiny_models import FAMILIES, make_tiny_model
    d = make_tiny_model("llama3", tmp_path / "llama3")   # -> d, an HF directory (save_pretrained)

Each directory holds config.json, generation_config.json, model.safetensors, tokenizer.json and
tokenizer_config.json (a tiny byte-level BPE trained with `tokenizers` on TEXT, with a ChatML chat
template). Everything is seeded: the same call gives the same files.

Families (FAMILY_INFO says what each one exercises):
  llama     Llama, GQA 4/2 heads, untied embeddings, BOS added by the tokenizer
  llama3    Llama-3.x style: rope_scaling llama3, two stop ids (eos and <|eot|>) in generation_config
  smollm2   SmolLM2 style Llama: tied embeddings, 4/1 heads, no BOS added
  mistral   Mistral v0.1 style: sliding_window 16 (shorter than the parity sequences)
  qwen2     Qwen2 with q/k/v biases, untied
EXTRA_FAMILIES (not in FAMILIES, used for narrower checks):
  qwen2_swa     Qwen2 with use_sliding_window on the upper 2 of 4 layers (window 16)
  llama_linear  Llama with rope_scaling linear (factor 2)
  llama_yarn    Llama with rope_scaling yarn (factor 4)
Run as a script to write them all: python tests/scripts/tiny_models.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

FAMILIES = ("llama", "llama3", "smollm2", "mistral", "qwen2")
EXTRA_FAMILIES = ("qwen2_swa", "llama_linear", "llama_yarn")

FAMILY_INFO = {
    "llama": "Llama, GQA, untied embeddings, BOS added",
    "llama3": "Llama-3 rope_scaling llama3, stop ids [</s>, <|eot|>]",
    "smollm2": "SmolLM2-style Llama, tied embeddings, MQA, no BOS",
    "mistral": "Mistral, sliding_window 16",
    "qwen2": "Qwen2, q/k/v biases",
    "qwen2_swa": "Qwen2, sliding window on layers 2-3",
    "llama_linear": "Llama, rope_scaling linear",
    "llama_yarn": "Llama, rope_scaling yarn",
}

VOCAB_SIZE = 320  # model vocabulary (the tokenizer has fewer entries, as real checkpoints often do)
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|eot|>"]
CHAT_TEMPLATE = (
    "{% if add_bos %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TEXT = """The quick brown fox jumps over the lazy dog. Paris is the capital of France, and Berlin is the
capital of Germany. Attention is all you need: queries, keys and values. A sparse autoencoder keeps the
top k latents of each key. The index maps every feature to the positions where it fired. Numbers like
12345 and 3.14159 appear in text, as do emails (someone@example.com) and code: def f(x): return x * 2.
Long documents are read once, in chunks of 4096 tokens, and the question is answered from the evidence.
"""


def _base(family: str) -> dict:
    common = dict(
        vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=False,
    )
    if family == "llama":
        return dict(common, model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=10000.0)
    if family == "llama3":
        return dict(common, model_type="llama", architectures=["LlamaForCausalLM"], eos_token_id=[2, 5],
                    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 64})
    if family == "llama_linear":
        return dict(common, model_type="llama", architectures=["LlamaForCausalLM"],
                    rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0})
    if family == "llama_yarn":
        return dict(common, model_type="llama", architectures=["LlamaForCausalLM"],
                    rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                     "original_max_position_embeddings": 64})
    if family == "smollm2":
        return dict(common, model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=100000.0,
                    num_key_value_heads=1, tie_word_embeddings=True, bos_token_id=1, eos_token_id=4)
    if family == "mistral":
        return dict(common, model_type="mistral", architectures=["MistralForCausalLM"], rope_theta=10000.0,
                    sliding_window=16, head_dim=16)
    if family == "qwen2":
        return dict(common, model_type="qwen2", architectures=["Qwen2ForCausalLM"], rope_theta=1000000.0,
                    use_sliding_window=False, eos_token_id=4)
    if family == "qwen2_swa":
        return dict(common, model_type="qwen2", architectures=["Qwen2ForCausalLM"], rope_theta=10000.0,
                    use_sliding_window=True, sliding_window=16, max_window_layers=2, eos_token_id=4)
    raise ValueError(f"unknown tiny family {family!r}; known: {FAMILIES + EXTRA_FAMILIES}")


def _adds_bos(family: str) -> bool:
    return family in ("llama", "llama3", "llama_linear", "llama_yarn", "mistral")


def make_tokenizer(add_bos: bool, vocab: int = 300):
    """A deterministic byte-level BPE `tokenizers.Tokenizer` (`vocab` entries, at most VOCAB_SIZE)
    trained on TEXT; a smaller vocab cuts the same text into more tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([line for line in TEXT.splitlines() if line] * 4, trainer=trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def write_tokenizer(out_dir: Path, add_bos: bool, eos_token: str = "</s>", vocab: int = 300) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    make_tokenizer(add_bos, vocab).save(str(out_dir / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": eos_token, "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False, "model_max_length": 256,
        "chat_template": CHAT_TEMPLATE.replace("add_bos", "true" if add_bos else "false"),
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Larger-than-init weights so logits are far from uniform, random norms and biases (HF inits
    them to ones / zeros, which would hide a mapping mistake)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def make_tiny_model(family: str, out_dir: Path, seed: int = 0, window: int = 256, tokenizer_vocab: int = 300) -> Path:
    """Writes a tiny random HF checkpoint of `family` (FAMILIES or EXTRA_FAMILIES) into out_dir, with a
    context window of `window` tokens and a tokenizer of `tokenizer_vocab` entries."""
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    cfg = dict(_base(family), max_position_embeddings=window)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mt = cfg.pop("model_type")
    config = AutoConfig.for_model(mt, **cfg)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _randomize(model, seed + 1)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = GenerationConfig(bos_token_id=cfg["bos_token_id"], eos_token_id=cfg["eos_token_id"])
    model.save_pretrained(out_dir)
    eos_id = cfg["eos_token_id"][0] if isinstance(cfg["eos_token_id"], list) else cfg["eos_token_id"]
    write_tokenizer(out_dir, _adds_bos(family), eos_token=SPECIAL_TOKENS[eos_id], vocab=tokenizer_vocab)
    return out_dir


def _permute_for_gguf(w, n_head: int):
    """llama.cpp's convert permute of q/k rows (HF half-split rotary layout -> interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(hf_dir: Path, out_file: Path) -> Path:
    """Writes the tiny Llama-family checkpoint in `hf_dir` as a float32 GGUF file the way llama.cpp's
    converter does (arch 'llama', permuted q/k, byte-level BPE vocabulary 'gpt2' with pre 'gpt-2')."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    hf_dir, out_file = Path(hf_dir), Path(out_file)
    cfg = json.loads((hf_dir / "config.json").read_text())
    if cfg["model_type"] != "llama":
        raise ValueError("write_tiny_gguf handles the llama family only")
    tok = json.loads((hf_dir / "tokenizer.json").read_text())
    tok_cfg = json.loads((hf_dir / "tokenizer_config.json").read_text())
    vocab = dict(tok["model"]["vocab"])
    for t in tok["added_tokens"]:
        vocab[t["content"]] = t["id"]
    special = {t["id"] for t in tok["added_tokens"] if t["special"]}
    n_vocab = cfg["vocab_size"]
    tokens = [f"<unused_{i}>" for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for t, i in vocab.items():
        tokens[i] = t
        types[i] = gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    eos = cfg["eos_token_id"][0] if isinstance(cfg["eos_token_id"], list) else cfg["eos_token_id"]
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head

    w = gguf.GGUFWriter(str(out_file), "llama")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(float(cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(n_vocab)
    w.add_rope_dimension_count(head_dim)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(eos)
    w.add_add_bos_token((tok.get("post_processor") or {}).get("type") == "TemplateProcessing")
    w.add_chat_template(tok_cfg["chat_template"])
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    block = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
             "mlp.down_proj.weight": "ffn_down.weight"}
    for name, t in sorted(load_file(str(hf_dir / "model.safetensors")).items()):
        if name.startswith("model.layers."):
            _, _, layer, rest = name.split(".", 3)
            gname = f"blk.{layer}.{block[rest]}"
        else:
            gname = names[name]
        if gname.endswith("attn_q.weight"):
            t = _permute_for_gguf(t, n_head)
        elif gname.endswith("attn_k.weight"):
            t = _permute_for_gguf(t, n_kv)
        w.add_tensor(gname, np.ascontiguousarray(t.astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_file


def make_all(root: Path) -> dict:
    return {f: make_tiny_model(f, Path(root) / f) for f in FAMILIES + EXTRA_FAMILIES}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_models.py OUT_DIR")
    for fam, path in make_all(Path(sys.argv[1])).items():
        print(fam, path)


# ---------------------------------------------------------------- sentence encoders (dense retrieval)

def make_bert_tokenizer(vocab_size: int = 400):
    """A deterministic BERT WordPiece `tokenizers.Tokenizer` (BertNormalizer, BertPreTokenizer,
    [CLS] $A [SEP]) trained on TEXT."""
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.train_from_iterator([line for line in TEXT.splitlines() if line] * 4, vocab_size=vocab_size,
                            min_frequency=1, show_progress=False)
    return tok._tokenizer


def make_tiny_bert(out_dir: Path, seed: int = 0, max_seq_length: int = 48, pooling: str = "mean",
                   normalize: bool = True) -> Path:
    """A tiny random sentence-transformers folder (BERT, 2 layers, hidden 32) in out_dir: config.json,
    model.safetensors, tokenizer.json, modules.json, 1_Pooling/config.json, sentence_bert_config.json."""
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = make_bert_tokenizer()
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=False)
    # Random weights that keep tokens apart: LayerNorm weights near 1 and small biases (large ones
    # would add one vector to every token and make all embeddings alike).
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    model.save_pretrained(out_dir)
    tok.save(str(out_dir / "tokenizer.json"))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (out_dir / "modules.json").write_text(json.dumps(modules, indent=2))
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    (out_dir / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (out_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length,
                                                                   "do_lower_case": False}))
    return out_dir
