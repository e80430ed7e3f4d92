"""--verify: the saved model.ts against transformers on the same weights.

Checks (ids: a seeded random [2, T] batch, T = 24):
  forward:        model.ts forward(ids) vs transformers' forward logits, max abs difference;
  prefill+decode: prefill of the first half into a fresh cache, then decode token by token, vs
                  transformers' own cached path (DynamicCache) step for step;
  float32 also:   those prefill+decode logits vs transformers' forward logits at the same positions, within
                  max(1e-4, 2 x the difference between transformers' own cached and forward logits) (its
                  own is already 6.6e-5 on SmolLM2-135M, whose logits reach 33).
Tolerances (absolute, on logits): float32 1e-4. Half types run transformers in the same half type; the
like-for-like comparisons are usually exact (0 on an H200 in bf16), but a cached path and an uncached one
differ by rounding (transformers' own differ by ~0.16 on a random 8-layer Llama-3.1-8B shape in bf16), so
the limits are loose: bfloat16 max(0.05, max|logit| / 32), float16 max(0.01, max|logit| / 256).
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


def cuda_runtime_settings() -> None:
    """The CUDA settings docs/model-format.md recommends for decode: no cuDNN SDPA (it builds a new graph
    for every new key length, ~8 ms per layer call) and no TorchScript graph-executor optimisation (the
    profiling executor re-specialises, for seconds, on every new sequence length)."""
    torch.backends.cuda.enable_cudnn_sdp(False)
    torch._C._set_graph_executor_optimize(False)


def hf_cached_logits(ref, ids: torch.Tensor, half: int) -> list:
    """transformers' own cached path: prefill ids[:, :half], then one token at a time (DynamicCache)."""
    out = ref(ids[:, :half], use_cache=True)
    pkv, steps = out.past_key_values, [out.logits[:, -1].float()]
    for p in range(half, ids.size(1)):
        out = ref(ids[:, p:p + 1], past_key_values=pkv, use_cache=True)
        pkv = out.past_key_values
        steps.append(out.logits[:, -1].float())
    return steps


@torch.no_grad()
def verify(model_ts: Path, spec: ModelSpec, dtype: torch.dtype, device: str, ref=None,
           seq_len: int = 24, seed: int = 0) -> dict:
    import warnings

    if device == "cuda":
        cuda_runtime_settings()
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
    ours = [ts.prefill(ids[:, :half], k, v, 0).float()]
    ours += [ts.decode(ids[:, p:p + 1], k, v, p).float() for p in range(half, seq_len)]
    theirs = hf_cached_logits(ref, ids, half)
    cached = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    positions = range(half - 1, seq_len)
    vs_forward = max((a - want[:, p]).abs().max().item() for a, p in zip(ours, positions))
    hf_self = max((b - want[:, p]).abs().max().item() for b, p in zip(theirs, positions))
    tol = tolerance(dtype, want.abs().max().item())
    ok = fwd <= tol and cached <= tol and bool(torch.isfinite(got).all().item())
    if dtype == torch.float32:
        ok = ok and vs_forward <= max(tol, 2 * hf_self)
    return {"forward_max_abs_diff": fwd, "prefill_decode_max_abs_diff": cached,
            "prefill_decode_vs_forward_max_abs_diff": vs_forward,
            "transformers_cached_vs_forward_max_abs_diff": hf_self, "tolerance": tol, "ok": bool(ok),
            "seq_len": seq_len, "device": device}


@torch.no_grad()
def verify_text(model_ts: Path, spec: ModelSpec, dtype: torch.dtype, device: str, ids: list, ref=None) -> dict:
    """model.ts against transformers on the same weights over real text (one sequence of `ids`): the
    share of positions whose top-1 token agrees, and the max / mean absolute logit difference."""
    import warnings

    if device == "cuda":
        cuda_runtime_settings()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        ts = torch.jit.load(str(model_ts), map_location=device)
    if ref is None:
        ref = hf_reference(spec, dict(ts.named_parameters()), device, dtype)
    else:
        ref = ref.to(device)
    x = torch.tensor([ids], dtype=torch.long, device=device)
    want = ref(x).logits.float()[0]
    got = ts(x).float()[0]
    diff = (got - want).abs()
    agree = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
    # Where the two disagree on top-1, how close were transformers' own top two (a near-tie flips on rounding)?
    top2 = want.topk(2, dim=-1).values
    flips = (got.argmax(-1) != want.argmax(-1))
    margin = (top2[:, 0] - top2[:, 1])[flips].max().item() if bool(flips.any()) else 0.0
    return {"tokens": len(ids), "top1_agreement": agree, "max_abs_diff": diff.max().item(),
            "mean_abs_diff": diff.mean().item(), "max_abs_logit": want.abs().max().item(),
            "largest_flipped_margin": margin, "device": device, "dtype": str(dtype).replace("torch.", "")}
