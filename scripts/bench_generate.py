#!/usr/bin/env python3
"""Prefill and decode speed of `s3attn generate` against Hugging Face transformers in the same run.

    python3 scripts/bench_generate.py --model MODEL_DIR --prompt-tokens 2048 --new-tokens 128 \
        --device cuda --dtype bfloat16 [--hf-gguf FILE | --hf-config CONFIG_JSON | --hf DIR]

s3attn runs as a subprocess (its own timings, from --json); the reference is transformers with the
same weights (--hf, --hf-gguf) or the same shapes with random weights (--hf-config): eager with its
dynamic cache (one forward for the prefill, then `generate` for the decode), or with
`--hf-static` a static cache, which `generate` compiles with torch.compile (the fastest way
transformers decodes; timed after a warm-up generation that compiles, the decode as the difference
between a generation of --new-tokens and one of a single token). `--batch 1 8 32` measures batched
decoding: B rows of the same prompt (`s3attn generate --batch B`, one batched CUDA graph; the
reference's `generate` on B rows); tokens/s count every row. Prints one JSON row per measurement
and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import stamp

REPO = Path(__file__).resolve().parents[1]


def prompt_text(n_tokens: int, tokenizer_file: Path) -> str:
    """Plain English filler of about n_tokens tokens (a repeated public-domain-style sentence set)."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_file))
    base = ("The history of the city is long and full of change. Merchants came from the coast, "
            "scholars built libraries, and the river carried grain to distant markets. ")
    text = base
    while len(tok.encode(text, add_special_tokens=False).ids) < n_tokens:
        text += base
    ids = tok.encode(text, add_special_tokens=False).ids[: n_tokens - 1]
    return tok.decode(ids)


def run_s3attn(binary: Path, model: Path, prompt_file: Path, new_tokens: int, device: str, dtype: str,
               batch: int = 1, backend: str = "torchscript") -> dict:
    cmd = [str(binary), "generate", "--model", str(model), "--prompt-file", str(prompt_file), "--max-new-tokens",
           str(new_tokens), "--ignore-stop", "--repeat", "2", "--device", device, "--dtype", dtype, "--json",
           "--batch", str(batch), "--decode-backend", backend]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def hf_model(args, dtype):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    if args.hf:
        return AutoModelForCausalLM.from_pretrained(args.hf, dtype=dtype).to(args.device).eval()
    if args.hf_gguf:  # the exporter's own dequantizing reader, into transformers' model class
        sys.path.insert(0, str(REPO / "scripts"))
        from s3export.load_gguf import read_gguf
        config_dict, state, _ = read_gguf(Path(args.hf_gguf))
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config_dict), dtype=torch.float32)
        model.load_state_dict(state, strict=False)
        model.tie_weights()
        return model.to(args.device, dtype).eval()
    config = AutoConfig.for_model(**json.loads(Path(args.hf_config).read_text()))
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def run_hf(model, ids, new_tokens: int, device: str, batch: int = 1, static: bool = False) -> dict:
    import torch
    input_ids = torch.tensor([ids] * batch, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def generate(n: int) -> float:
        extra = {"cache_implementation": "static"} if static else {}
        sync(); t0 = time.perf_counter()
        model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                       max_new_tokens=n, min_new_tokens=n, **extra)
        sync()
        return time.perf_counter() - t0

    with torch.no_grad():
        if static:  # prefill + 1 token, then the whole generation; the difference is the decode
            prefill = generate(1)
            decode = max(generate(new_tokens) - prefill, 1e-9)
        else:
            sync(); t0 = time.perf_counter()
            model(input_ids, use_cache=True, logits_to_keep=1)
            sync(); prefill = time.perf_counter() - t0
            decode = max(generate(new_tokens) - prefill, 1e-9)
    return {"prefill_s": prefill, "decode_s": decode, "prefill_tokens_per_s": batch * len(ids) / prefill,
            "decode_tokens_per_s": batch * (new_tokens - 1) / decode}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--binary", type=Path, default=REPO / "build" / "s3attn")
    p.add_argument("--prompt-tokens", type=int, nargs="+", default=[2048])
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--repeats", type=int, default=1, help="processes per measurement (each warms up in-process)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--hf", help="HF checkpoint dir with the same weights")
    ref.add_argument("--hf-gguf", help="GGUF file the model was exported from")
    ref.add_argument("--hf-config", help="HF config JSON (random weights, same shapes)")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="rows decoded together (batched decoding)")
    p.add_argument("--decode-backend", default="torchscript", choices=["torchscript", "aoti"],
                   help="s3attn's decode step (aoti: the package of scripts/export_aoti.py)")
    p.add_argument("--hf-static", action="store_true",
                   help="the reference decodes with a static cache, compiled by generate (torch.compile)")
    p.add_argument("--out", type=Path, help="append JSON rows to this file")
    args = p.parse_args()

    import torch
    dtype = getattr(torch, args.dtype)
    meta = json.loads((args.model / "model.json").read_text())
    reference = hf_model(args, dtype) if (args.hf or args.hf_gguf or args.hf_config) else None
    rows = []
    if any(b < 1 for b in args.batch):
        p.error("--batch sizes must be at least 1")
    for n, batch in [(n, b) for n in args.prompt_tokens for b in args.batch]:
        text = prompt_text(n, args.model / "tokenizer.json")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text)
        runs = [run_s3attn(args.binary, args.model, Path(f.name), args.new_tokens, args.device, args.dtype, batch,
                           args.decode_backend)
                for _ in range(args.repeats)]  # each process warms up with --repeat 2
        ids = runs[0]["prompt_tokens"]
        os.unlink(f.name)
        med = lambda key, rs: statistics.median(r["timings"][key] if "timings" in r else r[key] for r in rs)
        row = {"model": meta.get("architecture"), "layers": meta["n_layers"], "hidden": meta["hidden_size"],
               "device": args.device, **stamp(args.binary, args.device), "dtype": args.dtype, "prompt_tokens": len(ids), "new_tokens": args.new_tokens, "batch": batch,
               "decode_backend": args.decode_backend, "hf_cache": "static+compile" if args.hf_static else "dynamic",
               "s3attn_prefill_tok_s": med("prefill_tokens_per_s", runs),
               "s3attn_decode_tok_s": med("decode_tokens_per_s", runs)}
        if reference is not None:
            # The first run warms up (and, with a static cache, compiles); it is not counted.
            hf_runs = [run_hf(reference, ids, args.new_tokens, args.device, batch, args.hf_static)
                       for _ in range(args.repeats + 1)][1:]
            row["hf_prefill_tok_s"] = med("prefill_tokens_per_s", hf_runs)
            row["hf_decode_tok_s"] = med("decode_tokens_per_s", hf_runs)
            row["prefill_ratio"] = row["s3attn_prefill_tok_s"] / row["hf_prefill_tok_s"]
            row["decode_ratio"] = row["s3attn_decode_tok_s"] / row["hf_decode_tok_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    print("\n| prompt | batch | s3attn prefill tok/s | s3attn decode tok/s | HF prefill tok/s | HF decode tok/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['prompt_tokens']} | {r['batch']} | {r['s3attn_prefill_tok_s']:.0f} | {r['s3attn_decode_tok_s']:.1f} | "
              f"{r.get('hf_prefill_tok_s', float('nan')):.0f} | {r.get('hf_decode_tok_s', float('nan')):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
