"""model.json (format_version 1, docs/model-format.md)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Optional

import torch

from .spec import ModelSpec

FORMAT_VERSION = 1
TAP_FRACTIONS = (0.0, 0.375, 0.5, 0.9)  # docs/method.md §1, "Tapped layers"


def default_taps(n_layers: int) -> list[int]:
    """round({0, 0.375, 0.5, 0.9} * n_layers) (halves up), clamped to the last layer, distinct, sorted.
    32 layers -> [0, 12, 16, 29] (the paper's Llama-3.1-8B choice); 30 -> [0, 11, 15, 27]."""
    return sorted({min(n_layers - 1, int(math.floor(f * n_layers + 0.5))) for f in TAP_FRACTIONS})


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def weights_fingerprint(model, spec) -> str:
    """sha256 over the architecture facts and every parameter (name, dtype, shape, bytes): the same
    weights give the same fingerprint wherever and however they are exported, unlike a hash of the
    TorchScript archive, whose bytes depend on the Python and torch that wrote it."""
    import torch

    h = hashlib.sha256()
    facts = [spec.family, spec.n_layers, spec.hidden_size, spec.intermediate_size, spec.n_heads, spec.n_kv_heads,
             spec.head_dim, spec.vocab_size, spec.rope_theta, spec.rope_scaling, spec.rms_norm_eps,
             spec.tie_word_embeddings, spec.qkv_bias]
    h.update(json.dumps(facts, sort_keys=True, default=str).encode())
    for name, p in sorted(model.state_dict().items()):
        t = p.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        raw = t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t
        h.update(raw.numpy().tobytes())
    return h.hexdigest()


def _first(*values):
    for v in values:
        if v is not None:
            return v
    return None


def build_model_json(spec: ModelSpec, dtype: torch.dtype, source: dict, tok_facts: dict,
                     generation_eos: list[int], fingerprint: str) -> dict:
    import transformers

    stop = set(spec.eos_token_ids) | set(generation_eos)
    if tok_facts.get("eos_token_id") is not None:
        stop.add(int(tok_facts["eos_token_id"]))
    eos = _first(spec.eos_token_ids[0] if spec.eos_token_ids else None, tok_facts.get("eos_token_id"))
    windows = spec.sliding_windows
    return {
        "format": "s3attn-model",
        "format_version": FORMAT_VERSION,
        "family": spec.family,
        "architecture": spec.architecture,
        "source": source,
        "dtype": str(dtype).replace("torch.", ""),
        "n_layers": spec.n_layers,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "n_heads": spec.n_heads,
        "n_kv_heads": spec.n_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "rope_theta": spec.rope_theta,
        "rope_scaling": spec.rope_scaling,
        "rms_norm_eps": spec.rms_norm_eps,
        "max_position_embeddings": spec.max_position_embeddings,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "attention_bias": spec.qkv_bias,
        "sliding_window": spec.sliding_window,
        "sliding_window_layers": [i for i, w in enumerate(windows) if w],
        "bos_token_id": _first(spec.bos_token_id, tok_facts.get("bos_token_id")),
        "eos_token_id": eos,
        "pad_token_id": _first(spec.pad_token_id, tok_facts.get("pad_token_id")),
        "stop_token_ids": sorted(stop),
        "add_bos_token": bool(tok_facts.get("add_bos_token", False)),
        "bos_token": tok_facts.get("bos_token"),
        "chat_template": tok_facts.get("chat_template"),
        "default_taps": default_taps(spec.n_layers),
        "fingerprint": fingerprint,
        "exporter": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__},
    }


def model_json_summary(meta: dict) -> str:
    return (f"{meta['architecture']} {meta['n_layers']} layers, hidden {meta['hidden_size']}, heads "
            f"{meta['n_heads']}/{meta['n_kv_heads']}, vocab {meta['vocab_size']}, {meta['dtype']}")


def source_info(kind: str, path: Optional[Path]) -> dict:
    return {"kind": kind, "path": str(Path(path).resolve()) if path is not None else None}
