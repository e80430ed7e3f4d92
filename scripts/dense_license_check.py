#!/usr/bin/env python3
"""A small relevance check of dense retrieval (docs/dense.md): questions over the GPL-3 and Apache-2.0
licence texts, each with a phrase of the section that answers it.

    scripts/dense_license_check.py --index DIR [--methods dense,bm25] [--budget 128] [--bin build/s3attn]
        [--dense-model DIR] [--json OUT]

The index holds /usr/share/common-licenses/GPL-3 and Apache-2.0, built with --dense-model, e.g.
    build/s3attn index --model models/default --sae models/default/sae \\
        --input /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 \\
        --dense-model models/all-minilm-l6-v2 --out runs/licenses
For each question and method: `s3attn ask --evidence-only --json`; a hit when the phrase is in the
evidence (whitespace normalised), and where the best-scored range comes from and whether it holds the
phrase. The phrases were taken from the licence texts before any retrieval was run.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (question, licence the answer is in, phrase of the answering section)
QUESTIONS = [
    ("How long do I have to fix a violation before my rights under the license are terminated?", "GPL-3",
     "30 days after your receipt of the notice"),
    ("Can I charge money for copies of the program that I give to others?", "GPL-3",
     "You may charge any price or no price for each copy"),
    ("Do I have to give users the information needed to install modified software on a consumer device?",
     "GPL-3", "Installation Information"),
    ("If I distribute the program as object code, how must I make the corresponding source available?", "GPL-3",
     "Corresponding Source"),
    ("Does a contributor grant me a license to their patents?", "Apache-2.0", "Grant of Patent License"),
    ("What happens to my patent license if I sue someone claiming the work infringes a patent?", "Apache-2.0",
     "institute patent litigation against any entity"),
    ("Am I allowed to use the licensor's trademarks or product names?", "Apache-2.0",
     "does not grant permission to use the trade"),
    ("What must I do with the NOTICE file when I redistribute the work?", "Apache-2.0", "NOTICE"),
    ("Is the software provided with any warranty?", "either", "WITHOUT WARRANT"),
    ("Can I offer support or accept liability obligations for a fee?", "Apache-2.0",
     "Accepting Warranty or Additional Liability"),
]


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--methods", default="dense,bm25")
    p.add_argument("--budget", type=int, default=128)
    p.add_argument("--bin", type=Path, default=REPO / "build" / "s3attn")
    p.add_argument("--dense-model", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    rows = []
    for question, licence, phrase in QUESTIONS:
        for method in a.methods.split(","):
            cmd = [str(a.bin), "ask", "--index", str(a.index), "--question", question, "--method", method,
                   "--budget", str(a.budget), "--evidence-only", "--json"]
            if a.dense_model is not None and method in ("dense", "s3-dense"):
                cmd += ["--dense-model", str(a.dense_model)]
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            ev = out["evidence"]
            text = norm(" ".join(e["text"] for e in ev))
            best = max(ev, key=lambda e: e["score"]) if ev else None
            row = {"question": question, "licence": licence, "phrase": phrase, "method": method,
                   "hit": norm(phrase) in text,
                   "best_doc": Path(best["doc"]).name if best else None,
                   "best_has_phrase": bool(best) and norm(phrase) in norm(best["text"]),
                   "best_score": best["score"] if best else None,
                   "best_text": best["text"][:160] if best else None,
                   "evidence_tokens": out["evidence_tokens"]}
            rows.append(row)
            print(f"{method:9s} hit={row['hit']!s:5s} best={row['best_doc']:<11s} "
                  f"best_has_phrase={row['best_has_phrase']!s:5s} | {question}", flush=True)
    summary = {m: {"hits": sum(r["hit"] for r in rows if r["method"] == m),
                   "best_has_phrase": sum(r["best_has_phrase"] for r in rows if r["method"] == m),
                   "questions": len(QUESTIONS)} for m in a.methods.split(",")}
    print(json.dumps(summary))
    if a.json:
        a.json.write_text(json.dumps({"budget": a.budget, "summary": summary, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
