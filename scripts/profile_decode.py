#!/usr/bin/env python3
"""Where a decode step's time goes: the exported model's `decode_at` as `s3attn generate` runs it
(TorchScript, plain executor, one CUDA graph replayed per token), profiled on the GPU.

    python3 scripts/profile_decode.py --model MODEL_DIR --prompt-tokens 2048 --new-tokens 128 \
        [--dtype bfloat16] [--fuser] [--out ROWS.jsonl]

Per variant it reports milliseconds per token (CUDA events around graph replays, and eager steps
for comparison), the kernels one token launches and their summed device time (torch.profiler over
replays), the busy share of the step (kernel time / step time), the top kernels, and the floor set by
reading the weights once per token at the copy bandwidth measured in the same process. `--fuser`
adds a variant with TorchScript's profiling executor and its GPU fuser switched on (s3attn turns
them off: they re-optimize per shape); `--compiled` one with the same decoder (scripts/s3export,
the exported weights) through torch.compile (Inductor's fused kernels), replayed in the same CUDA
graph: what a compiled backend would reach. One JSON row per variant, then a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import stamp  # noqa: E402


def set_executor(fuser: bool) -> None:
    """s3attn's settings (core/runtime/model.cpp) or the profiling executor with its fuser."""
    torch._C._jit_set_profiling_executor(fuser)
    torch._C._jit_set_profiling_mode(fuser)
    torch._C._set_graph_executor_optimize(fuser)
    if fuser:
        torch._C._jit_set_texpr_fuser_enabled(True)
        torch._C._jit_override_can_fuse_on_gpu(True)


def load(model_dir: Path, dtype: torch.dtype, device: str):
    module = torch.jit.load(str(model_dir / "model.ts"), map_location=device)
    for p in module.parameters():  # parameters only: inv_freq stays float32, as s3attn does
        p.data = p.data.to(dtype)
    module.eval()
    return module


def eager_decoder(model_dir: Path, scripted, device: str):
    """The exporter's eager Decoder (scripts/s3export) with the scripted module's tensors: the same
    computation as model.ts, as a Python module that torch.compile and torch.export can trace."""
    from bench_index import hf_config_from_model
    from s3export.modeling import build_decoder
    from s3export.spec import config_from_dict, spec_from_config

    meta = json.loads((model_dir / "model.json").read_text())
    spec = spec_from_config(config_from_dict(hf_config_from_model(meta)))
    model = build_decoder(spec, device)
    model.load_state_dict(dict(scripted.state_dict()), strict=True, assign=True)
    model.eval()
    return model


def compiled_decoder(model_dir: Path, scripted, device: str):
    """eager_decoder with its decode_at through torch.compile (kernels fused by Inductor; no CUDA
    graphs of its own: the caller captures one)."""
    model = eager_decoder(model_dir, scripted, device)
    model.decode_at = torch.compile(model.decode_at, fullgraph=True, dynamic=False)
    return model


def copy_bandwidth(device: str) -> float:
    """Bytes per second of a large device-to-device copy (read + write counted once: bytes read)."""
    a = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        b.copy_(a)
    end.record()
    torch.cuda.synchronize()
    return 5 * a.numel() / (start.elapsed_time(end) / 1e3) * 2  # read + write


def profile_variant(module, prompt: int, new: int, device: str) -> dict:
    torch.manual_seed(0)
    vocab = module.embed_tokens.weight.size(0)
    ids = torch.randint(0, vocab, (1, prompt), device=device)
    k, v = module.new_cache(1, prompt + new + 8)
    with torch.no_grad():
        logits = module.prefill(ids, k, v, 0)
        token = logits.argmax(-1).view(1, 1)
        pos = torch.tensor([prompt], dtype=torch.long, device=device)

        def step():
            out = module.decode_at(token, k, v, pos)
            token.copy_(out.argmax(-1).view(1, 1))
            pos.add_(1)

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up (and the profiling executor's profiling runs)
                step()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        eager_steps = 16
        start.record()
        for _ in range(eager_steps):
            step()
        end.record()
        torch.cuda.synchronize()
        eager_ms = start.elapsed_time(end) / eager_steps
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        replays = max(8, new - eager_steps - 8)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        torch.cuda.synchronize()
        graph_ms = start.elapsed_time(end) / replays
        profiled = 5
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(profiled):
                graph.replay()
            torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    per_name: Counter = Counter()
    count: Counter = Counter()
    for e in kernels:
        per_name[e.name] += e.device_time
        count[e.name] += 1
    busy_us = sum(per_name.values()) / profiled
    top = [{"kernel": n[:90], "us_per_token": round(t / profiled, 2), "launches_per_token": count[n] // profiled}
           for n, t in per_name.most_common(8)]
    return {"eager_ms_per_token": round(eager_ms, 3), "graph_ms_per_token": round(graph_ms, 3),
            "kernels_per_token": len(kernels) // profiled, "kernel_us_per_token": round(busy_us, 1),
            "busy_share": round(busy_us / 1e3 / graph_ms, 3), "top_kernels": top}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--prompt-tokens", type=int, default=2048)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--fuser", action="store_true", help="also profile with TorchScript's GPU fuser on")
    p.add_argument("--compiled", action="store_true", help="also profile the decoder through torch.compile")
    p.add_argument("--out", type=Path, help="append the JSON rows here")
    p.add_argument("--binary", type=Path, default=Path(__file__).resolve().parents[1] / "build" / "s3attn",
                   help="s3attn binary whose version stamps the rows")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("profile_decode: error: needs a CUDA device (CUDA graphs, the CUDA profiler)", file=sys.stderr)
        return 2
    device = "cuda"
    dtype = getattr(torch, args.dtype)
    torch.backends.cuda.enable_cudnn_sdp(False)  # as s3attn (core/runtime/model.cpp)
    bandwidth = copy_bandwidth(device)
    rows = []
    variants = ["s3attn"] + (["fuser"] if args.fuser else []) + (["compiled"] if args.compiled else [])
    for variant in variants:
        set_executor(variant == "fuser")
        module = load(args.model, dtype, device)
        if variant == "compiled":
            module = compiled_decoder(args.model, module, device)
        weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
        row = {"what": "decode_step", "variant": variant, "model": str(args.model),
               "prompt_tokens": args.prompt_tokens, "dtype": args.dtype, "weight_bytes": weight_bytes,
               "copy_bandwidth_gbs": round(bandwidth / 1e9, 1),
               "floor_ms_per_token": round(weight_bytes / bandwidth * 1e3, 3)}
        row.update(profile_variant(module, args.prompt_tokens, args.new_tokens, device))
        row.update(stamp(args.binary, device))
        rows.append(row)
        print(json.dumps(row), flush=True)
        del module
        torch.cuda.empty_cache()
    if args.out:
        with args.out.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    print("| variant | ms/token (graph) | ms/token (eager) | kernels/token | kernel time/token | busy | floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['graph_ms_per_token']} | {r['eager_ms_per_token']} | {r['kernels_per_token']} | "
              f"{r['kernel_us_per_token']} µs | {r['busy_share']:.0%} | {r['floor_ms_per_token']} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
