#!/usr/bin/env python3
"""A random SAE directory of a given size for a model, for benchmarks at real shapes (e.g. the
paper's 16,384 latents, k 128 on a random Llama-3.1-8B-shaped export) where no trained SAE is at
hand. Never a default: `s3attn sae train` makes real ones.

    python3 scripts/make_random_sae.py --model MODEL_DIR --layers 0,12,16,29 --latents 16384 --k 128 --out SAE_DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--layers", required=True, help="comma-separated layer numbers")
    p.add_argument("--latents", type=int, default=16384)
    p.add_argument("--k", type=int, default=128)
    p.add_argument("--head-mode", choices=["per-head", "concat"], default="per-head")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args()
    try:
        meta = json.loads((args.model / "model.json").read_text())
    except (OSError, ValueError) as e:
        print(f"make_random_sae: error: cannot read {args.model}/model.json: {e}", file=sys.stderr)
        return 1
    layers = sorted({int(x) for x in args.layers.split(",")})
    if any(l < 0 or l >= meta["n_layers"] for l in layers) or args.k > args.latents:
        print("make_random_sae: error: layers must exist in the model and --k must not exceed --latents", file=sys.stderr)
        return 1
    d_in = meta["head_dim"] * (1 if args.head_mode == "per-head" else meta["n_kv_heads"])
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        w_dec = torch.randn(args.latents, d_in, generator=g)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        tensors = {"W_enc": w_dec.clone().to(dtype), "b_enc": torch.zeros(args.latents, dtype=dtype),
                   "W_dec": w_dec.to(dtype), "b_dec": torch.zeros(d_in, dtype=dtype)}
        save_file(tensors, str(args.out / f"layer_{layer}.safetensors"),
                  metadata={"format": "s3attn-sae-layer", "d_in": str(d_in), "d_latent": str(args.latents),
                            "layer": str(layer), "k": str(args.k)})
    info = {"format": "s3attn-sae", "format_version": 1, "layers": layers, "d_in": d_in, "d_latent": args.latents,
            "k": args.k, "head_mode": args.head_mode, "model_fingerprint": meta["fingerprint"], "dtype": args.dtype,
            "training": {"corpus": f"none: random unit-norm directions (seed {args.seed}), for benchmarks",
                         "tokens": 0, "vectors": 0, "steps": 0},
            "stats": {}}
    (args.out / "sae.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote random SAE {args.out}: layers {layers}, d_in {d_in}, {args.latents} latents, k {args.k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
