#!/usr/bin/env python3
"""Index build, memory and ask speed of s3attn against the bare chunked forward and Hugging Face
transformers' full-context inference, all in one run on one GPU (docs/performance.md).

    python3 scripts/bench_index.py --model MODEL_DIR --sae SAE_DIR --text FILE \
        --tokens 131072 32768 524288 [--hf-config CONFIG_JSON] --out OUT_DIR

For each length (the first is the main one): `s3attn index` of the first N tokens of --text
(its own scan/commit timings and peak device memory), the bare chunked forward through the same
layers and chunk size (the same model.ts `tap`, timed in-process, nothing else), and, for the main
length only, `s3attn ask` (budget 2048, 128 new tokens) and transformers' full prefill + 128
greedy tokens on a model of the same shape (--hf-config). Rows go to OUT_DIR/bench_index.jsonl as
they are measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def emit(rows: Path, row: dict) -> None:
    print(json.dumps(row), flush=True)
    with rows.open("a") as f:
        f.write(json.dumps(row) + "\n")


def prefix_text(text: str, tokenizer_file: Path, n_tokens: int) -> tuple[str, list[int]]:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_file))
    enc = tok.encode(text, add_special_tokens=False)
    if len(enc.ids) < n_tokens:
        repeats = n_tokens // max(len(enc.ids), 1) + 1
        text = "\n\n".join([text] * repeats)
        enc = tok.encode(text, add_special_tokens=False)
    end = enc.offsets[n_tokens - 1][1]
    # Python offsets are characters.
    return text[:end], enc.ids[:n_tokens]


def run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench_index: {' '.join(cmd[:2])} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def _sync(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> int:
    import torch
    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0


def bare_chunked_forward(model_dir: Path, ids: list[int], layers: list[int], chunk: int, device: str, dtype) -> dict:
    """The same TorchScript tap over the same chunks, no SAE and no index: the baseline."""
    import torch
    torch._C._jit_set_profiling_executor(False)
    torch._C._jit_set_profiling_mode(False)
    torch._C._set_graph_executor_optimize(False)
    model = torch.jit.load(str(model_dir / "model.ts"), map_location=device)
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.to(dtype)
    x = torch.tensor(ids, device=device)
    chunks = [x[i:i + chunk].view(1, -1) for i in range(0, len(ids), chunk)]
    with torch.no_grad():
        model.tap(chunks[0], layers, False)  # warm-up
        _sync(device)
        _reset_peak(device)
        t0 = time.perf_counter()
        for c in chunks:
            model.tap(c, layers, False)
        _sync(device)
        seconds = time.perf_counter() - t0
    peak = _peak(device)
    del model
    return {"bare_forward_s": seconds, "bare_peak_bytes": peak}


def hf_full(config_file: Path, ids: list[int], new_tokens: int, device: str, dtype) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.for_model(**json.loads(config_file.read_text()))
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    x = torch.tensor([ids], device=device)
    with torch.no_grad():
        model(x[:, :2048], logits_to_keep=1)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = model(x, use_cache=True, logits_to_keep=1)
        torch.cuda.synchronize()
        prefill = time.perf_counter() - t0
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1):
            out = model(token, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        decode = time.perf_counter() - t1
    peak = torch.cuda.max_memory_allocated()
    del model, past, out
    torch.cuda.empty_cache()
    return {"hf_prefill_s": prefill, "hf_decode_s": decode, "hf_total_s": prefill + decode, "hf_peak_bytes": peak}


def index_row(args, doc: Path, index_dir: Path, flags: list[str], sae_layers: list[int], meta: dict) -> dict:
    summary = run([str(args.binary), "index", "--model", str(args.model), "--sae", str(args.sae), "--input", str(doc),
                   "--out", str(index_dir), "--overwrite", "--chunk", str(args.chunk), "--device", args.device,
                   "--dtype", args.dtype, "--json", *flags])
    keys = ("warmup_s", "scan_s", "commit_s", "indexer_busy_s", "buffer_wait_s", "drain_s", "tokenize_s", "tokenize_wait_s",
            "peak_device_bytes", "postings", "bytes_per_posting")
    return {"what": "index", "tokens": summary["tokens"], "layers": sae_layers, "chunk": args.chunk,
            **{k: summary[k] for k in keys}, "model": meta.get("architecture"), "hidden": meta["hidden_size"]}


def add_ratios(row: dict) -> None:
    # The bare forward is timed after one warm-up chunk; s3attn's scan_s likewise follows its own
    # warm-up chunk (warmup_s). Both ratios are reported.
    row["index_over_bare"] = (row["scan_s"] + row["commit_s"]) / row["bare_forward_s"]
    row["index_with_warmup_over_bare"] = (row["warmup_s"] + row["scan_s"] + row["commit_s"]) / row["bare_forward_s"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--sae", required=True, type=Path)
    p.add_argument("--text", required=True, type=Path)
    p.add_argument("--tokens", type=int, nargs="+", default=[131072])
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--hf-config", type=Path)
    p.add_argument("--binary", type=Path, default=REPO / "build" / "s3attn")
    p.add_argument("--question", default="What did the author work on before college?")
    p.add_argument("--out", required=True, type=Path, help="work directory (documents, indexes)")
    p.add_argument("--rows", type=Path, help="JSONL file for the rows (default OUT/bench_index.jsonl)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help="also index the main length with these extra s3attn index flags (repeatable)")
    args = p.parse_args()
    rows = args.rows or args.out / "bench_index.jsonl"
    import torch
    dtype = getattr(torch, args.dtype)
    args.out.mkdir(parents=True, exist_ok=True)
    sae_layers = json.loads((args.sae / "sae.json").read_text())["layers"]
    meta = json.loads((args.model / "model.json").read_text())
    text = args.text.read_text()
    # Flush what earlier steps wrote (a 16 GB model export, say): its writeback would otherwise
    # compete with the index commit's fsync and be charged to s3attn.
    os.sync()
    for i, n in enumerate(args.tokens):
        doc_text, ids = prefix_text(text, args.model / "tokenizer.json", n)
        doc = args.out / f"doc_{n}.txt"
        doc.write_text(doc_text)
        index_dir = args.out / f"index_{n}"
        row = index_row(args, doc, index_dir, [], sae_layers, meta)
        row.update(bare_chunked_forward(args.model, ids, sae_layers, args.chunk, args.device, dtype))
        add_ratios(row)
        emit(rows, row)
        if i == 0:
            # The same build with other s3attn flags, against the same bare forward.
            for spec in args.variant:
                name, _, flags = spec.partition("=")
                variant = index_row(args, doc, args.out / f"index_{n}_{name}", flags.split(), sae_layers, meta)
                variant["variant"] = name
                variant["flags"] = flags
                variant["bare_forward_s"] = row["bare_forward_s"]
                add_ratios(variant)
                emit(rows, variant)
        if i > 0:
            continue
        ask = run([str(args.binary), "ask", "--index", str(index_dir), "--question", args.question, "--budget", "2048",
                   "--max-new-tokens", "128", "--ignore-stop", "--device", args.device, "--dtype", args.dtype, "--json"])
        ask_row = {"what": "ask", "tokens": row["tokens"], "ask_s": ask["timings"]["ask_s"],
                   "ask_warmup_s": ask["timings"].get("warmup_s"),
                   "retrieval": ask["timings"]["retrieval"], "encode_query_s": ask["timings"]["encode_query_s"],
                   "prefill_s": ask["timings"].get("prefill_s"), "decode_s": ask["timings"].get("decode_s"),
                   "new_tokens": len(ask["tokens"]), "evidence_tokens": ask["evidence_tokens"],
                   "index_s": row["scan_s"] + row["commit_s"]}
        # Retrieval alone on one thread (the default scores the layer slots on one thread each).
        one = run([str(args.binary), "ask", "--index", str(index_dir), "--question", args.question, "--budget", "2048",
                   "--evidence-only", "--score-threads", "1", "--device", args.device, "--dtype", args.dtype, "--json"])
        ask_row["retrieval_one_thread"] = one["timings"]["retrieval"]
        if args.hf_config:
            ask_row.update(hf_full(args.hf_config, ids, 128, args.device, dtype))
            ask_row["hf_over_ask"] = ask_row["hf_total_s"] / ask_row["ask_s"]
            ask_row["hf_over_index_plus_ask"] = ask_row["hf_total_s"] / (ask_row["ask_s"] + ask_row["index_s"])
            ask_row["hf_prefill_over_index"] = ask_row["hf_prefill_s"] / ask_row["index_s"]
        emit(rows, ask_row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
