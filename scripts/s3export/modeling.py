"""The TorchScript-able decoder that becomes `model.ts` (contract: docs/model-format.md).

One module covers Llama (incl. Llama-3.x / SmolLM2), Mistral and Qwen2: pre-norm decoder layers with
RMSNorm, rotary position embeddings, grouped-query attention through scaled_dot_product_attention and a
SwiGLU MLP. The numerics follow transformers 5.17 op for op:
  - RMSNorm: float32 variance and rsqrt, cast back to the activations' dtype, then times the weight;
  - RoPE: cos/sin computed in float32 from the float32 `inv_freq` buffer (already scaled by the
    rope-scaling rule at export time), times `attention_scaling`, cast to the activations' dtype, applied
    in that dtype (q * cos + rotate_half(q) * sin);
  - attention: SDPA with scale head_dim**-0.5; `enable_gqa` when no explicit mask is needed, otherwise the
    K/V heads are repeated (transformers does the same);
  - logits in the weights' dtype.

Glossary: B batch, T tokens of this call, S keys attended, Hq query heads, Hkv KV heads, D head_dim,
L layers, V vocabulary, H hidden size. Caches are [L, B, Hkv, max_len, D].

All control flow depends on Python ints (shapes, `start`, `pos`) only: no host synchronisation.
Parameter names are those of the Hugging Face checkpoint without the leading "model." (so
`layers.3.self_attn.q_proj.weight`, `lm_head.weight`), which keeps loading a plain rename.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spec import ModelSpec


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        var = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(var + self.eps)
        return self.weight * h.to(dtype)


def rotate_half(x: Tensor) -> Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(inv_freq: Tensor, start: int, length: int, scaling: float,
                 dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """cos/sin [length, D] for positions start..start+length-1 (float32 math, then `dtype`)."""
    pos = torch.arange(start, start + length, dtype=torch.int64, device=inv_freq.device)
    return rope_cos_sin_at(inv_freq, pos, scaling, dtype)


def rope_cos_sin_at(inv_freq: Tensor, pos: Tensor, scaling: float, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """cos/sin [N, D] for the positions held by the int64 tensor `pos` [N] (read on the device, never
    on the host): float32 math, then `dtype`."""
    freqs = torch.outer(pos.to(torch.float32), inv_freq.to(torch.float32))  # exact products, as HF's K=1 matmul
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * scaling
    sin = emb.sin() * scaling
    return cos.to(dtype), sin.to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [..., T, D] with cos/sin [T, D] broadcasting over the leading dims."""
    return (x * cos) + (rotate_half(x) * sin)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """[B, Hkv, S, D] -> [B, Hkv * n_rep, S, D] (each KV head repeated for its query group)."""
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None, :, :].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int):
        super().__init__()
        h, d = spec.hidden_size, spec.head_dim
        self.q_proj = nn.Linear(h, spec.n_heads * d, bias=spec.qkv_bias)
        self.k_proj = nn.Linear(h, spec.n_kv_heads * d, bias=spec.qkv_bias)
        self.v_proj = nn.Linear(h, spec.n_kv_heads * d, bias=spec.qkv_bias)
        self.o_proj = nn.Linear(spec.n_heads * d, h, bias=spec.o_bias)
        self.n_heads = spec.n_heads
        self.n_kv_heads = spec.n_kv_heads
        self.n_rep = spec.n_heads // spec.n_kv_heads
        self.head_dim = d
        self.scale = float(d) ** -0.5
        w = spec.sliding_windows[layer]
        self.window = int(w) if w is not None else 0  # 0: full causal attention

    def qk(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Pre-RoPE projections: q [B, T, Hq, D], k [B, T, Hkv, D]."""
        b, t = x.size(0), x.size(1)
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim)
        return q, k

    def v(self, x: Tensor) -> Tensor:
        b, t = x.size(0), x.size(1)
        return self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim)

    def sdpa(self, q: Tensor, k: Tensor, v: Tensor, q_start: int, k_start: int) -> Tensor:
        """Causal (and sliding-window) attention of q [B, Hq, T, D] at positions q_start.. over
        k/v [B, Hkv, S, D] at positions k_start..; every key position is <= the last query position."""
        t = q.size(2)
        s = k.size(2)
        q_last = q_start + t - 1
        # The window hides keys at positions <= q - window; it matters only if the first key is that old.
        window_active = self.window > 0 and k_start <= q_last - self.window
        if t == 1 and not window_active:
            # One query sees every key handed in (the caller passes exactly 0..pos or the window).
            return F.scaled_dot_product_attention(q, k, v, scale=self.scale, enable_gqa=self.n_rep > 1)
        if q_start == k_start and s == t and not window_active:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale,
                                                  enable_gqa=self.n_rep > 1)
        qpos = torch.arange(q_start, q_start + t, device=q.device)[:, None]
        kpos = torch.arange(k_start, k_start + s, device=q.device)[None, :]
        mask = kpos <= qpos
        if self.window > 0:
            mask = mask & (kpos > qpos - self.window)
        return F.scaled_dot_product_attention(q, repeat_kv(k, self.n_rep), repeat_kv(v, self.n_rep),
                                              attn_mask=mask, scale=self.scale)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, cos: Tensor, sin: Tensor,
               k_cache: Optional[Tensor], v_cache: Optional[Tensor], start: int) -> Tensor:
        """q/k/v pre-RoPE [B, T, H*, D] at positions start..start+T-1 -> attention output [B, T, H].
        With caches ([B, Hkv, max_len, D] views of one layer), K/V are written at start..start+T-1 and
        attention covers 0..start+T-1 (or the sliding window)."""
        b, t = q.size(0), q.size(1)
        q = apply_rope(q.transpose(1, 2), cos, sin)
        k = apply_rope(k.transpose(1, 2), cos, sin)
        v = v.transpose(1, 2)
        if k_cache is not None and v_cache is not None:
            k_cache.narrow(2, start, t).copy_(k)
            v_cache.narrow(2, start, t).copy_(v)
            lo = 0
            if self.window > 0 and start - self.window + 1 > 0:
                lo = start - self.window + 1  # older keys are outside every query's window
            keys = k_cache.narrow(2, lo, start + t - lo)
            values = v_cache.narrow(2, lo, start + t - lo)
            out = self.sdpa(q, keys, values, start, lo)
        else:
            out = self.sdpa(q, k, v, start, start)
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.o_proj(out)


    def attend_at(self, q: Tensor, k: Tensor, v: Tensor, cos: Tensor, sin: Tensor, k_cache: Tensor,
                  v_cache: Tensor, pos: Tensor) -> Tensor:
        """One token per row ([B, 1, H*, D] pre-RoPE) at the positions in the int64 tensor `pos` [B]
        (rows may be at different positions: batched generation of prompts of different lengths).
        No shape depends on the positions: K/V are scattered into the cache and each query attends
        to the whole cache under a mask (keys 0..pos, or the sliding window), so the same kernels run
        at every step and one CUDA graph serves a whole generation. The n_rep query heads of a KV
        group are laid out as n_rep query rows of that group, which needs no repeated K/V.
        cos/sin: [B, D]."""
        b = q.size(0)
        cos = cos.view(b, 1, 1, self.head_dim)
        sin = sin.view(b, 1, 1, self.head_dim)
        q = apply_rope(q.transpose(1, 2), cos, sin)  # [B, Hq, 1, D]
        k = apply_rope(k.transpose(1, 2), cos, sin)  # [B, Hkv, 1, D]
        where = pos.view(b, 1, 1, 1).expand(b, self.n_kv_heads, 1, self.head_dim)
        k_cache.scatter_(2, where, k)
        v_cache.scatter_(2, where, v.transpose(1, 2))
        kpos = torch.arange(k_cache.size(2), device=q.device).view(1, -1)
        qpos = pos.view(b, 1)
        mask = kpos <= qpos
        if self.window > 0:
            mask = mask & (kpos > qpos - self.window)
        grouped = q.reshape(b, self.n_kv_heads, self.n_rep, self.head_dim)
        out = F.scaled_dot_product_attention(grouped, k_cache, v_cache, attn_mask=mask.view(b, 1, 1, -1),
                                             scale=self.scale)
        return self.o_proj(out.reshape(b, 1, self.n_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        h, i = spec.hidden_size, spec.intermediate_size
        self.gate_proj = nn.Linear(h, i, bias=spec.mlp_bias)
        self.up_proj = nn.Linear(h, i, bias=spec.mlp_bias)
        self.down_proj = nn.Linear(i, h, bias=spec.mlp_bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int):
        super().__init__()
        self.self_attn = Attention(spec, layer)
        self.mlp = MLP(spec)
        self.input_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)

    def finish(self, h: Tensor, q: Tensor, k: Tensor, v: Tensor, cos: Tensor, sin: Tensor,
               k_cache: Optional[Tensor], v_cache: Optional[Tensor], start: int) -> Tensor:
        """The rest of the layer once the (pre-RoPE) projections of its normed input are known."""
        h = h + self.self_attn.attend(q, k, v, cos, sin, k_cache, v_cache, start)
        return h + self.mlp(self.post_attention_layernorm(h))

    def forward(self, h: Tensor, cos: Tensor, sin: Tensor, k_cache: Optional[Tensor],
                v_cache: Optional[Tensor], start: int) -> Tensor:
        x = self.input_layernorm(h)
        q, k = self.self_attn.qk(x)
        return self.finish(h, q, k, self.self_attn.v(x), cos, sin, k_cache, v_cache, start)


    def step_at(self, h: Tensor, cos: Tensor, sin: Tensor, k_cache: Tensor, v_cache: Tensor, pos: Tensor) -> Tensor:
        """forward() for one token at the position held by the tensor `pos` (Attention.attend_at)."""
        x = self.input_layernorm(h)
        q, k = self.self_attn.qk(x)
        h = h + self.self_attn.attend_at(q, k, self.self_attn.v(x), cos, sin, k_cache, v_cache, pos)
        return h + self.mlp(self.post_attention_layernorm(h))


class TiedHead(nn.Module):
    """LM head that reuses the input embedding (tie_word_embeddings)."""

    def forward(self, h: Tensor, embed: Tensor) -> Tensor:
        return F.linear(h, embed)


class LMHead(nn.Module):
    def __init__(self, hidden: int, vocab: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab, hidden))

    def forward(self, h: Tensor, embed: Tensor) -> Tensor:
        return F.linear(h, self.weight)


class Decoder(nn.Module):
    """forward / tap / new_cache / prefill / decode: see docs/model-format.md."""

    def __init__(self, spec: ModelSpec, inv_freq: Tensor, attention_scaling: float):
        super().__init__()
        self.embed_tokens = nn.Embedding(spec.vocab_size, spec.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(spec, i) for i in range(spec.n_layers)])
        self.norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.lm_head = TiedHead() if spec.tie_word_embeddings else LMHead(spec.hidden_size, spec.vocab_size)
        # float32 whatever the weights' dtype; the C++ runtime converts parameters only.
        self.register_buffer("inv_freq", inv_freq.to(torch.float32).clone(), persistent=True)
        self.attention_scaling = float(attention_scaling)
        self.n_layers = spec.n_layers
        self.n_kv_heads = spec.n_kv_heads
        self.head_dim = spec.head_dim

    def _embed(self, input_ids: Tensor) -> Tensor:
        if input_ids.dim() != 2:
            raise RuntimeError("input_ids must be [B, T] int64")
        if input_ids.size(1) == 0:
            raise RuntimeError("input_ids has no tokens")
        return self.embed_tokens(input_ids)

    def forward(self, input_ids: Tensor) -> Tensor:
        """input_ids [B, T] -> logits [B, T, V] at positions 0..T-1, no cache."""
        h = self._embed(input_ids)
        cos, sin = rope_cos_sin(self.inv_freq, 0, input_ids.size(1), self.attention_scaling, h.dtype)
        for layer in self.layers:
            h = layer(h, cos, sin, None, None, 0)
        return self.lm_head(self.norm(h), self.embed_tokens.weight)

    @torch.jit.export
    def tap(self, input_ids: Tensor, layers: List[int], rope: bool) -> List[Tuple[Tensor, Tensor]]:
        """Per requested layer (in the order given): q [B, T, Hq, D] and k [B, T, Hkv, D], the q/k
        projections (with bias) of the layer's normed input, pre-RoPE unless `rope` (positions 0..T-1).
        Runs layers 0..max(layers) only (the last one up to its q/k projections); never the LM head."""
        if len(layers) == 0:
            raise RuntimeError("tap: no layers requested")
        last = -1
        for l in layers:
            if l < 0 or l >= self.n_layers:
                raise RuntimeError("tap: layer index out of range")
            if l > last:
                last = l
        h = self._embed(input_ids)
        cos, sin = rope_cos_sin(self.inv_freq, 0, input_ids.size(1), self.attention_scaling, h.dtype)
        # cos/sin as [T, 1, D] for the [B, T, H, D] layout of the taps.
        cos_t = cos.unsqueeze(1)
        sin_t = sin.unsqueeze(1)
        found: Dict[int, Tuple[Tensor, Tensor]] = {}
        for i, layer in enumerate(self.layers):
            if i <= last:
                x = layer.input_layernorm(h)
                q, k = layer.self_attn.qk(x)
                if i in layers:
                    if rope:
                        found[i] = (apply_rope(q, cos_t, sin_t), apply_rope(k, cos_t, sin_t))
                    else:
                        found[i] = (q, k)
                if i < last:
                    h = layer.finish(h, q, k, layer.self_attn.v(x), cos, sin, None, None, 0)
        return [found[l] for l in layers]

    @torch.jit.export
    def new_cache(self, batch: int, max_len: int) -> Tuple[Tensor, Tensor]:
        """Zeroed (k_cache, v_cache), each [L, B, Hkv, max_len, D], on the weights' device and dtype."""
        if batch <= 0 or max_len <= 0:
            raise RuntimeError("new_cache: batch and max_len must be positive")
        w = self.embed_tokens.weight
        shape = [self.n_layers, batch, self.n_kv_heads, max_len, self.head_dim]
        return (torch.zeros(shape, dtype=w.dtype, device=w.device),
                torch.zeros(shape, dtype=w.dtype, device=w.device))

    @torch.jit.export
    def prefill(self, input_ids: Tensor, k_cache: Tensor, v_cache: Tensor, start: int) -> Tensor:
        """input_ids [B, T] at positions start..start+T-1 -> logits [B, V] of the last position.
        Writes their K/V into the caches in place; attention covers 0..start+T-1."""
        t = input_ids.size(1) if input_ids.dim() == 2 else 0
        if k_cache.dim() != 5 or v_cache.dim() != 5 or k_cache.size(0) != self.n_layers:
            raise RuntimeError("prefill: caches must be [L, B, Hkv, max_len, D] from new_cache")
        if start < 0 or start + t > k_cache.size(3):
            raise RuntimeError("prefill: start + tokens exceeds the cache length")
        if input_ids.dim() == 2 and input_ids.size(0) != k_cache.size(1):
            raise RuntimeError("prefill: batch of input_ids and cache differ")
        h = self._embed(input_ids)
        cos, sin = rope_cos_sin(self.inv_freq, start, t, self.attention_scaling, h.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, k_cache[i], v_cache[i], start)
        h = self.norm(h[:, t - 1:, :])
        return self.lm_head(h, self.embed_tokens.weight)[:, 0, :]

    @torch.jit.export
    def decode(self, token: Tensor, k_cache: Tensor, v_cache: Tensor, pos: int) -> Tensor:
        """token [B, 1] at position `pos` -> logits [B, V]; the one-token case of prefill."""
        if token.dim() != 2 or token.size(1) != 1:
            raise RuntimeError("decode: token must be [B, 1]")
        return self.prefill(token, k_cache, v_cache, pos)


    @torch.jit.export
    def decode_at(self, token: Tensor, k_cache: Tensor, v_cache: Tensor, pos: Tensor) -> Tensor:
        """decode() with each row's position in an int64 tensor [B] on the model's device (rows may
        differ): shapes and kernels do not depend on the positions, so a CUDA graph captured once
        replays every step."""
        if token.dim() != 2 or token.size(1) != 1:
            raise RuntimeError("decode_at: token must be [B, 1]")
        if k_cache.dim() != 5 or v_cache.dim() != 5 or k_cache.size(0) != self.n_layers:
            raise RuntimeError("decode_at: caches must be [L, B, Hkv, max_len, D] from new_cache")
        if pos.dim() != 1 or pos.size(0) != token.size(0):
            raise RuntimeError("decode_at: pos must be an int64 tensor with one position per row")
        h = self._embed(token)
        cos, sin = rope_cos_sin_at(self.inv_freq, pos, self.attention_scaling, h.dtype)
        for i, layer in enumerate(self.layers):
            h = layer.step_at(h, cos, sin, k_cache[i], v_cache[i], pos)
        return self.lm_head(self.norm(h), self.embed_tokens.weight)[:, 0, :]


def hf_name_to_ours(name: str) -> str:
    return name[len("model."):] if name.startswith("model.") else name


def ours_to_hf_name(name: str) -> str:
    return name if name.startswith("lm_head.") else "model." + name


def build_decoder(spec: ModelSpec, device: torch.device | str = "cpu") -> Decoder:
    """A Decoder whose parameters live on the meta device (fill with `load_weights` or `random_init`),
    with the float32 inv_freq buffer computed by transformers' rope code on `device`."""
    inv_freq, scaling = spec.rope_inv_freq()
    with torch.device("meta"):
        model = Decoder(spec, torch.zeros_like(inv_freq, device="meta"), scaling)
    model.inv_freq = inv_freq.to(device=device, dtype=torch.float32)
    return model


def load_weights(model: Decoder, hf_state: Dict[str, Tensor], spec: ModelSpec) -> None:
    """Assign Hugging Face tensors (names with or without "model.") to the meta-initialised model, without
    copying. Missing or unexpected-shaped tensors are errors."""
    from .errors import ExportError

    ours = {}
    for name, t in hf_state.items():
        n = hf_name_to_ours(name)
        if spec.tie_word_embeddings and n == "lm_head.weight":
            continue  # transformers ties it to the embedding
        if "rotary_emb" in n:
            continue
        ours[n] = t
    expected = dict(model.named_parameters())
    missing = [n for n in expected if n not in ours]
    if missing:
        raise ExportError(f"checkpoint lacks {len(missing)} tensors, e.g. {ours_to_hf_name(missing[0])}")
    for n, p in expected.items():
        if tuple(ours[n].shape) != tuple(p.shape):
            raise ExportError(f"tensor {ours_to_hf_name(n)} has shape {tuple(ours[n].shape)}, "
                              f"config implies {tuple(p.shape)}")
    inv = model.inv_freq
    model.load_state_dict({**{n: ours[n] for n in expected}, "inv_freq": inv}, strict=True, assign=True)


@torch.no_grad()
def random_init(model: Decoder, dtype: torch.dtype, device: torch.device | str, std: float = 0.02,
                seed: int = 0) -> None:
    """Fill a meta-initialised model directly on `device` in `dtype`: N(0, std) matrices and
    embeddings, zero biases, unit norms (transformers' own init scheme)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    state = {}
    for name, p in model.named_parameters():
        t = torch.empty(p.shape, dtype=dtype, device=device)
        if name.endswith("layernorm.weight") or name == "norm.weight":
            t.fill_(1.0)
        elif name.endswith(".bias"):
            t.zero_()
        else:
            t.normal_(0.0, std, generator=gen)
        state[name] = t
    state["inv_freq"] = model.inv_freq
    model.load_state_dict(state, strict=True, assign=True)


def script(model: Decoder) -> torch.jit.ScriptModule:
    import warnings

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with warnings.catch_warnings():
        # TorchScript is deprecated upstream but it is what the C++ runtime loads.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        return torch.jit.script(model)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

