"""Tests of scripts/evidence_examples.py: pairing two runs, the loss / win / tie counts, coverage of the
gold answer by the recorded evidence, the retrieval-miss rule, and the error path."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "evidence_examples.py"


def write_run(path: Path, method: str, rows: list[dict]) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"method": method, "model": "m", "label": method}))
    with (path / "leval_financial_qa.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps({"all_classes": None, "length": 10, "evaluation": "f1", **r}) + "\n")
    return path


def row(i, pred, evidence=None):
    r = {"_id": i, "pred": pred, "answers": ["the harbor closed in 1907"], "input": f"question {i}?"}
    if evidence is not None:
        r["evidence"] = evidence
    return r


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_losses_misses_and_examples(tmp_path):
    s3 = write_run(tmp_path / "s3", "s3", [
        row("a", "unknown", "the weather was fine"),                     # loss, answer not in evidence: a miss
        row("b", "no idea", "The harbor closed in 1907, said the clerk"),  # loss, answer held: not a miss
        row("c", "harbor closed in 1907", "harbor closed 1907"),         # tie (both right)
        row("d", "harbor closed in 1907", "harbor closed in 1907"),      # win
    ])
    bm25 = write_run(tmp_path / "bm25", "bm25", [
        row("a", "harbor closed in 1907", "the harbor closed in 1907"),
        row("b", "closed in 1907", "the harbor closed in 1907"),
        row("c", "harbor closed in 1907", "harbor closed in 1907"),
        row("d", "nothing", "nothing here"),
    ])
    proc = run_script(s3, bm25, "--examples", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # gold words after normalization (articles dropped): {harbor, closed, in, 1907} -> coverage of s3's
    # evidence: a 0, b 1, c 0.75, d 1 -> mean 0.69; bm25: 1, 1, 1, 0 -> 0.75.
    assert "| leval_financial_qa | 4 | 2 | 1 | 1 | 0.69 | 0.75 | 1 | 1 |" in out
    # The largest loss (a: 0 against 100) is the example shown, with the question and the coverage.
    assert "### leval_financial_qa `a`" in out and "question a?" in out
    assert "coverage of the gold answer: s3 0.00, bm25 1.00" in out
    assert "`b`" not in out


def test_against_full_without_evidence(tmp_path):
    s3 = write_run(tmp_path / "s3", "s3", [row("a", "unknown", "harbor closed in 1907")])
    full = write_run(tmp_path / "full", "full", [row("a", "harbor closed in 1907")])
    proc = run_script(s3, full)
    assert proc.returncode == 0, proc.stderr
    # full records no evidence: its coverage is unknown, and the loss counts as answer-in-evidence.
    assert "| leval_financial_qa | 1 | 1 | 0 | 0 | 1.00 | – | 0 | 1 |" in proc.stdout


def test_run_without_evidence_is_refused(tmp_path):
    a = write_run(tmp_path / "a", "s3", [row("a", "x")])
    b = write_run(tmp_path / "b", "bm25", [row("a", "y")])
    proc = run_script(a, b)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no recorded evidence" in proc.stderr
