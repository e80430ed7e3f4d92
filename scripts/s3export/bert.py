"""The TorchScript-able sentence encoder that becomes an embedding model's `model.ts`
(contract: docs/model-format.md, "Embedding model directory").

A BERT encoder (absolute position embeddings, post-norm layers, exact GELU) followed by mean pooling
over the attention mask and L2 normalisation, i.e. sentence-transformers' Transformer + Pooling(mean)
+ Normalize modules in one forward. The numerics follow transformers 5.17's BertModel op for op
(LayerNorm, SDPA with the padding mask, scale head_dim**-0.5); pooling is computed in float32 and the
embedding is returned in float32 whatever the weights' dtype.

Parameter names are transformers' BertModel names (`embeddings.word_embeddings.weight`,
`encoder.layer.3.attention.self.query.weight`, ...) without the pooler, which mean pooling never uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class BertSpec:
    vocab_size: int
    hidden_size: int
    n_layers: int
    n_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @staticmethod
    def from_config(config) -> "BertSpec":
        from .errors import ExportError

        model_type = getattr(config, "model_type", None)
        if model_type != "bert":
            raise ExportError(f"unsupported embedding architecture '{model_type}'; supported: bert")
        if getattr(config, "hidden_act", "gelu") != "gelu":
            raise ExportError(f"unsupported hidden_act '{config.hidden_act}' (supported: gelu)")
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ExportError(f"unsupported position_embedding_type '{config.position_embedding_type}' "
                              "(supported: absolute)")
        if config.hidden_size % config.num_attention_heads:
            raise ExportError("hidden_size is not a multiple of num_attention_heads")
        return BertSpec(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                        n_layers=config.num_hidden_layers, n_heads=config.num_attention_heads,
                        intermediate_size=config.intermediate_size,
                        max_position_embeddings=config.max_position_embeddings,
                        type_vocab_size=config.type_vocab_size, layer_norm_eps=float(config.layer_norm_eps))


class Embeddings(nn.Module):
    def __init__(self, spec: BertSpec):
        super().__init__()
        self.word_embeddings = nn.Embedding(spec.vocab_size, spec.hidden_size)
        self.position_embeddings = nn.Embedding(spec.max_position_embeddings, spec.hidden_size)
        self.token_type_embeddings = nn.Embedding(spec.type_vocab_size, spec.hidden_size)
        self.LayerNorm = nn.LayerNorm(spec.hidden_size, eps=spec.layer_norm_eps)

    def forward(self, input_ids: Tensor) -> Tensor:
        t = input_ids.size(1)
        positions = torch.arange(t, device=input_ids.device)
        h = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        h = h + self.position_embeddings(positions)
        return self.LayerNorm(h)


class SelfAttention(nn.Module):
    def __init__(self, spec: BertSpec):
        super().__init__()
        h = spec.hidden_size
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.n_heads = spec.n_heads
        self.head_dim = h // spec.n_heads
        self.scale = float(self.head_dim) ** -0.5

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, T, H], mask [B, 1, 1, T] (True = attend) -> [B, T, H]."""
        b, t = x.size(0), x.size(1)
        q = self.query(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.key(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.value(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)


class DenseNorm(nn.Module):
    """`dense` then residual add and LayerNorm (BertSelfOutput / BertOutput)."""

    def __init__(self, d_in: int, d_out: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, spec: BertSpec):
        super().__init__()
        self.self = SelfAttention(spec)
        self.output = DenseNorm(spec.hidden_size, spec.hidden_size, spec.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, spec: BertSpec):
        super().__init__()
        self.dense = nn.Linear(spec.hidden_size, spec.intermediate_size)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, spec: BertSpec):
        super().__init__()
        self.attention = Attention(spec)
        self.intermediate = Intermediate(spec)
        self.output = DenseNorm(spec.intermediate_size, spec.hidden_size, spec.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.attention(x, mask)
        return self.output(self.intermediate(h), h)


class Encoder(nn.Module):
    def __init__(self, spec: BertSpec):
        super().__init__()
        self.layer = nn.ModuleList([Layer(spec) for _ in range(spec.n_layers)])

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class SentenceEncoder(nn.Module):
    """forward(input_ids [B, T] int64, attention_mask [B, T] int64) -> embeddings [B, H] float32:
    the mean of the last hidden states over the positions the mask marks, L2-normalised."""

    def __init__(self, spec: BertSpec):
        super().__init__()
        self.embeddings = Embeddings(spec)
        self.encoder = Encoder(spec)
        self.max_positions = spec.max_position_embeddings

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise RuntimeError("input_ids and attention_mask must both be [B, T]")
        if input_ids.size(1) == 0 or input_ids.size(1) > self.max_positions:
            raise RuntimeError("the sequence length must be between 1 and max_position_embeddings")
        keep = attention_mask > 0
        h = self.encoder(self.embeddings(input_ids), keep[:, None, None, :])
        weights = keep.to(torch.float32).unsqueeze(-1)
        summed = (h.to(torch.float32) * weights).sum(dim=1)
        mean = summed / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(mean, p=2.0, dim=1)


def hf_state_to_ours(state: dict) -> dict:
    """transformers' BertModel state dict (with or without the `bert.` prefix) -> our names."""
    out = {}
    for name, t in state.items():
        n = name[len("bert."):] if name.startswith("bert.") else name
        if n.startswith("pooler.") or n.endswith("position_ids") or n.endswith("token_type_ids"):
            continue
        out[n] = t
    return out


def build(spec: BertSpec, state: dict) -> SentenceEncoder:
    from .errors import ExportError

    with torch.device("meta"):
        model = SentenceEncoder(spec)
    ours = hf_state_to_ours(state)
    expected = dict(model.named_parameters())
    missing = [n for n in expected if n not in ours]
    if missing:
        raise ExportError(f"checkpoint lacks {len(missing)} tensors, e.g. {missing[0]}")
    for n, p in expected.items():
        if tuple(ours[n].shape) != tuple(p.shape):
            raise ExportError(f"tensor {n} has shape {tuple(ours[n].shape)}, config implies {tuple(p.shape)}")
    model.load_state_dict({n: ours[n] for n in expected}, strict=True, assign=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def script(model: SentenceEncoder) -> torch.jit.ScriptModule:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        return torch.jit.script(model)


def reference_embeddings(hf_model, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """sentence-transformers' Transformer + Pooling(mean) + Normalize, computed with transformers."""
    with torch.no_grad():
        h = hf_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.to(torch.float32)
    m = attention_mask.to(torch.float32).unsqueeze(-1)
    mean = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return F.normalize(mean, p=2.0, dim=1)


def pad_batch(id_lists: List[List[int]], pad_id: int):
    t = max(len(x) for x in id_lists)
    ids = torch.full((len(id_lists), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(id_lists), t), dtype=torch.long)
    for i, x in enumerate(id_lists):
        ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    return ids, mask
