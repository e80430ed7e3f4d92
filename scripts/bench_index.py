#!/usr/bin/env python3
"""Index build, memory and ask speed of s3attn against the bare chunked forward and Hugging Face
transformers' full-context inference, all in one run on one GPU (docs/performance.md).

    python3 scripts/bench_index.py --model MODEL_DIR --sae SAE_DIR --text FILE \
        --tokens 131072 32768 524288 [--hf-config CONFIG_JSON] --out OUT_DIR

For each length (the first is the main one): `s3attn index` of the first N tokens of --text
(its own scan/commit timings and peak device memory), the bare chunked forward through the same
layers and chunk size (the same model.ts `tap`, timed in-process, nothing else), and, for the main
length only (every length with --every-length), `s3attn ask` (budget 2048, --new-tokens new tokens)
and transformers' full prefill + the same number of greedy tokens on a randomly initialised model
of the same shape (--hf-config, or --hf-config model: built from the exported model.json; up to
--hf-max-tokens; a CUDA out-of-memory is recorded as `hf_oom`). Rows go to
OUT_DIR/bench_index.jsonl as they are measured. scripts/gpu_synth.sh uses --every-length for the
scaling curves of docs/synthetic.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from provenance import stamp

REPO = Path(__file__).resolve().parents[1]


def emit(rows: Path, row: dict, provenance: dict) -> None:
    row = {**row, **provenance}
    print(json.dumps(row), flush=True)
    with rows.open("a") as f:
        f.write(json.dumps(row) + "\n")


class TokenizedText:
    """--text, repeated (joined by a blank line) until it holds `need` tokens, tokenized once in
    pieces of whole lines on all cores; prefix(n) is its first n tokens as text and ids (a piece
    boundary may tokenize differently from the whole text: `s3attn index` reports its own count)."""

    def __init__(self, text: str, tokenizer_file: Path, need: int):
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(tokenizer_file))
        self.text, self.ids, self.ends = "", [], []
        while len(self.ids) < need:
            chunk = ("\n\n" if self.text else "") + text
            pos = len(self.text)
            pieces = self._pieces(chunk)
            for piece, enc in zip(pieces, tok.encode_batch(pieces, add_special_tokens=False)):
                self.ids += enc.ids
                self.ends += [pos + e for _, e in enc.offsets]  # Python offsets are characters
                pos += len(piece)
            self.text += chunk

    @staticmethod
    def _pieces(text: str, size: int = 1 << 16) -> list[str]:
        out, begin = [], 0
        while begin < len(text):
            end = text.find("\n", begin + size)
            end = len(text) if end < 0 else end
            out.append(text[begin:end])
            begin = end
        return out

    def prefix(self, n_tokens: int) -> tuple[str, list[int]]:
        return self.text[:self.ends[n_tokens - 1]], self.ids[:n_tokens]


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


def hf_config_from_model(meta: dict) -> dict:
    """A Hugging Face config of the exported model's shape (model.json), for random-init timing."""
    config = {
        "model_type": meta["family"], "architectures": [meta["architecture"]], "vocab_size": meta["vocab_size"],
        "hidden_size": meta["hidden_size"], "intermediate_size": meta["intermediate_size"],
        "num_hidden_layers": meta["n_layers"], "num_attention_heads": meta["n_heads"],
        "num_key_value_heads": meta["n_kv_heads"], "head_dim": meta["head_dim"],
        "max_position_embeddings": meta["max_position_embeddings"], "rms_norm_eps": meta["rms_norm_eps"],
        "rope_theta": meta["rope_theta"], "tie_word_embeddings": meta["tie_word_embeddings"], "hidden_act": "silu",
    }
    if meta.get("rope_scaling"):
        config["rope_scaling"] = meta["rope_scaling"]
    if meta["family"] == "qwen2":
        config["use_sliding_window"] = False
    else:
        config["attention_bias"] = bool(meta.get("attention_bias", False))
    return config


def hf_full(config: dict, ids: list[int], new_tokens: int, device: str, dtype) -> dict:
    import gc
    import torch
    try:
        return _hf_full(config, ids, new_tokens, device, dtype)
    except torch.OutOfMemoryError as exc:
        error = str(exc).splitlines()[0]
    gc.collect()  # the exception's frames held the model and its activations until here
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"hf_oom": True, "hf_error": error}


def random_hf_model(config: dict, device: str, dtype):
    """transformers' model of `config`'s shape, randomly initialised on `device` (timing only)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device(device):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=dtype).eval()


def _hf_full(config: dict, ids: list[int], new_tokens: int, device: str, dtype) -> dict:
    import torch
    model = random_hf_model(config, device, dtype)
    x = torch.tensor([ids], device=device)
    with torch.no_grad():
        model(x[:, :2048], logits_to_keep=1)  # warm-up
        _sync(device)
        _reset_peak(device)
        t0 = time.perf_counter()
        out = model(x, use_cache=True, logits_to_keep=1)
        _sync(device)
        prefill = time.perf_counter() - t0
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1):
            out = model(token, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        _sync(device)
        decode = time.perf_counter() - t1
    peak = _peak(device)
    attention = getattr(model.config, "_attn_implementation", None)
    del model, past, out
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"hf_prefill_s": prefill, "hf_decode_s": decode, "hf_total_s": prefill + decode, "hf_peak_bytes": peak,
            "hf_new_tokens": new_tokens, "hf_attention": attention}


def index_row(args, doc: Path, index_dir: Path, flags: list[str], sae_layers: list[int], meta: dict) -> dict:
    summary = run([str(args.binary), "index", "--model", str(args.model), "--sae", str(args.sae), "--input", str(doc),
                   "--out", str(index_dir), "--overwrite", "--chunk", str(args.chunk), "--device", args.device,
                   "--dtype", args.dtype, "--json", *flags])
    keys = ("warmup_s", "scan_s", "commit_s", "indexer_busy_s", "buffer_wait_s", "drain_s", "tokenize_s", "tokenize_wait_s",
            "peak_device_bytes", "postings", "bytes_per_posting", "file_bytes")
    row = {"what": "index", "tokens": summary["tokens"], "layers": sae_layers, "chunk": args.chunk,
           **{k: summary[k] for k in keys}, "model": meta.get("architecture"), "hidden": meta["hidden_size"]}
    if "dense" in summary:  # --dense-model: the passages' embedding time and count
        row["dense"] = summary["dense"]
    return row


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
    p.add_argument("--hf-config", help="HF config.json of the same shape, or 'model' (from MODEL/model.json)")
    p.add_argument("--hf-max-tokens", type=int, help="transformers only up to this many tokens")
    p.add_argument("--every-length", action="store_true", help="ask (and transformers) at every length")
    p.add_argument("--new-tokens", type=int, default=128, help="tokens generated by ask and transformers")
    p.add_argument("--binary", type=Path, default=REPO / "build" / "s3attn")
    p.add_argument("--question", default="What did the author work on before college?")
    p.add_argument("--out", required=True, type=Path, help="work directory (documents, indexes)")
    p.add_argument("--rows", type=Path, help="JSONL file for the rows (default OUT/bench_index.jsonl)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help="also index the main length with these extra s3attn index flags (repeatable)")
    args = p.parse_args()
    rows = args.rows or args.out / "bench_index.jsonl"
    provenance = stamp(args.binary, args.device)
    import torch
    dtype = getattr(torch, args.dtype)
    args.out.mkdir(parents=True, exist_ok=True)
    sae_layers = json.loads((args.sae / "sae.json").read_text())["layers"]
    meta = json.loads((args.model / "model.json").read_text())
    hf_config = None
    if args.hf_config == "model":
        hf_config = hf_config_from_model(meta)
    elif args.hf_config:
        hf_config = json.loads(Path(args.hf_config).read_text())
    text = TokenizedText(args.text.read_text(), args.model / "tokenizer.json", max(args.tokens))
    # Flush what earlier steps wrote (a 16 GB model export, say): its writeback would otherwise
    # compete with the index commit's fsync and be charged to s3attn.
    os.sync()
    for i, n in enumerate(args.tokens):
        doc_text, ids = text.prefix(n)
        doc = args.out / f"doc_{n}.txt"
        doc.write_text(doc_text)
        index_dir = args.out / f"index_{n}"
        row = index_row(args, doc, index_dir, [], sae_layers, meta)
        row.update(bare_chunked_forward(args.model, ids, sae_layers, args.chunk, args.device, dtype))
        add_ratios(row)
        emit(rows, row, provenance)
        if i == 0:
            # The same build with other s3attn flags, against the same bare forward.
            for spec in args.variant:
                name, _, flags = spec.partition("=")
                variant = index_row(args, doc, args.out / f"index_{n}_{name}", flags.split(), sae_layers, meta)
                variant["variant"] = name
                variant["flags"] = flags
                variant["bare_forward_s"] = row["bare_forward_s"]
                add_ratios(variant)
                emit(rows, variant, provenance)
        if i > 0 and not args.every_length:
            continue
        ask = run([str(args.binary), "ask", "--index", str(index_dir), "--question", args.question, "--budget", "2048",
                   "--max-new-tokens", str(args.new_tokens), "--ignore-stop", "--device", args.device, "--dtype",
                   args.dtype, "--json"])
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
        if hf_config and (args.hf_max_tokens is None or n <= args.hf_max_tokens):
            ask_row.update(hf_full(hf_config, ids, args.new_tokens, args.device, dtype))
            if not ask_row.get("hf_oom"):
                ask_row["hf_over_ask"] = ask_row["hf_total_s"] / ask_row["ask_s"]
                ask_row["hf_over_index_plus_ask"] = ask_row["hf_total_s"] / (ask_row["ask_s"] + ask_row["index_s"])
                ask_row["hf_prefill_over_index"] = ask_row["hf_prefill_s"] / ask_row["index_s"]
        emit(rows, ask_row, provenance)
        if args.every_length:
            shutil.rmtree(index_dir, ignore_errors=True)  # up to ~0.5 GB per million tokens
    return 0


if __name__ == "__main__":
    sys.exit(main())
