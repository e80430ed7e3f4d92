#!/usr/bin/env python3
"""Why a retrieval method loses: reads two runs of `s3attn longbench --record-evidence` (or one
such run against a `full` run), pairs their samples, and for every sample where the first run
scores below the second tells whether its evidence missed the answer or held it.

A gold answer's *coverage* by an evidence text is the fraction of the answer's distinct
normalized words (LongBench's normalization: lower case, no punctuation or articles) found among
the evidence's words. A loss is a *retrieval miss* when the first run's coverage is at least 0.2
below the second's (for a `full` run, the second's evidence is the whole context, not recorded:
then only the first run's coverage is known), else the evidence held as much of the answer and the
model did not use it. Prints a Markdown report: per task, the losses, wins and ties, the mean
coverage of both runs, how many losses were retrieval misses, and the first N losses with the
question, both answers and an excerpt of the evidence around the answer's words.

Usage:
  .venv/bin/python scripts/evidence_examples.py RUN_A RUN_B [--examples 3] [--chars 400] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from longbench_score import ScoreError, load_run, normalize_answer, sample_scores, task_spec  # noqa: E402

MISS_MARGIN = 0.2


def words(text: str) -> set[str]:
    return set(normalize_answer(text).split())


def coverage(answer_words: set[str], evidence: str | None) -> float | None:
    if evidence is None or not answer_words:
        return None
    return len(answer_words & words(evidence)) / len(answer_words)


def best_answer(answers: list) -> str:
    """The longest gold answer (L-Eval and LongBench rows may list several)."""
    texts = [a for a in answers if isinstance(a, str)]
    return max(texts, key=len) if texts else ""


def excerpt(evidence: str, answer_words: set[str], chars: int) -> str:
    """`chars` characters of the evidence around the first place where most answer words meet."""
    if not evidence:
        return ""
    low = evidence.lower()
    best, best_at = -1, 0
    step = max(chars // 4, 1)
    for start in range(0, max(len(low) - chars, 0) + 1, step):
        window = set(normalize_answer(low[start:start + chars]).split())
        hit = len(window & answer_words)
        if hit > best:
            best, best_at = hit, start
    text = evidence[best_at:best_at + chars].replace("\n", " ")
    return ("…" if best_at else "") + text + ("…" if best_at + chars < len(evidence) else "")


def quote(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def compare(run_a, run_b, examples: int, chars: int) -> str:
    la = run_a.manifest.get("label") or run_a.method
    lb = run_b.manifest.get("label") or run_b.method
    lines = [f"# Where {la} loses to {lb}", "",
             f"Runs: `{run_a.path}` ({la}) and `{run_b.path}` ({lb}). Coverage: the share of the gold "
             "answer's distinct normalized words found in a run's evidence (`full`: not recorded, shown as –). "
             f"A loss is a retrieval miss when {la}'s coverage is at least {MISS_MARGIN} below {lb}'s.", "",
             f"| task | samples | {la} < {lb} | {la} > {lb} | ties | coverage {la} | coverage {lb} "
             "| losses: retrieval miss | losses: answer in evidence |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    details = []
    for task in sorted(set(run_a.tasks) & set(run_b.tasks)):
        rows_a = {r["_id"]: r for r in run_a.tasks[task]}
        rows_b = {r["_id"]: r for r in run_b.tasks[task]}
        ids = [i for i in rows_a if i in rows_b]
        if not ids:
            continue
        spec = task_spec(task, [rows_a[i] for i in ids])
        sa = sample_scores(spec, [rows_a[i] for i in ids])
        sb = sample_scores(spec, [rows_b[i] for i in ids])
        cov_a, cov_b, losses, wins, misses, held = [], [], [], 0, 0, 0
        for i, a, b in zip(ids, sa, sb):
            gold = words(best_answer(rows_a[i]["answers"]))
            ca = coverage(gold, rows_a[i].get("evidence"))
            cb = coverage(gold, rows_b[i].get("evidence"))
            if ca is not None:
                cov_a.append(ca)
            if cb is not None:
                cov_b.append(cb)
            if a < b:
                losses.append((i, a, b, ca, cb))
                if ca is not None and cb is not None and ca <= cb - MISS_MARGIN:
                    misses += 1
                elif ca is not None and (cb is None or ca > cb - MISS_MARGIN):
                    held += 1
            elif a > b:
                wins += 1
        mean = lambda v: f"{sum(v) / len(v):.2f}" if v else "–"  # noqa: E731
        ties = len(ids) - len(losses) - wins
        lines.append(f"| {task} | {len(ids)} | {len(losses)} | {wins} | {ties} | {mean(cov_a)} | {mean(cov_b)} "
                     f"| {misses} | {held} |")
        # The examples: the largest losses first.
        losses.sort(key=lambda x: x[1] - x[2])
        for i, a, b, ca, cb in losses[:examples]:
            ra, rb = rows_a[i], rows_b[i]
            gold_text = best_answer(ra["answers"])
            gold = words(gold_text)
            fmt = lambda c: "–" if c is None else f"{c:.2f}"  # noqa: E731
            details += [f"### {task} `{i}`: {la} {100 * a:.1f} vs {lb} {100 * b:.1f}", "",
                        f"- question: {quote(ra.get('input', '(not recorded)'), 300)}",
                        f"- gold: {quote(gold_text, 300)}",
                        f"- {la} answered: {quote(ra['pred'], 300)}",
                        f"- {lb} answered: {quote(rb['pred'], 300)}",
                        f"- coverage of the gold answer: {la} {fmt(ca)}, {lb} {fmt(cb)}"]
            for label, row in ((la, ra), (lb, rb)):
                if row.get("evidence"):
                    details.append(f"- {label}'s evidence ({len(row['evidence'])} characters), near the answer: "
                                   f"“{excerpt(row['evidence'], gold, chars)}”")
            details.append("")
    return "\n".join(lines + [""] + details)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", type=Path, help="the run whose losses are explained (with recorded evidence)")
    ap.add_argument("run_b", type=Path, help="the run it is compared with (bm25, full, ...)")
    ap.add_argument("--examples", type=int, default=3, help="losses shown per task (largest first)")
    ap.add_argument("--chars", type=int, default=400, help="characters of evidence shown per example")
    ap.add_argument("--out", type=Path, help="write the report here (default: standard output)")
    args = ap.parse_args(argv)
    try:
        run_a, run_b = load_run(args.run_a), load_run(args.run_b)
        if not any("evidence" in r for rows in run_a.tasks.values() for r in rows):
            raise ScoreError(f"{args.run_a}: no recorded evidence (run it with s3attn longbench --record-evidence)")
        report = compare(run_a, run_b, args.examples, args.chars)
    except ScoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")
    else:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
