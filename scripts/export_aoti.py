#!/usr/bin/env python3
"""Compiles an exported model's decode step ahead of time with AOTInductor, for
`s3attn generate --decode-backend aoti` (core/runtime/aoti_decode.h):

    python3 scripts/export_aoti.py --model MODEL_DIR [--device cpu|cuda] [--dtype float32|bfloat16|float16]

writes MODEL_DIR/aoti/decode-<device>-<dtype>.pt2 and its sidecar .json (the model's fingerprint,
the dtype, torch's version, the compile time and the parity check). The package is the exporter's
decoder (scripts/s3export) with model.ts's weights through `torch.export` (batch and cache length
dynamic) and `aoti_compile_and_package`; it is for one device type and dtype (s3attn casts model.ts
with --dtype; the package is compiled in that dtype). Before it is installed, it decodes greedily
beside model.ts from the same prefilled cache: the tokens must agree (else nothing is written,
exit 1). Written beside and renamed, so a failure leaves no half-written package.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_aoti import compile_package, timed_decode  # noqa: E402
from profile_decode import eager_decoder, load, set_executor  # noqa: E402

PARITY_PROMPT = 32
PARITY_STEPS = 8


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: the export's)")
    args = p.parse_args()

    def fail(message: str, code: int = 1) -> int:
        print(f"export_aoti: error: {message}", file=sys.stderr)
        return code

    meta_file = args.model / "model.json"
    if not (args.model / "model.ts").is_file() or not meta_file.is_file():
        return fail(f"{args.model} has no model.ts and model.json (scripts/export_model.py)", 2)
    meta = json.loads(meta_file.read_text())
    dtype_name = args.dtype or meta["dtype"]
    if dtype_name not in ("float32", "bfloat16", "float16"):
        return fail(f"--dtype must be float32, bfloat16 or float16, not '{dtype_name}'", 2)
    if args.device == "cuda" and not torch.cuda.is_available():
        return fail("--device cuda but no CUDA device is available", 2)
    dtype = getattr(torch, dtype_name)
    if args.device == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)  # as s3attn (core/runtime/model.cpp)
    set_executor(False)
    scripted = load(args.model, dtype, args.device)
    decoder = eager_decoder(args.model, scripted, args.device)

    torch.manual_seed(0)
    vocab = scripted.embed_tokens.weight.size(0)
    ids = torch.randint(0, vocab, (1, PARITY_PROMPT), device=args.device)
    k, v = scripted.new_cache(1, PARITY_PROMPT + PARITY_STEPS + 8)
    with torch.no_grad():
        first = scripted.prefill(ids, k, v, 0).argmax(-1).view(1, 1)
    pos = torch.tensor([PARITY_PROMPT], dtype=torch.long, device=args.device)

    out_dir = args.model / "aoti"
    out_dir.mkdir(exist_ok=True)
    name = f"decode-{args.device}-{dtype_name}"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        # Traced at batch 2: a dimension of size 1 would be specialized to 1.
        example = (first.repeat(2, 1), torch.zeros_like(k).repeat(1, 2, 1, 1, 1),
                   torch.zeros_like(v).repeat(1, 2, 1, 1, 1), pos.repeat(2))
        built = compile_package(decoder, example, Path(tmp) / f"{name}.pt2")
        package = torch._inductor.aoti_load_package(built["path"])
        cuda = args.device == "cuda"
        want, _, _ = timed_decode(scripted.decode_at, first, k.clone(), v.clone(), pos, PARITY_STEPS, cuda)
        got, _, _ = timed_decode(package, first, k.clone(), v.clone(), pos, PARITY_STEPS, cuda)
        if got != want:
            return fail(f"the compiled decode step gives other tokens than model.ts ({got} against {want}); "
                        "nothing was installed")
        sidecar = {"model_fingerprint": meta["fingerprint"], "dtype": dtype_name, "device": args.device,
                   "torch": torch.__version__, "export_s": built["export_s"], "compile_s": built["compile_s"],
                   "package_bytes": built["package_bytes"],
                   "parity": {"prompt_tokens": PARITY_PROMPT, "greedy_tokens": PARITY_STEPS, "identical": True},
                   "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (Path(tmp) / f"{name}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
        # The package first, then the sidecar that vouches for it.
        os.replace(Path(tmp) / f"{name}.pt2", out_dir / f"{name}.pt2")
        os.replace(Path(tmp) / f"{name}.json", out_dir / f"{name}.json")
    print(json.dumps({"package": str(out_dir / f"{name}.pt2"), **sidecar}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
