#!/usr/bin/env python3
"""Peak memory and time of s3attn on one long single-line document against the same text in lines.

    python3 scripts/bench_long_line.py --bin LABEL=PATH [--bin LABEL=PATH ...] [--mode tokenize|index]
        [--bytes 50000000] [--tokenizer FILE] [--model DIR --sae DIR] [--timeout S]

Writes two documents of --bytes bytes: `one_line`, the Paul Graham essays of $S3ATTN_DATA/haystack
with every run of whitespace made one space, repeated, without a newline; and `lines`, the same
text with every ". " made ".\\n" (same size, ~30,000 lines of ~80 bytes per MB). Then runs each
binary under /usr/bin/time -v on each document:

- `--mode tokenize`: `s3attn tokenize --tokenizer FILE --input DOC` (the tokenizer alone; default
  FILE: models/default/tokenizer.json);
- `--mode index`: `s3attn index --model DIR --sae DIR --input DOC --out TMP` (tokenizer, model
  forward, SAE and index writer; --model and --sae are required).

Prints one JSON row per run (peak RSS, CPU and wall time, and a check that the binaries agree: a
hash of tokenize's ids, or index's token count) and a markdown table. Wall time depends on the
machine's load; CPU time (user + system) much less. Compare binaries on the same machine, in the
same run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_line_text(data: Path, size: int) -> bytes:
    essays = " ".join(json.loads((data / "haystack" / "PaulGrahamEssays.json").read_text())["text"].split())
    unit = (essays + " ").encode("utf-8")
    text = (unit * (size // len(unit) + 1))[:size]
    return text.decode("utf-8", errors="ignore").encode("utf-8")  # whole characters only


def timed(command: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, timeout=timeout)
    err = proc.stderr.decode("utf-8", errors="replace")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.*)", err).group(1).strip()

    wall = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    return proc, {"exit": proc.returncode,
                  "peak_rss_mib": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
                  "cpu_s": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 2),
                  "wall_s": round(sum(x * 60 ** i for i, x in enumerate(reversed(wall))), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", action="append", required=True, help="LABEL=PATH of an s3attn binary")
    p.add_argument("--mode", choices=["tokenize", "index"], default="tokenize")
    p.add_argument("--bytes", type=int, default=50_000_000)
    p.add_argument("--tokenizer", type=Path, default=REPO / "models" / "default" / "tokenizer.json")
    p.add_argument("--model", type=Path)
    p.add_argument("--sae", type=Path)
    p.add_argument("--timeout", type=float, default=3600)
    args = p.parse_args()
    if args.mode == "index" and not (args.model and args.sae):
        p.error("--mode index needs --model and --sae")
    data = Path(os.environ.get("S3ATTN_DATA", REPO.parent / "shared" / "data"))
    binaries = [tuple(b.split("=", 1)) for b in args.bin]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        line = one_line_text(data, args.bytes)
        docs = {"one_line": Path(tmp) / "one_line.txt", "lines": Path(tmp) / "lines.txt"}
        docs["one_line"].write_bytes(line)
        docs["lines"].write_bytes(line.replace(b". ", b".\n"))
        for doc_name, doc in docs.items():
            for label, binary in binaries:
                if args.mode == "tokenize":
                    command = [binary, "tokenize", "--tokenizer", str(args.tokenizer), "--input", str(doc)]
                else:
                    out = Path(tmp) / "index"
                    command = [binary, "index", "--model", str(args.model), "--sae", str(args.sae), "--input",
                               str(doc), "--out", str(out), "--overwrite"]
                proc, row = timed(command, args.timeout)
                if args.mode == "tokenize":
                    row["tokens"] = len(proc.stdout.split())
                    row["ids_xxh"] = hashlib.sha256(proc.stdout).hexdigest()[:16]
                else:
                    summary = re.search(rb"indexed \d+ documents, (\d+) tokens", proc.stdout + proc.stderr)
                    row["tokens"] = int(summary.group(1)) if summary else None
                row = {"binary": label, "doc": doc_name, "bytes": doc.stat().st_size,
                       "lines": line.count(b". ") + 1 if doc_name == "lines" else 1, **row}
                if proc.returncode != 0:
                    row["error"] = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:]
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(f"\n`s3attn {args.mode}`, {args.bytes:,} bytes:\n")
    print("| binary | document | tokens | peak RSS | CPU s | wall s |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['binary']} | {r['doc']} | {r['tokens'] or 0:,} | {r['peak_rss_mib']:,.0f} MiB | {r['cpu_s']:.1f} "
              f"| {r['wall_s']:.1f} |")


if __name__ == "__main__":
    main()
