#!/usr/bin/env python3
"""Many questions on one document, as users ask them: s3attn (index once, then answer every question)
against transformers with the document's KV cache computed once and reused for every question.
Total seconds and peak GPU memory of both, in one run (docs/performance.md).

    python3 scripts/bench_questions.py --model MODEL_DIR --sae SAE_DIR --text FILE --tokens 131072 \
        [--questions FILE] [--new-tokens 128] [--method s3-hybrid] [--budget 2048] \
        [--device cuda] [--dtype bfloat16] [--hf-config model] --out WORK_DIR [--rows ROWS.jsonl]

s3attn, each step a process as a user runs it: `s3attn index` of the first --tokens tokens of --text,
then (a) one `ask --questions-file` process answering every question, and (b) one `ask` process
per question; wall seconds of each (process start and model load included) and the peak device
memory the index and the asks report. transformers (a randomly initialised model of the exported
model's shape, --hf-config model, as scripts/bench_index.py; up to --hf-max-tokens): the document
prefilled once, then for each question its tokens appended to the cached document, --new-tokens
greedy tokens, and the cache cropped back to the document (DynamicCache.crop: the best case of
reuse, no copy); its peak device memory. --questions holds one question per line (default: ten
questions about the Paul Graham essays). One JSON row, then a markdown line.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_index import TokenizedText, _peak, _reset_peak, _sync, emit, hf_config_from_model, random_hf_model
from provenance import stamp

REPO = Path(__file__).resolve().parents[1]

DEFAULT_QUESTIONS = [
    "What did the author work on before college?",
    "Why did the author switch from philosophy to AI?",
    "What programming language did the author write his first programs in?",
    "What was Viaweb and what happened to it?",
    "What is Y Combinator and how did it start?",
    "What does the author say about painting?",
    "How does the author describe the role of essays?",
    "What advice does the author give to startup founders about users?",
    "What does the author think about working on hard problems?",
    "How did the author come to write Lisp in his own way?",
]


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_questions: {' '.join(cmd[:2])} failed: {proc.stderr.strip()[-2000:]}")
    return wall, proc.stdout


def hf_questions(config: dict, doc_ids: list[int], questions: list[list[int]], new_tokens: int, device: str,
                 dtype) -> dict:
    import torch
    from transformers import DynamicCache
    model = random_hf_model(config, device, dtype)
    doc = torch.tensor([doc_ids], device=device)
    with torch.no_grad():
        model(doc[:, :256], logits_to_keep=1)  # warm-up
        _sync(device)
        _reset_peak(device)
        t0 = time.perf_counter()
        cache = DynamicCache(config=model.config)
        model(doc, past_key_values=cache, use_cache=True, logits_to_keep=1)
        _sync(device)
        prefill = time.perf_counter() - t0
        t1 = time.perf_counter()
        for q in questions:
            out = model(torch.tensor([q], device=device), past_key_values=cache, use_cache=True, logits_to_keep=1)
            token = out.logits[:, -1:].argmax(-1)
            for _ in range(new_tokens - 1):
                out = model(token, past_key_values=cache, use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
            cache.crop(len(doc_ids))  # back to the document alone, for the next question
        _sync(device)
        answering = time.perf_counter() - t1
    peak = _peak(device)
    del model, cache
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"hf_prefill_s": prefill, "hf_questions_s": answering, "hf_total_s": prefill + answering,
            "hf_peak_bytes": peak}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--sae", required=True, type=Path)
    p.add_argument("--text", required=True, type=Path)
    p.add_argument("--tokens", type=int, default=131072)
    p.add_argument("--questions", type=Path, help="one question per line (default: ten built in)")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--method", default="s3-hybrid")
    p.add_argument("--budget", type=int, default=2048)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--hf-config", help="HF config.json of the same shape, or 'model' (from MODEL/model.json)")
    p.add_argument("--hf-max-tokens", type=int, help="transformers only up to this many tokens")
    p.add_argument("--binary", type=Path, default=REPO / "build" / "s3attn")
    p.add_argument("--out", required=True, type=Path, help="work directory (document, index, questions)")
    p.add_argument("--rows", type=Path, help="JSONL file for the row (default OUT/bench_questions.jsonl)")
    args = p.parse_args()
    questions = ([q.strip() for q in args.questions.read_text().splitlines() if q.strip()] if args.questions
                 else DEFAULT_QUESTIONS)
    if not questions:
        p.error("--questions holds no question")
    if args.new_tokens < 1:
        p.error("--new-tokens must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = args.rows or args.out / "bench_questions.jsonl"
    meta = json.loads((args.model / "model.json").read_text())
    text = TokenizedText(args.text.read_text(), args.model / "tokenizer.json", args.tokens)
    doc_text, doc_ids = text.prefix(args.tokens)
    doc = args.out / "document.txt"
    doc.write_text(doc_text)
    qfile = args.out / "questions.txt"
    qfile.write_text("\n".join(questions) + "\n")
    b = str(args.binary)
    device = ["--device", args.device, "--dtype", args.dtype]

    index_s, out = timed([b, "index", "--model", str(args.model), "--sae", str(args.sae), "--input", str(doc),
                          "--out", str(args.out / "index"), "--overwrite", "--json", *device])
    indexed = json.loads(out)
    ask = [b, "ask", "--index", str(args.out / "index"), "--method", args.method, "--budget", str(args.budget),
           "--max-new-tokens", str(args.new_tokens), "--ignore-stop", "--json", *device]
    batch_s, out = timed([*ask, "--questions-file", str(qfile)])
    answers = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(answers) != len(questions):
        raise SystemExit(f"bench_questions: ask answered {len(answers)} of {len(questions)} questions")
    separate_s, separate_peak = 0.0, 0
    for q in questions:
        wall, out = timed([*ask, "--question", q])
        separate_s += wall
        separate_peak = max(separate_peak, json.loads(out)["timings"]["peak_device_bytes"])
    row = {"what": "questions", "tokens": indexed["tokens"], "questions": len(questions),
           "new_tokens": args.new_tokens, "method": args.method, "budget": args.budget, "dtype": args.dtype,
           "s3attn_index_s": index_s, "s3attn_index_peak_bytes": indexed["peak_device_bytes"],
           "s3attn_ask_one_process_s": batch_s,
           "s3attn_ask_peak_bytes": max(a["timings"]["peak_device_bytes"] for a in answers),
           "s3attn_ask_per_process_s": separate_s, "s3attn_ask_per_process_peak_bytes": separate_peak,
           "s3attn_total_s": index_s + batch_s}
    if args.hf_config and (args.hf_max_tokens is None or len(doc_ids) <= args.hf_max_tokens):
        import torch
        from tokenizers import Tokenizer
        config = (hf_config_from_model(meta) if args.hf_config == "model"
                  else json.loads(Path(args.hf_config).read_text()))
        tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
        q_ids = [tok.encode("\n\nQuestion: " + q + "\nAnswer:", add_special_tokens=False).ids for q in questions]
        row.update(hf_questions(config, doc_ids, q_ids, args.new_tokens, args.device, getattr(torch, args.dtype)))
        row["total_ratio"] = row["hf_total_s"] / row["s3attn_total_s"]
    emit(rows, row, stamp(args.binary, args.device))
    hf = (f"transformers {row['hf_total_s']:.2f} s (prefill {row['hf_prefill_s']:.2f} s), peak "
          f"{row['hf_peak_bytes'] / 2**30:.2f} GiB; ratio {row['total_ratio']:.2f}×") if "hf_total_s" in row else "no reference"
    print(f"| {row['tokens']} tokens, {len(questions)} questions | s3attn index {index_s:.2f} s + ask {batch_s:.2f} s "
          f"(one process; {separate_s:.2f} s as {len(questions)} processes) | {hf} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
