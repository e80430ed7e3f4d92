"""What the exporter needs to know about a model, read from a Hugging Face config; the only place that
knows which families are supported."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import ExportError

# HF class name -> (family, transformers module, rotary class)
ARCHITECTURES = {
    "LlamaForCausalLM": ("llama", "transformers.models.llama.modeling_llama", "LlamaRotaryEmbedding"),
    "MistralForCausalLM": ("mistral", "transformers.models.mistral.modeling_mistral", "MistralRotaryEmbedding"),
    "Qwen2ForCausalLM": ("qwen2", "transformers.models.qwen2.modeling_qwen2", "Qwen2RotaryEmbedding"),
}
FAMILY_ARCH = {v[0]: k for k, v in ARCHITECTURES.items()}
SUPPORTED_TEXT = ("LlamaForCausalLM (Llama 2/3.x, SmolLM2), MistralForCausalLM, Qwen2ForCausalLM "
                  "(Qwen2/Qwen2.5)")
# Rope types whose frequencies do not depend on the sequence length: exact as a fixed inv_freq buffer.
SUPPORTED_ROPE = ("default", "linear", "llama3", "yarn")


def unsupported(what: str) -> ExportError:
    return ExportError(f"unsupported architecture {what}; supported: {SUPPORTED_TEXT}")


def check_config_dict(d: Any, where: str) -> str:
    """Validates the architecture of a raw config.json dict; returns the HF class name."""
    if not isinstance(d, dict):
        raise ExportError(f"{where}: not a JSON object")
    archs = d.get("architectures")
    if archs:
        if not isinstance(archs, list) or len(archs) != 1 or archs[0] not in ARCHITECTURES:
            raise unsupported(", ".join(map(str, archs)) if isinstance(archs, list) else str(archs))
        arch = archs[0]
        if d.get("model_type") not in (None, ARCHITECTURES[arch][0]):
            raise unsupported(f"{arch} with model_type {d.get('model_type')!r}")
        return arch
    mt = d.get("model_type")
    if mt is None:
        raise ExportError(f"{where}: neither 'architectures' nor 'model_type' is set")
    if mt not in FAMILY_ARCH:
        raise unsupported(f"model_type {mt!r}")
    return FAMILY_ARCH[mt]


def read_config_json(path: Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as e:
        raise ExportError(f"{path}: cannot read ({e})")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})")
    check_config_dict(d, str(path))
    return d


def config_from_dict(d: dict):
    """An HF PretrainedConfig of the right class from a config.json dict (validated)."""
    from transformers import AutoConfig

    arch = check_config_dict(d, "config")
    family = ARCHITECTURES[arch][0]
    d = dict(d)
    d.pop("model_type", None)
    d.setdefault("architectures", [arch])
    try:
        return AutoConfig.for_model(family, **d)
    except Exception as e:  # transformers validates values (e.g. rope parameters)
        raise ExportError(f"invalid {family} config: {e}".splitlines()[0])


def _ids(v) -> list[int]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v if x is not None]
    return [int(v)]


@dataclass
class ModelSpec:
    family: str
    architecture: str
    n_layers: int
    hidden_size: int
    intermediate_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    rope_theta: float
    rope_scaling: Optional[dict]
    rms_norm_eps: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    sliding_windows: list = field(default_factory=list)  # per layer: window (int) or None
    bos_token_id: Optional[int] = None
    eos_token_ids: list = field(default_factory=list)
    pad_token_id: Optional[int] = None
    hf_config: Any = None

    @property
    def sliding_window(self) -> Optional[int]:
        ws = [w for w in self.sliding_windows if w]
        return ws[0] if ws else None

    def rope_inv_freq(self):
        """(float32 inv_freq [D/2], attention_scaling) computed by transformers' own rotary module."""
        import torch

        _, module, cls = ARCHITECTURES[self.architecture]
        rotary = getattr(importlib.import_module(module), cls)(config=self.hf_config)
        return rotary.inv_freq.detach().to(torch.float32).cpu().clone(), float(rotary.attention_scaling)


def spec_from_config(config) -> ModelSpec:
    """Validates an HF config object and extracts the facts the decoder and model.json need."""
    archs = getattr(config, "architectures", None) or [FAMILY_ARCH.get(config.model_type, config.model_type)]
    arch = archs[0]
    if arch not in ARCHITECTURES or ARCHITECTURES[arch][0] != config.model_type:
        raise unsupported(f"{arch} (model_type {config.model_type!r})")
    family = ARCHITECTURES[arch][0]

    act = getattr(config, "hidden_act", "silu")
    if act != "silu":
        raise ExportError(f"unsupported hidden_act {act!r} (only silu / SwiGLU)")
    n_heads = int(config.num_attention_heads)
    n_kv = int(getattr(config, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // n_heads)
    if n_heads % n_kv != 0:
        raise ExportError(f"num_attention_heads {n_heads} is not a multiple of num_key_value_heads {n_kv}")
    if head_dim % 2 != 0:
        raise ExportError(f"head_dim {head_dim} must be even for rotary embeddings")

    rp = dict(getattr(config, "rope_parameters", None) or {})
    if not rp:
        rp = dict(getattr(config, "rope_scaling", None) or {})
        rp.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    rope_type = rp.get("rope_type", rp.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE:
        raise ExportError(f"unsupported rope_type {rope_type!r}; supported: {', '.join(SUPPORTED_ROPE)} "
                          "(sequence-length dependent rope such as dynamic/longrope cannot be a fixed buffer)")
    if float(rp.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", 1.0)) or 1.0) != 1.0:
        raise ExportError("partial_rotary_factor != 1 is not supported")
    rope_scaling = None if rope_type == "default" else {k: v for k, v in rp.items() if k != "rope_theta"}

    n_layers = int(config.num_hidden_layers)
    if family == "mistral":
        windows = [getattr(config, "sliding_window", None)] * n_layers
    elif family == "qwen2":
        types = getattr(config, "layer_types", None) or ["full_attention"] * n_layers
        windows = [config.sliding_window if t == "sliding_attention" else None for t in types]
    else:
        windows = [None] * n_layers
    windows = [int(w) if w else None for w in windows]

    if family == "llama":
        qkv_bias = o_bias = bool(getattr(config, "attention_bias", False))
        mlp_bias = bool(getattr(config, "mlp_bias", False))
    elif family == "qwen2":
        qkv_bias, o_bias, mlp_bias = True, False, False
    else:
        qkv_bias = o_bias = mlp_bias = False

    tie = bool(getattr(config, "tie_word_embeddings", False))
    return ModelSpec(
        family=family, architecture=arch, n_layers=n_layers, hidden_size=int(config.hidden_size),
        intermediate_size=int(config.intermediate_size), n_heads=n_heads, n_kv_heads=n_kv,
        head_dim=head_dim, vocab_size=int(config.vocab_size), rope_theta=float(rp.get("rope_theta", 10000.0)),
        rope_scaling=rope_scaling, rms_norm_eps=float(config.rms_norm_eps),
        max_position_embeddings=int(config.max_position_embeddings), tie_word_embeddings=tie,
        qkv_bias=qkv_bias, o_bias=o_bias, mlp_bias=mlp_bias, sliding_windows=windows,
        bos_token_id=getattr(config, "bos_token_id", None), eos_token_ids=_ids(getattr(config, "eos_token_id", None)),
        pad_token_id=getattr(config, "pad_token_id", None), hf_config=config)
