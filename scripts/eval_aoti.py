#!/usr/bin/env python3
"""AOTInductor against TorchScript for the decode step of an exported model: export time, package
size, parity and speed, on the CPU or a CUDA device.

    python3 scripts/eval_aoti.py --model MODEL_DIR [--device cpu|cuda] [--dtype float32|bfloat16]
        [--prompt-tokens 256] [--new-tokens 32] [--package FILE.pt2] [--out ROWS.jsonl]

The decode step is the exported model's `decode_at` (one token per row at the positions held by a
tensor, K/V written into the caches in place), the method `s3attn generate` replays in a CUDA graph.
The AOTInductor variant is the exporter's own decoder (scripts/s3export) with the exported weights,
through `torch.export` (batch and cache length dynamic) and `aoti_compile_and_package`: one `.pt2`
that LibTorch's `AOTIModelPackageLoader` loads from C++. Both variants prefill the same random
prompt (TorchScript), then decode greedily from copies of the same cache; the row says whether the
tokens agree, the largest logit difference, and milliseconds per token of each after two warm-up
steps (CUDA: one CUDA graph per variant, replayed; CPU: plain calls). One JSON row, then a markdown line.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_decode import eager_decoder, load, set_executor  # noqa: E402
from provenance import stamp  # noqa: E402


class DecodeStep(torch.nn.Module):
    """decode_at as a module's forward, for torch.export."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, token, k_cache, v_cache, pos):
        return self.decoder.decode_at(token, k_cache, v_cache, pos)


def compile_package(decoder, example: tuple, package: Path) -> dict:
    batch = torch.export.Dim("batch", min=1, max=1024)
    length = torch.export.Dim("max_len", min=2, max=1 << 22)
    dynamic = {"token": {0: batch}, "k_cache": {1: batch, 3: length}, "v_cache": {1: batch, 3: length},
               "pos": {0: batch}}
    t0 = time.perf_counter()
    with torch.no_grad():
        program = torch.export.export(DecodeStep(decoder), example, dynamic_shapes=dynamic)
    exported = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = torch._inductor.aoti_compile_and_package(program, package_path=str(package))
    return {"path": path, "export_s": round(exported, 2), "compile_s": round(time.perf_counter() - t0, 2),
            "package_bytes": Path(path).stat().st_size}


def timed_decode(step, token, k, v, pos, steps: int, cuda: bool) -> tuple[list[int], list, float]:
    """Greedy decode of `steps` tokens from (token, pos) with `step`; returns the tokens, the logits
    of each step and milliseconds per token (CUDA: replays of one captured graph)."""
    tokens, logits = [], []
    with torch.no_grad():
        if not cuda:
            t0 = time.perf_counter()
            for i in range(steps):
                if i == 2:  # the first two steps warm up (first calls set things up), untimed
                    t0 = time.perf_counter()
                out = step(token, k, v, pos)
                token = out.argmax(-1).view(-1, 1)
                pos = pos + 1
                tokens.append(int(token[0, 0]))
                logits.append(out.float())
            return tokens, logits, (time.perf_counter() - t0) / (steps - 2) * 1e3
        # Static inputs of the graph, replaced in place at each step (as s3attn's decode).
        token, pos = token.clone(), pos.clone()
        out_holder = []

        def one():
            out = step(token, k, v, pos)
            token.copy_(out.argmax(-1).view(-1, 1))
            pos.add_(1)
            return out

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # real steps, as s3attn's two eager steps before capture
                out = one()
                tokens.append(int(token[0, 0]))
                logits.append(out.float().clone())
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out_holder.append(one())
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps - 2):
            graph.replay()
            tokens.append(int(token[0, 0]))  # synchronizes: kept out of the timing below
            logits.append(out_holder[0].float().clone())
        end.record()
        torch.cuda.synchronize()
        # The per-step reads above serialize host and device; time the replays alone as well.
        start2, end2 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start2.record()
        for _ in range(steps):
            graph.replay()
        end2.record()
        torch.cuda.synchronize()
        return tokens, logits, start2.elapsed_time(end2) / steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--package", type=Path, help="where to write the .pt2 (default: a temporary file)")
    p.add_argument("--binary", type=Path, default=Path(__file__).resolve().parents[1] / "build" / "s3attn",
                   help="s3attn binary whose version stamps the row")
    p.add_argument("--out", type=Path, help="append the JSON row here")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("eval_aoti: error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if not (args.model / "model.ts").is_file():
        print(f"eval_aoti: error: {args.model} has no model.ts (scripts/export_model.py)", file=sys.stderr)
        return 2
    if args.new_tokens < 4:
        print("eval_aoti: error: --new-tokens must be at least 4", file=sys.stderr)
        return 2
    cuda = args.device == "cuda"
    dtype = getattr(torch, args.dtype)
    if cuda:
        torch.backends.cuda.enable_cudnn_sdp(False)  # as s3attn (core/runtime/model.cpp)
    set_executor(False)
    scripted = load(args.model, dtype, args.device)
    decoder = eager_decoder(args.model, scripted, args.device)
    vocab = scripted.embed_tokens.weight.size(0)
    torch.manual_seed(0)
    ids = torch.randint(0, vocab, (1, args.prompt_tokens), device=args.device)
    k, v = scripted.new_cache(1, args.prompt_tokens + args.new_tokens + 8)
    with torch.no_grad():
        first = scripted.prefill(ids, k, v, 0).argmax(-1).view(1, 1)
    pos = torch.tensor([args.prompt_tokens], dtype=torch.long, device=args.device)

    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or Path(tmp) / "decode.pt2"
        # Traced at batch 2: a dimension of size 1 would be specialized to 1.
        example = (first.repeat(2, 1), torch.zeros_like(k).repeat(1, 2, 1, 1, 1),
                   torch.zeros_like(v).repeat(1, 2, 1, 1, 1), pos.repeat(2))
        built = compile_package(decoder, example, package)
        aoti = torch._inductor.aoti_load_package(built["path"])
        ts_tokens, ts_logits, ts_ms = timed_decode(scripted.decode_at, first, k.clone(), v.clone(), pos,
                                                   args.new_tokens, cuda)
        ao_tokens, ao_logits, ao_ms = timed_decode(aoti, first, k.clone(), v.clone(), pos, args.new_tokens, cuda)
    agree = next((i for i, (a, b) in enumerate(zip(ts_tokens, ao_tokens)) if a != b), len(ts_tokens))
    # Logits are compared while both variants decode the same tokens.
    diff = max(float((a - b).abs().max()) for a, b in list(zip(ts_logits, ao_logits))[:max(agree, 1)])
    row = {"what": "aoti_decode", "model": str(args.model), "device": args.device, "dtype": args.dtype,
           "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
           "export_s": built["export_s"], "compile_s": built["compile_s"], "package_bytes": built["package_bytes"],
           "tokens_identical": agree == len(ts_tokens), "tokens_agreeing": agree,
           "max_abs_logit_diff": diff, "torchscript_ms_per_token": round(ts_ms, 3),
           "aoti_ms_per_token": round(ao_ms, 3), "speedup": round(ts_ms / ao_ms, 3)}
    row.update(stamp(args.binary, args.device))
    print(json.dumps(row), flush=True)
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
    print(f"| {args.device} {args.dtype} | export {row['export_s'] + row['compile_s']:.1f} s | "
          f"tokens identical: {row['tokens_identical']} (max |Δlogit| {diff:.2e}) | TorchScript "
          f"{row['torchscript_ms_per_token']} ms/token | AOTInductor {row['aoti_ms_per_token']} ms/token | "
          f"{row['speedup']}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
