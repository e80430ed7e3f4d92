"""scripts/synth_report.py on hand-made run directories and scaling rows: the goals it checks, the
tables, the log-log slope and the plots (no model; the real pipeline is test_synth_suite.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import synth_report as SR


def make_run(path: Path, method: str, tasks: dict, window: int = 8192) -> None:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"method": method, "model": {
        "path": "models/default", "max_position_embeddings": window}}))
    for task, task_rows in tasks.items():
        (path / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in task_rows))


def row(_id, pred, answers, recall=None, control=None):
    r = {"_id": _id, "pred": pred, "answers": answers, "all_classes": None, "length": 1}
    if recall is not None:
        r.update(evidence_recall=recall, control_evidence_recall=control)
    return r


def niah(n_right, n, recall, control=None):
    return [row(f"s{i}", "1234567" if i < n_right else "no", ["1234567"], recall, control) for i in range(n)]


def test_loglog_slope():
    assert SR.loglog_slope([(1000, 2.0), (2000, 4.0), (8000, 16.0)]) == pytest.approx(1.0)
    assert SR.loglog_slope([(1000, 3.0), (4000, 3.0)]) == pytest.approx(0.0)
    assert SR.loglog_slope([(1000, 1.0)]) is None
    assert SR.loglog_slope([(1000, 1.0), (2000, None)]) is None


def test_goals_tables_and_plots(tmp_path, capsys):
    runs = tmp_path / "out" / "runs"
    # 4K: full and s3-hybrid (full fits the 8K window); 128K = 16x the window: s3-hybrid and s3.
    make_run(runs / "4096" / "full", "full", {"niah_single": niah(4, 4, 1.0), "cwe": [row("c", "a b", ["a", "b"])]})
    make_run(runs / "4096" / "s3-hybrid", "s3-hybrid", {"niah_single": niah(3, 4, 1.0, 0.25),
                                                        "cwe": [row("c", "a", ["a", "b"])]})
    make_run(runs / "131072" / "s3-hybrid", "s3-hybrid", {"niah_single": niah(2, 4, 1.0, 0.0),
                                                          "niah_multikey": niah(1, 4, 0.75, 0.0)})
    make_run(runs / "131072" / "s3", "s3", {"niah_single": niah(0, 4, 0.25, 0.25)})
    scaling = tmp_path / "out" / "scaling"
    scaling.mkdir()
    lines = []
    for n, s, peak in ((32768, 1.0, 100), (131072, 4.0, 100), (524288, 16.0, 101)):
        lines.append({"what": "index", "tokens": n, "scan_s": s - 0.1, "commit_s": 0.1, "warmup_s": 0.2,
                      "peak_device_bytes": peak * 2**20, "bare_forward_s": s / 1.2})
        ask = {"what": "ask", "tokens": n, "ask_s": 0.5}
        ask.update({"hf_oom": True} if n > 131072 else {"hf_prefill_s": s * 3, "hf_peak_bytes": n * 2**16})
        lines.append(ask)
    (scaling / "bench_index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    assert SR.main([str(tmp_path / "out"), "--label", "test model"]) == 0
    md = (tmp_path / "out" / "report" / "synth_results.md").read_text()
    # niah_multikey recall 75 % < 95 %; niah_single 100 %; at 4K: full (100 + 100) / 2 = 100,
    # s3-hybrid (75 + 50) / 2 = 62.5: more than 5 points below
    assert "s3-hybrid on niah_single at 16× the window (128K): 100.0 % (goal ≥ 95 %): met." in md
    assert "s3-hybrid on niah_multikey at 16× the window (128K): 75.0 % (goal ≥ 95 %): missed." in md
    assert "at 4K, the longest length full fits: full 100.00, s3-hybrid 62.50 (goal: within 5 points): missed." in md
    # columns full, s3, s3-hybrid; brackets: the scorer's bootstrap interval (all 1 or all 0: a point)
    lo, hi = SR.LS.score_ci([1, 1, 1, 0])
    assert f"| niah_single | 4K | 4 | 100.00 [100.00, 100.00] | – | 75.00 [{lo:.2f}, {hi:.2f}] |" in md
    lo, hi = SR.LS.score_ci([1, 1, 0, 0])
    assert f"| niah_single | 128K | 4 | – | 0.00 [0.00, 0.00] | 50.00 [{lo:.2f}, {hi:.2f}] |" in md
    assert "| cwe | 4K | 1 | 100.00 | – | 50.00 |" in md  # one sample: no interval
    assert "| niah_single | 128K | – | 25.0 (25.0) | 100.0 (0.0) |" in md
    assert "| niah_single | 4K | 100.0 | – | 100.0 (25.0) |" in md
    assert "| 524,288 | 16.00 | 13.33 | 0.50 | 0.10 | OOM | OOM |" in md
    assert "log-log slope 1.00 (1 = linear)" in md
    assert "(max / min 1.010)" in md
    report = json.loads((tmp_path / "out" / "report" / "synth_results.json").read_text())
    assert report["cells"]["4096"]["full"]["niah_single"]["score_ci95"] == [100.0, 100.0]
    assert report["window"] == 8192 and report["cells"]["131072"]["s3"]["niah_single"]["control_evidence_recall"] == 0.25
    for png in ("scores_vs_length.png", "recall_vs_length.png", "scaling.png"):
        assert (tmp_path / "out" / "report" / png).read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert SR.main([str(tmp_path / "nothing")]) == 1
    assert capsys.readouterr().err.startswith("synth_report: error: ")
    make_run(tmp_path / "o" / "runs" / "4096" / "s3", "s3", {"hotpotqa": [row("a", "x", ["x"])]})
    assert SR.main([str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "not a synthetic task: hotpotqa" in err and err.count("\n") == 1
