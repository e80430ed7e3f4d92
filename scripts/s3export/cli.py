"""scripts/export_model.py: HF directory | GGUF file | random-init config -> s3attn model directory.

Exit codes: 0 ok, 1 bad input / unsupported model / failed --verify (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .errors import ExportError

DTYPES = ("float32", "bfloat16", "float16")
PROG = "export_model"


def log(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="export_model.py",
        description="Export a Hugging Face checkpoint, a GGUF file or a random-init config to an s3attn "
                    "model directory (model.ts, model.json, tokenizer files). See docs/export.md.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--hf", metavar="DIR", type=Path, help="Hugging Face checkpoint directory")
    src.add_argument("--gguf", metavar="FILE", type=Path, help="GGUF file (dequantized on import)")
    src.add_argument("--random-init", metavar="CONFIG_JSON", type=Path,
                     help="HF config.json; random weights N(0, --std) (for benchmarks)")
    p.add_argument("--out", metavar="MODEL_DIR", type=Path, required=True, help="model directory to write")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of the saved weights (default float32)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where random weights are made and --verify runs (default cpu); model.ts is saved "
                        "with CPU tensors either way")
    p.add_argument("--tokenizer", metavar="FILE_OR_DIR", type=Path,
                   help="tokenizer.json or HF tokenizer directory (default: the source's; needed for --random-init)")
    p.add_argument("--verify", action="store_true", help="compare model.ts with transformers after export")
    p.add_argument("--verify-text", metavar="FILE", type=Path,
                   help="also compare model.ts with transformers over real text: the first --verify-tokens tokens "
                        "of FILE (from --verify-offset characters); reports top-1 agreement and logit differences")
    p.add_argument("--verify-tokens", type=int, default=512, help="tokens of --verify-text (default 512)")
    p.add_argument("--verify-offset", type=int, default=0, help="characters of --verify-text to skip (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    p.add_argument("--std", type=float, default=0.02, help="std of --random-init weights (default 0.02)")
    return p.parse_args(argv)


def check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists (use --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    parent = out.resolve().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ExportError(f"{existing}: not a writable directory")


def precheck(args) -> None:
    """Cheap checks of the inputs before torch and transformers are imported (seconds on a busy machine)."""
    from .load_hf import check_hf_dir
    from .spec import read_config_json

    check_out(args.out, args.overwrite)
    if args.hf is not None:
        check_hf_dir(args.hf)
    elif args.gguf is not None:
        if not args.gguf.is_file():
            raise ExportError(f"{args.gguf}: no such GGUF file")
        with open(args.gguf, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ExportError(f"{args.gguf}: not a GGUF file (no GGUF magic)")
    else:
        read_config_json(args.random_init)
    if args.verify_text is not None and not args.verify_text.is_file():
        raise ExportError(f"{args.verify_text}: no such text file (--verify-text)")
    if args.verify_tokens < 2 or args.verify_offset < 0:
        raise ExportError("--verify-tokens must be at least 2 and --verify-offset not negative")
    if args.tokenizer is not None and not args.tokenizer.exists():
        raise ExportError(f"{args.tokenizer}: no such tokenizer file or directory")


def export(args) -> dict:
    precheck(args)

    import torch

    from . import chat, meta, modeling
    from .load_hf import load_hf, load_random_init_config, quiet_transformers

    dtype = getattr(torch, args.dtype)
    out: Path = args.out
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ExportError("--device cuda: CUDA is not available on this machine")
    if args.random_init is not None and args.std <= 0:
        raise ExportError("--std must be positive")
    t0 = time.time()
    quiet_transformers()
    ref = None
    tok_src = args.tokenizer
    gen_eos: list[int] = []
    gguf_tok_meta = None

    if args.hf is not None:
        log(f"loading {args.hf} ({args.dtype})")
        spec, ref = load_hf(args.hf, dtype)
        model = modeling.build_decoder(spec)
        modeling.load_weights(model, ref.state_dict(), spec)
        source = meta.source_info("hf", args.hf)
        if tok_src is None:
            if any((args.hf / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
                tok_src = args.hf
            else:
                chat.warn(f"{args.hf} has no tokenizer files and no --tokenizer was given: the model directory "
                          "gets none")
        gen_eos = chat.read_generation_eos(args.hf)
    elif args.gguf is not None:
        from .load_gguf import read_gguf
        from .spec import config_from_dict, spec_from_config

        log(f"reading and dequantizing {args.gguf}")
        cfg, state, gguf_tok_meta = read_gguf(args.gguf)
        if gguf_tok_meta is not None and args.tokenizer is None:
            from .load_gguf import generation_eos

            gen_eos = generation_eos(gguf_tok_meta)
        spec = spec_from_config(config_from_dict(cfg))
        model = modeling.build_decoder(spec)
        modeling.load_weights(model, {k: v.to(dtype) for k, v in state.items()}, spec)
        del state
        source = meta.source_info("gguf", args.gguf)
    else:
        spec = load_random_init_config(args.random_init)
        log(f"random init of {spec.architecture} ({spec.n_layers} layers, hidden {spec.hidden_size}) "
            f"on {args.device} in {args.dtype}")
        model = modeling.build_decoder(spec, device=args.device)
        modeling.random_init(model, dtype, args.device, std=args.std, seed=args.seed)
        source = meta.source_info("random-init", args.random_init)
        if tok_src is None:
            chat.warn("no --tokenizer: the model directory gets no tokenizer files")

    tok = chat.load_tokenizer(tok_src) if tok_src is not None else None
    model = model.to("cpu")
    log(f"scripting {modeling.param_count(model) / 1e6:.1f}M parameters")
    fingerprint = meta.weights_fingerprint(model, spec)
    scripted = modeling.script(model)

    try:
        out.resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"{out.resolve().parent}: cannot create ({e.strerror})")
    tmp = out.resolve().parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        model_ts = tmp / "model.ts"
        scripted.save(str(model_ts))
        del scripted
        if tok is None and gguf_tok_meta is not None:
            from .load_gguf import write_gguf_tokenizer

            write_gguf_tokenizer(gguf_tok_meta, tmp)
            tok = chat.load_tokenizer(tmp)
        elif tok is not None:
            chat.write_tokenizer_files(tok, tok_src, tmp)
        facts = chat.tokenizer_facts(tok)
        if facts["tokenizer_size"] is not None and facts["tokenizer_size"] > spec.vocab_size:
            chat.warn(f"the tokenizer has {facts['tokenizer_size']} tokens but the model's vocabulary is "
                      f"{spec.vocab_size}")
        info = meta.build_model_json(spec, dtype, source, facts, gen_eos, fingerprint)
        (tmp / "model.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"wrote {meta.model_json_summary(info)} in {time.time() - t0:.1f}s")

        result = {"out": str(out), "fingerprint": info["fingerprint"], "export_s": round(time.time() - t0, 2)}
        if args.verify:
            from .verify import verify

            del model
            log(f"verifying against transformers on {args.device}")
            r = verify(model_ts, spec, dtype, args.device, ref=ref)
            result["verify"] = r
            print(f"verify: forward max abs diff {r['forward_max_abs_diff']:.3g}, prefill+decode max abs diff "
                  f"{r['prefill_decode_max_abs_diff']:.3g} (vs transformers' cache), "
                  f"{r['prefill_decode_vs_forward_max_abs_diff']:.3g} (vs forward); tolerance "
                  f"{r['tolerance']:.3g}", flush=True)
            if not r["ok"]:
                raise ExportError("verify failed: model.ts differs from transformers beyond tolerance")
        if args.verify_text is not None:
            from .verify import verify_text

            if "model" in locals():
                del model
            if tok is None:
                raise ExportError("--verify-text needs a tokenizer (--tokenizer)")
            text = args.verify_text.read_text(encoding="utf-8")[args.verify_offset:]
            ids = tok.encode(text, add_special_tokens=False)[:args.verify_tokens]
            if len(ids) < 2:
                raise ExportError(f"{args.verify_text}: fewer than 2 tokens of text after --verify-offset")
            log(f"comparing with transformers over {len(ids)} tokens of {args.verify_text} on {args.device}")
            r = verify_text(model_ts, spec, dtype, args.device, ids, ref=ref)
            result["verify_text"] = dict(r, file=str(args.verify_text), offset=args.verify_offset)
            print(f"verify-text: {r['tokens']} tokens, top-1 agreement {r['top1_agreement']:.4f}, max abs diff "
                  f"{r['max_abs_diff']:.3g}, mean abs diff {r['mean_abs_diff']:.3g} (logits up to "
                  f"{r['max_abs_logit']:.3g})", flush=True)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def replace_dir(tmp: Path, out: Path) -> None:
    """Moves tmp into place; an existing out (with --overwrite) is removed only after the rename."""
    old = None
    if out.exists():
        old = out.resolve().parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = export(args)
    except ExportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        return 1
    except Exception as e:  # never a traceback for the user; S3ATTN_DEBUG=1 shows it
        if os.environ.get("S3ATTN_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"{PROG}: error: {type(e).__name__}: {msg} (set S3ATTN_DEBUG=1 for details)", file=sys.stderr)
        return 1
    print(f"exported {result['out']} (fingerprint {result['fingerprint'][:16]}, {result['export_s']}s)")
    return 0
