"""--verify: the saved model.ts against transformers on the same weights.

Checks (ids: a seeded random [2, T] batch):
  forward:        model.ts forward(ids) vs transformers' logits, max abs difference;
  prefill+decode: prefill of the first half into a fresh cache, then decode token by token; each step's
                  logits vs transformers' logits at that position.
Tolerances (absolute, on logits): float32 1e-4. Half types compare against transformers run in the same
half type, where two correct implementations already differ by rounding (different SDPA kernels on the
cached path, bf16 has 8 significant bits): bfloat16 max(0.05, 2^-5 * max|logit|), float16
max(0.01, 2^-8 * max|logit|).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from .errors import ExportError
from .modeling import ours_to_hf_name
from .spec import ARCHITECTURES, ModelSpec


def tolerance(dtype: torch.dtype, max_abs_logit: float) -> float:
    if dtype == torch.float32:
        return 1e-4
    if dtype == torch.bfloat16:
        return max(0.05, max_abs_logit / 32.0)
    return max(0.01, max_abs_logit / 256.0)


def hf_reference(spec: ModelSpec, params: dict, device, dtype: torch.dtype):
    """A transformers model of `spec` whose weights are `params` (our names), without copying them."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        ref = AutoModelForCausalLM.from_config(spec.hf_config, dtype=dtype, attn_implementation="sdpa")
    state = {ours_to_hf_name(n): t for n, t in params.items() if n != "inv_freq"}
    if spec.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    missing, _ = ref.load_state_dict(state, strict=False, assign=True)
    missing = [m for m in missing if "rotary_emb" not in m]
    if missing:
        raise ExportError(f"verify: reference model lacks {missing[0]}")
    if spec.tie_word_embeddings:
        ref.lm_head.weight = ref.model.embed_tokens.weight
    _, module, cls = ARCHITECTURES[spec.architecture]
    rotary = getattr(importlib.import_module(module), cls)(config=spec.hf_config)
    ref.model.rotary_emb = rotary.to(device)
    for n, t in list(ref.named_parameters()) + list(ref.named_buffers()):
        if t.is_meta:
            raise ExportError(f"verify: reference tensor {n} was not set")
    return ref.eval()


@torch.no_grad()
def verify(model_ts: Path, spec: ModelSpec, dtype: torch.dtype, device: str, ref=None,
           seq_len: int = 24, seed: int = 0) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        ts = torch.jit.load(str(model_ts), map_location=device)
    if ref is None:
        ref = hf_reference(spec, dict(ts.named_parameters()), device, dtype)
    else:
        ref = ref.to(device)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, spec.vocab_size, (2, seq_len), generator=gen).to(device)
    want = ref(ids).logits.float()
    got = ts(ids).float()
    fwd = (got - want).abs().max().item()
    k, v = ts.new_cache(2, seq_len)
    half = seq_len // 2
    steps = [(ts.prefill(ids[:, :half], k, v, 0).float() - want[:, half - 1]).abs().max().item()]
    for p in range(half, seq_len):
        steps.append((ts.decode(ids[:, p:p + 1], k, v, p).float() - want[:, p]).abs().max().item())
    cached = max(steps)
    tol = tolerance(dtype, want.abs().max().item())
    ok = bool(fwd <= tol and cached <= tol and torch.isfinite(got).all().item())
    return {"forward_max_abs_diff": fwd, "prefill_decode_max_abs_diff": cached, "tolerance": tol, "ok": ok,
            "seq_len": seq_len, "device": device}
