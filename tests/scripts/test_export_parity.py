"""model.ts of every tiny family against transformers: logits, cached prefill/decode, greedy generation,
taps (pre- and post-RoPE) and the "tap runs only layers 0..max(layers)" rule."""

import pytest
import torch
import s3attn_testing  # noqa: F401  (puts scripts/ and tests/scripts/ on sys.path)
from tiny_models import EXTRA_FAMILIES, FAMILIES

ALL = FAMILIES + EXTRA_FAMILIES
ATOL = 1e-4  # float32, docs/export.md


def load_ts(model_dir):
    return torch.jit.load(str(model_dir / "model.ts"))


def random_ids(batch, length, seed=0, vocab=300):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ALL)
def test_forward_and_cache_match_transformers(family, exported, hf_model):
    ts, hf = load_ts(exported(family)), hf_model(family)
    ids = random_ids(2, 40)  # longer than the sliding window (16) of mistral / qwen2_swa
    with torch.no_grad():
        want = hf(ids).logits
        got = ts(ids)
        assert got.shape == want.shape == (2, 40, 320)
        assert (got - want).abs().max().item() <= ATOL

        # one prefill then decode steps
        k, v = ts.new_cache(2, 48)
        assert k.shape == v.shape == (4, 2, hf.config.num_key_value_heads, 48, 16)
        assert k.dtype == torch.float32
        last = ts.prefill(ids[:, :23], k, v, 0)
        assert last.shape == (2, 320)
        assert (last - want[:, 22]).abs().max().item() <= ATOL
        for p in range(23, 40):
            step = ts.decode(ids[:, p:p + 1], k, v, p)
            assert (step - want[:, p]).abs().max().item() <= ATOL, p

        # chunked prefill: start > 0 with several tokens needs the causal mask over the cache
        k, v = ts.new_cache(2, 40)
        ts.prefill(ids[:, :7], k, v, 0)
        ts.prefill(ids[:, 7:30], k, v, 7)
        out = ts.prefill(ids[:, 30:], k, v, 30)
        assert (out - want[:, 39]).abs().max().item() <= ATOL


@pytest.mark.parametrize("family", ALL)
def test_decode_at_matches_transformers(family, exported, hf_model):
    """decode_at (position in a tensor, whole-cache masked attention: the CUDA-graph step) gives
    transformers' logits at every position, past the sliding window too, with a cache longer than
    what is filled."""
    ts, hf = load_ts(exported(family)), hf_model(family)
    ids = random_ids(2, 40, seed=3)
    with torch.no_grad():
        want = hf(ids).logits
        k, v = ts.new_cache(2, 64)
        ts.prefill(ids[:, :9], k, v, 0)
        pos = torch.zeros(2, dtype=torch.int64)
        for p in range(9, 40):
            pos.fill_(p)
            step = ts.decode_at(ids[:, p:p + 1], k, v, pos)
            assert step.shape == (2, 320)
            assert (step - want[:, p]).abs().max().item() <= ATOL, p
        with pytest.raises(torch.jit.Error, match="pos must be"):
            ts.decode_at(ids[:, :1], k, v, torch.zeros(1, dtype=torch.int64))

        # Rows at different positions (batched generation of prompts of different lengths): row 0
        # of `ids` prefilled to 9 tokens, row 1 (another sequence) to 20.
        other = random_ids(2, 40, seed=4)
        want1 = hf(other).logits
        k, v = ts.new_cache(2, 64)
        ts.prefill(ids[:1, :9], k[:, :1], v[:, :1], 0)
        ts.prefill(other[1:, :20], k[:, 1:], v[:, 1:], 0)
        for s in range(15):
            pos = torch.tensor([9 + s, 20 + s])
            tokens = torch.stack([ids[0, 9 + s], other[1, 20 + s]]).view(2, 1)
            step = ts.decode_at(tokens, k, v, pos)
            assert (step[0] - want[0, 9 + s]).abs().max().item() <= ATOL, s
            assert (step[1] - want1[1, 20 + s]).abs().max().item() <= ATOL, s


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_generation_matches_transformers(family, exported, hf_model, tiny_dir):
    from transformers import AutoTokenizer, GenerationConfig

    ts, hf = load_ts(exported(family)), hf_model(family)
    tok = AutoTokenizer.from_pretrained(str(tiny_dir(family)))
    prompt = tok.apply_chat_template([{"role": "user", "content": "Where is Paris? Tell me about 2024."}],
                                     tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    n = 32
    cfg = GenerationConfig(do_sample=False, max_new_tokens=n, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        want = hf.generate(ids, generation_config=cfg, attention_mask=torch.ones_like(ids))[0, ids.size(1):]
        assert want.numel() == n
        k, v = ts.new_cache(1, ids.size(1) + n)
        logits = ts.prefill(ids, k, v, 0)
        got = []
        for i in range(n):
            nxt = int(logits.argmax(-1))
            got.append(nxt)
            logits = ts.decode(torch.tensor([[nxt]]), k, v, ids.size(1) + i)
    assert got == want.tolist()
    assert len(set(got)) > 1, "degenerate generation would make this test weak"


def hooked_qk(hf, ids, layers):
    """q_proj / k_proj outputs of `layers` in transformers, as [B, T, H, D]."""
    cfg = hf.config
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    seen, handles = {}, []
    for i in layers:
        attn = hf.model.layers[i].self_attn
        handles.append(attn.q_proj.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(("q", i), o)))
        handles.append(attn.k_proj.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(("k", i), o)))
    with torch.no_grad():
        hf(ids)
    for h in handles:
        h.remove()
    b, t = ids.shape
    return {i: (seen[("q", i)].view(b, t, -1, d), seen[("k", i)].view(b, t, -1, d)) for i in layers}


@pytest.mark.parametrize("family", FAMILIES)
def test_tap_matches_transformers_projections(family, exported, hf_model):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    ts, hf = load_ts(exported(family)), hf_model(family)
    ids = random_ids(2, 20, seed=1)
    layers = [3, 0, 2]
    want = hooked_qk(hf, ids, layers)
    with torch.no_grad():
        got = ts.tap(ids, layers, False)
        got_rope = ts.tap(ids, layers, True)
        pos = torch.arange(ids.size(1))[None]
        cos, sin = hf.model.rotary_emb(hf.model.embed_tokens(ids), pos)
    assert len(got) == len(layers)
    for (q, k), (qr, kr), layer in zip(got, got_rope, layers):
        wq, wk = want[layer]
        assert q.shape == (2, 20, hf.config.num_attention_heads, 16)
        assert k.shape == (2, 20, hf.config.num_key_value_heads, 16)
        assert (q - wq).abs().max().item() <= 1e-5
        assert (k - wk).abs().max().item() <= 1e-5
        rq, rk = apply_rotary_pos_emb(wq.transpose(1, 2), wk.transpose(1, 2), cos, sin)
        assert (qr - rq.transpose(1, 2)).abs().max().item() <= 1e-5
        assert (kr - rk.transpose(1, 2)).abs().max().item() <= 1e-5


def test_tap_runs_only_up_to_the_highest_layer(exported):
    """Poison (NaN) everything a tap of layers [1, 0] must not run: layers 2-3, layer 1 past its q/k
    projections, the final norm and the LM head. The taps must stay finite and unchanged."""
    ts = load_ts(exported("llama"))
    ids = random_ids(1, 12, seed=2)
    with torch.no_grad():
        before = ts.tap(ids, [1, 0], False)
        poisoned = 0
        for name, p in ts.named_parameters():
            layer = int(name.split(".")[1]) if name.startswith("layers.") else None
            late = layer is not None and layer >= 2
            rest_of_1 = layer == 1 and not any(s in name for s in ("q_proj", "k_proj", "input_layernorm"))
            if late or rest_of_1 or name.startswith(("norm.", "lm_head.")):
                p.fill_(float("nan"))
                poisoned += 1
        assert poisoned > 20
        after = ts.tap(ids, [1, 0], False)
        assert torch.isnan(ts(ids)).all()  # the poison is real
    for (q0, k0), (q1, k1) in zip(before, after):
        assert torch.isfinite(q1).all() and torch.isfinite(k1).all()
        assert torch.equal(q0, q1) and torch.equal(k0, k1)
    # order follows the request: [1, 0] -> layer 1 first (different values from layer 0)
    assert not torch.equal(after[0][0], after[1][0])


def test_tap_and_cache_argument_errors(exported):
    ts = load_ts(exported("llama"))
    ids = random_ids(1, 5)
    for bad in ([], [4], [-1]):
        with pytest.raises((RuntimeError, torch.jit.Error)):
            ts.tap(ids, bad, False)
    k, v = ts.new_cache(1, 8)
    with pytest.raises((RuntimeError, torch.jit.Error)):
        ts.prefill(random_ids(1, 9), k, v, 0)  # longer than the cache
    with pytest.raises((RuntimeError, torch.jit.Error)):
        ts.decode(random_ids(1, 2), k, v, 0)  # decode takes one token


def test_bfloat16_export_is_close(exported, tiny_dir):
    from s3export.verify import tolerance
    from transformers import AutoModelForCausalLM

    ts = load_ts(exported("llama3", "bfloat16"))
    hf = AutoModelForCausalLM.from_pretrained(str(tiny_dir("llama3")), dtype=torch.bfloat16).eval()
    ids = random_ids(1, 24, seed=3)
    with torch.no_grad():
        want_bf16 = hf(ids).logits.float()
        got = ts(ids)
        assert got.dtype == torch.bfloat16
        assert ts.inv_freq.dtype == torch.float32
        k, v = ts.new_cache(1, 24)
        assert k.dtype == torch.bfloat16
        ts.prefill(ids[:, :12], k, v, 0)
        steps = [ts.decode(ids[:, p:p + 1], k, v, p).float() for p in range(12, 24)]
    tol = tolerance(torch.bfloat16, want_bf16.abs().max().item())
    assert (got.float() - want_bf16).abs().max().item() <= tol
    assert max((s - want_bf16[:, p]).abs().max().item() for s, p in zip(steps, range(12, 24))) <= tol
