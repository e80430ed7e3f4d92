#!/usr/bin/env python3
"""Tables and plots of a synthetic-suite run (scripts/gpu_synth.sh; docs/synthetic.md).

    scripts/synth_report.py OUT_DIR [--label NAME] [--report DIR]

OUT_DIR holds runs/<length>/<method>/ (s3attn longbench run directories) and, optionally,
scaling/bench_index.jsonl (scripts/bench_index.py --every-length). Every run is scored with
scripts/longbench_score.py (each run directory gets its results.json / results.md); the report
directory (default OUT_DIR/report) gets:
  synth_results.md    score, evidence recall and control recall per task, length and method; the
                      issue's goals checked; the scaling table with its log-log slope
  synth_results.json  the same numbers
  scores_vs_length.png, recall_vs_length.png, scaling.png
Exit status 1 with one line on stderr for a bad input.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import longbench_score as LS  # noqa: E402
from synth_tasks import TASKS, length_name  # noqa: E402

PROG = "synth_report"
METHOD_ORDER = ("full", "bm25", "s3", "s3-hybrid", "dense")
GOAL_TASKS = ("niah_single", "niah_multikey")  # evidence recall of s3-hybrid >= 95 % at 16x the window
GOAL_RECALL = 0.95
GOAL_MARGIN = 5.0  # s3-hybrid's average score within 5 points of full where full fits


class ReportError(Exception):
    pass


def method_key(method: str):
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def load(out: Path) -> tuple[dict, int | None, str | None]:
    """{length: {method: {task: TaskResult}}}, the model's window and its path, scoring every run."""
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        raise ReportError(f"{runs_dir}: no such directory (scripts/gpu_synth.sh writes it)")
    cells: dict[int, dict[str, dict]] = {}
    window = model = None
    for length_dir in sorted(runs_dir.iterdir(), key=lambda p: (not p.name.isdigit(), p.name)):
        if not length_dir.is_dir():
            continue
        if not length_dir.name.isdigit():
            raise ReportError(f"{length_dir}: a length directory must be named by its token count")
        for run_dir in sorted(p for p in length_dir.iterdir() if p.is_dir()):
            try:
                run = LS.load_run(run_dir)
                results = LS.score_run(run)
            except LS.ScoreError as exc:
                raise ReportError(str(exc)) from None
            LS.write_run_results(run, results, False)
            unknown = [t for t in results if t not in TASKS]
            if unknown:
                raise ReportError(f"{run_dir}: not a synthetic task: {', '.join(unknown)}")
            cells.setdefault(int(length_dir.name), {})[run.method] = results
            m = run.manifest.get("model")
            if isinstance(m, dict):
                window = m.get("max_position_embeddings", window)
                model = m.get("path", model)
    if not cells:
        raise ReportError(f"{runs_dir}: no run directories")
    return cells, window, model


def goals(cells: dict, window: int | None) -> list[str]:
    """The issue's goals, checked on the data (a goal whose length was not run says so)."""
    lines = []
    if window is None:
        return ["The model's window is not in the manifests: goals not checked."]
    at = 16 * window
    hybrid = cells.get(at, {}).get("s3-hybrid")
    if hybrid is None:
        lines.append(f"- Evidence recall of s3-hybrid at 16× the window ({length_name(at)}): not run.")
    else:
        for task in GOAL_TASKS:
            r = hybrid.get(task)
            value = None if r is None else r.evidence_recall
            verdict = "not run" if value is None else ("met" if value >= GOAL_RECALL else "missed")
            shown = "–" if value is None else f"{100 * value:.1f} %"
            lines.append(f"- Evidence recall of s3-hybrid on {task} at 16× the window ({length_name(at)}): "
                         f"{shown} (goal ≥ {100 * GOAL_RECALL:.0f} %): {verdict}.")
    fits = [n for n in cells if "full" in cells[n] and "s3-hybrid" in cells[n]]
    if not fits:
        lines.append("- Answer accuracy of s3-hybrid against full: no length has both.")
    else:
        n = max(fits)
        common = [t for t in cells[n]["full"] if t in cells[n]["s3-hybrid"]]
        full = LS.average(cells[n]["full"][t].score for t in common)
        hyb = LS.average(cells[n]["s3-hybrid"][t].score for t in common)
        verdict = "met" if hyb >= full - GOAL_MARGIN else "missed"
        lines.append(f"- Average score over {len(common)} tasks at {length_name(n)}, the longest length full "
                     f"fits: full {full:.2f}, s3-hybrid {hyb:.2f} (goal: within {GOAL_MARGIN:.0f} points): {verdict}.")
    return lines


def read_scaling(path: Path) -> list[dict]:
    """One row per length: index (s3attn), bare forward, ask and transformers' prefill."""
    if not path.is_file():
        return []
    by_tokens: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("variant"):
            continue
        entry = by_tokens.setdefault(row["tokens"], {"tokens": row["tokens"]})
        if row.get("what") == "index":
            entry.update(index_s=row["scan_s"] + row["commit_s"], warmup_s=row["warmup_s"],
                         index_peak_bytes=row["peak_device_bytes"], bare_forward_s=row.get("bare_forward_s"))
        elif row.get("what") == "ask":
            entry.update(ask_s=row["ask_s"], hf_prefill_s=row.get("hf_prefill_s"),
                         hf_peak_bytes=row.get("hf_peak_bytes"), hf_oom=row.get("hf_oom", False))
    return [by_tokens[t] for t in sorted(by_tokens)]


def loglog_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log y against log x (1 = linear growth, 0 = flat)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x and y and x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def score_cell(r) -> str:
    """The score with its 95 % bootstrap interval over the samples (scripts/longbench_score.py)."""
    if r.samples < 2:
        return LS._fmt(r.score)
    lo, hi = LS.score_ci(r.per_sample)
    return f"{LS._fmt(r.score)} [{LS._fmt(lo)}, {LS._fmt(hi)}]"


def gib(b) -> str:
    return "–" if b is None else f"{b / 2**30:.2f}"


def secs(s) -> str:
    return "–" if s is None else f"{s:.2f}"


def markdown(cells, window, model, scaling, label) -> str:
    lengths = sorted(cells)
    methods = sorted({m for n in cells for m in cells[n]}, key=method_key)
    tasks = [t for t in TASKS if any(t in cells[n].get(m, {}) for n in lengths for m in methods)]
    out = [f"# Synthetic suite: {label}", ""]
    out.append(f"Model `{model}` (window {window} tokens). Scores: RULER's string match (scripts/longbench_score.py), "
               "100 × the mean per-sample score, with its 95 % bootstrap interval over the samples in brackets; "
               "n = samples per task and length. Evidence recall: share of the "
               "needles in the context the model saw; control: in the evidence of an unrelated question "
               "(docs/synthetic.md).")
    out += ["", "## Goals", ""] + goals(cells, window)
    out += ["", "## Scores", "", "| task | length | n | " + " | ".join(methods) + " |",
            "|---|---:|---:|" + "---:|" * len(methods)]
    for t in tasks:
        for n in lengths:
            if not any(t in cells[n].get(m, {}) for m in methods):
                continue
            samples = max(cells[n][m][t].samples for m in methods if t in cells[n].get(m, {}))
            vals = [score_cell(cells[n][m][t]) if t in cells[n].get(m, {}) else "–" for m in methods]
            out.append(f"| {t} | {length_name(n)} | {samples} | " + " | ".join(vals) + " |")
    recall_tasks = [t for t in tasks if TASKS[t].needles]
    out += ["", "## Evidence recall % (control recall %)", "",
            "| task | length | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    for t in recall_tasks:
        for n in lengths:
            if not any(t in cells[n].get(m, {}) for m in methods):
                continue
            vals = []
            for m in methods:
                r = cells[n].get(m, {}).get(t)
                if r is None or r.evidence_recall is None:
                    vals.append("–")
                elif r.control_evidence_recall is None:
                    vals.append(LS._pct(r.evidence_recall))
                else:
                    vals.append(f"{LS._pct(r.evidence_recall)} ({LS._pct(r.control_evidence_recall)})")
            out.append(f"| {t} | {length_name(n)} | " + " | ".join(vals) + " |")
    if scaling:
        out += ["", "## Scaling (one process alone on the GPU; scripts/bench_index.py --every-length)", "",
                "| tokens | index s | bare forward s | ask s | index peak GiB | transformers prefill s | "
                "transformers peak GiB |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in scaling:
            hf = "OOM" if r.get("hf_oom") else secs(r.get("hf_prefill_s"))
            hf_peak = "OOM" if r.get("hf_oom") else gib(r.get("hf_peak_bytes"))
            out.append(f"| {r['tokens']:,} | {secs(r.get('index_s'))} | {secs(r.get('bare_forward_s'))} | "
                       f"{secs(r.get('ask_s'))} | {gib(r.get('index_peak_bytes'))} | {hf} | {hf_peak} |")
        big = [r for r in scaling if r["tokens"] >= 32768]
        slope = loglog_slope([(r["tokens"], r.get("index_s")) for r in big])
        peaks = [r["index_peak_bytes"] for r in scaling if r.get("index_peak_bytes")]
        out.append("")
        if slope is not None:
            out.append(f"Index time against tokens from 32K on: log-log slope {slope:.2f} (1 = linear).")
        if peaks:
            out.append(f"Index peak GPU memory: {gib(min(peaks))}–{gib(max(peaks))} GiB over "
                       f"{scaling[0]['tokens']:,}–{scaling[-1]['tokens']:,} tokens (max / min {max(peaks) / min(peaks):.3f}).")
    return "\n".join(out) + "\n"


def plots(cells, scaling, label, report: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted(cells)
    methods = sorted({m for n in cells for m in cells[n]}, key=method_key)
    tasks = [t for t in TASKS if any(t in cells[n].get(m, {}) for n in lengths for m in methods)]
    written = []

    def grid(names, title, value, ylabel, control=False):
        cols = min(4, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
        for ax, t in zip(axes.flat, names):
            for k, m in enumerate(methods):
                pts = [(n, value(cells[n][m][t])) for n in lengths if t in cells[n].get(m, {})]
                pts = [(n, v) for n, v in pts if v is not None]
                if pts:
                    line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
                if control:
                    cpts = [(n, cells[n][m][t].control_evidence_recall) for n in lengths if t in cells[n].get(m, {})]
                    cpts = [(n, 100 * v) for n, v in cpts if v is not None]
                    if cpts:
                        ax.plot([p[0] for p in cpts], [p[1] for p in cpts], linestyle="--", marker="x",
                                color=line.get_color() if pts else None, alpha=0.6, label=f"{m} control")
            ax.set_xscale("log", base=2)
            ax.set_xticks(lengths)
            ax.set_xticklabels([length_name(n) for n in lengths], fontsize=7)
            ax.set_ylim(-5, 105)
            ax.set_title(t, fontsize=9)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        axes.flat[0].set_ylabel(ylabel)
        axes.flat[0].legend(fontsize=6)
        fig.suptitle(f"{title} — {label}")
        fig.tight_layout()
        return fig

    fig = grid(tasks, "Score against length", lambda r: r.score, "score")
    path = report / "scores_vs_length.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    recall_tasks = [t for t in tasks if TASKS[t].needles]
    if recall_tasks:
        fig = grid(recall_tasks, "Evidence recall (dashed: control question)",
                   lambda r: None if r.evidence_recall is None else 100 * r.evidence_recall, "evidence recall %",
                   control=True)
        path = report / "recall_vs_length.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    if scaling:
        fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
        xs = [r["tokens"] for r in scaling]
        series = [("s3attn index", "index_s", "o-"), ("s3attn ask (index built)", "ask_s", "s-"),
                  ("bare chunked forward", "bare_forward_s", ".:"), ("transformers full prefill", "hf_prefill_s", "^-")]
        for name, key, style in series:
            pts = [(r["tokens"], r[key]) for r in scaling if r.get(key)]
            if pts:
                ax_t.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name)
        ax_t.set_xscale("log")
        ax_t.set_yscale("log")
        ax_t.set_xlabel("document tokens")
        ax_t.set_ylabel("seconds")
        ax_t.set_title("Time")
        ax_t.grid(alpha=0.3, which="both")
        ax_t.legend(fontsize=7)
        for name, key, style in (("s3attn index", "index_peak_bytes", "o-"),
                                 ("transformers full prefill", "hf_peak_bytes", "^-")):
            pts = [(r["tokens"], r[key] / 2**30) for r in scaling if r.get(key)]
            if pts:
                ax_m.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name)
        ooms = [r["tokens"] for r in scaling if r.get("hf_oom")]
        for x in ooms:
            ax_m.axvline(x, color="red", alpha=0.3, linestyle="--")
        ax_m.set_xscale("log")
        ax_m.set_yscale("log")
        ax_m.set_xlabel("document tokens")
        ax_m.set_ylabel("peak GPU memory (GiB)")
        ax_m.set_title("Peak GPU memory" + (" (red: transformers out of memory)" if ooms else ""))
        ax_m.grid(alpha=0.3, which="both")
        ax_m.legend(fontsize=7)
        fig.suptitle(f"Scaling — {label}")
        fig.tight_layout()
        path = report / "scaling.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def to_json(cells, window, model, scaling) -> dict:
    return {
        "model": model, "window": window,
        "cells": {str(n): {m: {t: {"score": r.score, "samples": r.samples, "metric": r.metric,
                                   "score_ci95": LS.score_ci(r.per_sample) if r.samples > 1 else None,
                                   "evidence_recall": r.evidence_recall,
                                   "control_evidence_recall": r.control_evidence_recall}
                               for t, r in res.items()} for m, res in cells[n].items()} for n in sorted(cells)},
        "scaling": scaling,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="synth_report.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="OUT_DIR of scripts/gpu_synth.sh")
    p.add_argument("--label", default=None, help="the model's name in titles (default: its path)")
    p.add_argument("--report", type=Path, help="output directory (default OUT_DIR/report)")
    args = p.parse_args(argv)
    try:
        cells, window, model = load(args.out)
        scaling = read_scaling(args.out / "scaling" / "bench_index.jsonl")
    except (ReportError, OSError, json.JSONDecodeError, KeyError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    label = args.label or str(model)
    report = args.report or args.out / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "synth_results.md").write_text(markdown(cells, window, model, scaling, label), encoding="utf-8")
    (report / "synth_results.json").write_text(json.dumps(to_json(cells, window, model, scaling), indent=2) + "\n")
    for path in [report / "synth_results.md", report / "synth_results.json", *plots(cells, scaling, label, report)]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
