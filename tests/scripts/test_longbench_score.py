"""Tests of scripts/longbench_score.py: LongBench / L-Eval metrics on hand-derived cases, run-directory
merging, the written results, the side-by-side table and plots, and the error paths.

Every expected value is derived by hand in the comment next to it, from the rules of LongBench's
metrics.py / eval.py (and L-Eval's auto_eval.py / em.py) as documented in docs/longbench.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "longbench_score.py"
sys.path.insert(0, str(ROOT / "scripts"))

import longbench_score as LS  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def row(pred, answers, _id, all_classes=None, length=1000, **extra):
    return {"pred": pred, "answers": answers, "all_classes": all_classes, "length": length, "_id": _id, **extra}


def write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def make_run(path: Path, method: str, tasks: dict, model="smollm2-135m", **manifest) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps({"method": method, "model": model, **manifest}))
    for name, rows in tasks.items():
        write_jsonl(path / f"{name}.jsonl", rows)
    return path


def point_row(md: str, first_cell: str) -> str:
    """The first table row of `md` starting with `first_cell`, with the bootstrap intervals removed."""
    import re
    line = next(l for l in md.splitlines() if l.startswith(f"| {first_cell} |"))
    return re.sub(r" \[[^\]]*\]", "", line)


def results(path: Path) -> dict:
    return json.loads((path / "results.json").read_text())


def fails(argv, capsys, *needles) -> str:
    """Runs main(argv) in-process; asserts exit status 1 and exactly one stderr line with needles."""
    assert LS.main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("longbench_score: error: "), err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------


def test_normalize_answer():
    # lowercase -> drop ASCII punctuation ("U.S.A." -> "usa") -> drop whole words a/an/the (not the
    # "an" inside "anthem") -> collapse whitespace.
    assert LS.normalize_answer("The  U.S.A.'s  national Anthem!") == "usas national anthem"
    assert LS.normalize_answer("A cat, an owl & the dog") == "cat owl dog"
    # Chinese: lowercase, drop ASCII + LongBench's Chinese punctuation, remove every whitespace.
    # LongBench's list has "》" but not "《", so "《" survives.
    assert LS.normalize_zh_answer("《北京》 ABC，你好。") == "《北京abc你好"


def test_qa_f1_score():
    # pred  "The cat sat on the mat."    -> [cat, sat, on, mat]          (4 tokens)
    # gold  "A cat was sitting on a mat" -> [cat, was, sitting, on, mat] (5 tokens)
    # overlap {cat, on, mat} = 3; P = 3/4, R = 3/5; F1 = 2PR/(P+R) = 0.9/1.35 = 2/3
    assert LS.qa_f1_score("The cat sat on the mat.", "A cat was sitting on a mat") == pytest.approx(2 / 3)
    # multiset overlap: pred [paris, paris, paris], gold [paris] -> overlap min(3,1) = 1;
    # P = 1/3, R = 1; F1 = (2/3)/(4/3) = 0.5
    assert LS.qa_f1_score("Paris Paris Paris", "paris") == pytest.approx(0.5)
    assert LS.qa_f1_score("usa", "U.S.A.") == 1.0  # punctuation removed inside words
    assert LS.qa_f1_score("the", "Paris") == 0.0  # pred normalizes to no tokens -> 0
    assert LS.qa_f1_score("London", "Paris") == 0.0


def test_qa_f1_zh_score():
    import jieba

    # jieba segments "我爱北京" as [我, 爱, 北京] and "北京。" as [北京, 。]; "。" normalizes to "" and is dropped.
    assert list(jieba.cut("我爱北京", cut_all=False)) == ["我", "爱", "北京"]
    assert list(jieba.cut("北京。", cut_all=False)) == ["北京", "。"]
    # pred [我, 爱, 北京] vs gold [北京]: overlap 1, P = 1/3, R = 1 -> F1 = (2/3)/(4/3) = 0.5
    assert LS.qa_f1_zh_score("我爱北京", "北京。") == pytest.approx(0.5)
    assert LS.qa_f1_zh_score("北京", "北京。") == 1.0


def test_rouge_score():
    # rouge 1.0.1 ROUGE-L (summary level, exclusive=True): texts are split into sentences at ".",
    # m / n = number of DISTINCT words of reference / hypothesis, the union LCS is a set of distinct
    # words, F = 2 * (P*R / (P + R + 1e-8)).
    # hyp "the cat sat on the mat" (distinct {the,cat,sat,on,mat}: n = 5)
    # ref "the cat lay on the mat" (distinct {the,cat,lay,on,mat}: m = 5)
    # LCS = "the cat on the mat" (5 words) -> as a set {the, cat, on, mat} = 4; P = R = 4/5
    expected = 2.0 * ((0.8 * 0.8) / (0.8 + 0.8 + 1e-8))
    assert LS.rouge_score("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(expected, rel=1e-12)
    # Sentence order does not matter at summary level: hyp sentences ["c d", "a b"], ref ["a b c d"];
    # LCS(ref, "c d") = {c, d}, LCS(ref, "a b") = {a, b}; union 4; m = n = 4 -> P = R = 1
    assert LS.rouge_score("c d. a b", "a b c d") == pytest.approx(2.0 * (1.0 / (2.0 + 1e-8)), rel=1e-12)
    # An empty hypothesis (also "...", which has no sentence left) raises inside the package -> 0.0.
    assert LS.rouge_score("", "a b c") == 0.0
    assert LS.rouge_score("...", "a b c") == 0.0


def test_rouge_score_recursion_quirk():
    # The package rebuilds the LCS recursively; one sentence of 1,050 identical words needs a recursion
    # depth > 1,000, the RecursionError lands in LongBench's catch-all, and the official score is 0.0.
    text = " ".join(f"w{i}" for i in range(1050))
    assert LS.rouge_score(text, text) == 0.0


def test_rouge_zh_score():
    # jieba: "我爱北京" -> "我 爱 北京", "我爱上海" -> "我 爱 上海"; LCS {我, 爱} = 2; m = n = 3;
    # P = R = 2/3 -> F = 2 * ((4/9) / (4/3 + 1e-8))
    assert LS.rouge_zh_score("我爱北京", "我爱上海") == pytest.approx(2.0 * ((4 / 9) / (4 / 3 + 1e-8)), rel=1e-12)
    assert LS.rouge_zh_score("我爱北京", "我爱北京") == pytest.approx(2.0 * (1.0 / (2.0 + 1e-8)), rel=1e-12)


def test_classification_score():
    classes = ["human", "human being", "location", "entity"]
    assert LS.classification_score("location", "location", all_classes=classes) == 1.0
    assert LS.classification_score("entity", "location", all_classes=classes) == 0.0
    # found (class order) = [human, human being, location]; "human" is a proper substring of the gold
    # "human being" -> removed; the iteration then moves on to index 1 = "location" (skipping
    # "human being"), which is kept -> [human being, location]; gold among 2 -> 1/2
    assert LS.classification_score("human being or location", "human being", all_classes=classes) == 0.5
    # LongBench's skip quirk: classes [a, ab, abc], pred "abc", gold "abc": found [a, ab, abc];
    # "a" removed, the loop skips "ab" (now at index 0) and sees "abc" = gold -> [ab, abc] -> 1/2
    # (a careful implementation would drop "ab" too and give 1.0).
    assert LS.classification_score("abc", "abc", all_classes=["a", "ab", "abc"]) == 0.5


def test_retrieval_and_count_scores():
    # numbers in pred [12, 3]; gold id 12 -> 1 hit of 2 -> 0.5
    assert LS.retrieval_score("Paragraph 12 and Paragraph 3", "Paragraph 12") == 0.5
    assert LS.retrieval_score("Paragraph 120", "Paragraph 12") == 0.0  # "120" != "12"
    assert LS.retrieval_score("I do not know", "Paragraph 12") == 0.0  # no number -> 0
    assert LS.retrieval_zh_score("段落5", "段落5") == 1.0
    assert LS.retrieval_zh_score("段落5和段落15", "段落5") == 0.5  # [5, 15] -> 1/2
    # numbers [4, 10]; gold 4 -> 1/2
    assert LS.count_score("There are 4 unique paragraphs out of 10", "4") == 0.5
    assert LS.count_score("4", "4") == 1.0
    assert LS.count_score("four", "4") == 0.0


def test_code_sim_score():
    # difflib ratio = 2M/T: "x = 1" vs "x = 2": M = 4 ("x = "), T = 10 -> 0.8 -> fuzz 80 -> 0.8
    assert LS.code_sim_score("x = 1", "x = 2") == 0.8
    # "abc" vs "abd": M = 2, T = 6 -> 0.667 -> fuzz rounds to 67 -> 0.67
    assert LS.code_sim_score("abc", "abd") == 0.67
    # lines containing "`", "#" or "//" ANYWHERE are skipped (not only leading); leading "\n" dropped
    pred = "\n```python\nx = 1  # one\n// note\nreturn a + b\n```"
    assert LS.code_sim_score(pred, "return a + b") == 1.0
    # no usable line -> "" -> fuzz.ratio("", gold) = 0
    assert LS.code_sim_score("# only a comment", "return a + b") == 0.0


def test_dataset_table_is_eval_py():
    table = {
        "narrativeqa": "qa_f1_score", "qasper": "qa_f1_score", "multifieldqa_en": "qa_f1_score",
        "multifieldqa_zh": "qa_f1_zh_score", "hotpotqa": "qa_f1_score", "2wikimqa": "qa_f1_score",
        "musique": "qa_f1_score", "dureader": "rouge_zh_score", "gov_report": "rouge_score",
        "qmsum": "rouge_score", "multi_news": "rouge_score", "vcsum": "rouge_zh_score",
        "trec": "classification_score", "triviaqa": "qa_f1_score", "samsum": "rouge_score",
        "lsht": "classification_score", "passage_retrieval_en": "retrieval_score",
        "passage_count": "count_score", "passage_retrieval_zh": "retrieval_zh_score",
        "lcc": "code_sim_score", "repobench-p": "code_sim_score",
    }
    assert {k: f.__name__ for k, f in LS.DATASET2METRIC.items()} == table
    assert LS.FIRST_LINE_TASKS == ("trec", "triviaqa", "samsum", "lsht")
    assert LS.task_spec("qasper_e").metric == "qa_f1_score"  # LongBench-E file names


def test_first_line_cut_and_max_over_answers():
    pred = "\n\nParis\nLondon is also nice"
    # triviaqa cuts to "Paris": max(F1 vs "Paris" = 1, F1 vs "the city of Paris") = 1
    # hotpotqa does not: [paris, london, is, also, nice] vs [paris]: P = 1/5, R = 1 -> F1 = 1/3;
    # vs [city, of, paris]: overlap 1, P = 1/5, R = 1/3 -> F1 = (2/15)/(8/15) = 0.25; max = 1/3
    rows = [row(pred, ["Paris", "the city of Paris"], "1")]
    assert LS.score_task("triviaqa", rows).score == 100.0
    assert LS.score_task("hotpotqa", rows).score == 33.33
    # trec: "location\nentity" cut to "location" -> 1.0; uncut both classes match -> 1/2
    classes = ["location", "entity"]
    assert LS.score_task("trec", [row("location\nentity", ["location"], "1", classes)]).score == 100.0
    assert LS.sample_scores(LS.task_spec("trec"), [row("location entity", ["location"], "1", classes)]) == [0.5]
    # task score = round(100 * mean, 2): samples 1 and 2/3 (first test above) -> 83.333 -> 83.33
    rows = [row("Paris", ["Paris"], "a"), row("The cat sat on the mat.", ["A cat was sitting on a mat"], "b")]
    assert LS.score_task("narrativeqa", rows).score == 83.33
    assert LS.score_task("narrativeqa", [row("x", [], "a")]).score == 0.0  # no gold answer -> 0


def test_longbench_e_buckets():
    # lengths 100, 5000, 9000, 3999 -> 0-4k: [1, 0], 4-8k: [1], 8k+: [0]
    # (per-sample scores 1, 1, 0, 0: "a b" vs gold "a b" is F1 1, "zzz" shares nothing)
    rows = [row("a b", ["a b"], "1", length=100), row("a b", ["a b"], "2", length=5000),
            row("zzz", ["a b"], "3", length=9000), row("zzz", ["a b"], "4", length=3999)]
    res = LS.score_task("hotpotqa", rows, buckets=True)
    assert res.buckets == {"0-4k": 50.0, "4-8k": 100.0, "8k+": 0.0}
    res = LS.score_task("hotpotqa", rows[:1], buckets=True)
    assert res.buckets == {"0-4k": 100.0, "4-8k": None, "8k+": None}  # empty bucket -> null


# ------------------------------------------------------------------------------------------------
# L-Eval
# ------------------------------------------------------------------------------------------------


def test_leval_choice_extraction():
    # gold: A-D letters of the first whitespace token
    assert LS.leval_gold_choice("(B) Their subconscious knew ...") == "B"
    assert LS.leval_gold_choice("ACD") == "ACD"
    assert LS.leval_gold_choice("none of these") == "A"  # no letter -> L-Eval's "A"
    single = lambda r: LS.leval_predicted_choice(r, multi_answer=False)  # noqa: E731
    multi = lambda r: LS.leval_predicted_choice(r, multi_answer=True)  # noqa: E731
    assert single("(B) Their subconscious") == "B"  # first A-D character
    assert single("Answer: (B)") == "A"  # ... wherever it is: the "A" of "Answer" (L-Eval quirk)
    assert single("   ") == "None"  # blank -> "None", matches nothing
    assert single("the answer is c") == "A"  # no capital A-D anywhere -> random-guess fallback "A"
    assert single("BC") == "BC"  # a substring of "ABCD" is taken as is
    assert multi("AC") == "AC"  # leading run of >1 letters -> sorted set
    assert multi(" AB") == "AB"  # no leading run, no "X " option -> first run of A-D letters
    assert multi("C. D.") == "CD"  # capitals followed by "." / whitespace / ")" -> C, D
    # "A, C and D": leading run "A"; then options = capitals followed by whitespace/./) -> " C";
    # the final "D" has no character after it and is missed -> "AC" (as L-Eval does)
    assert multi("A, C and D") == "AC"


def test_leval_exam_scores():
    assert LS.leval_exam_score("B", "B") == 1.0
    assert LS.leval_exam_score("A", "B") == 0.0
    assert LS.leval_exam_score("AC", "ACD") == 0.25  # subset of the gold options -> 0.25
    assert LS.leval_exam_score("ABD", "ACD") == 0.0  # B is wrong -> 0
    assert LS.leval_exam_score("None", "A") == 0.0
    # task level: quality (single answer) and coursera (several letters)
    quality = [row("(B) because ...", ["(B) Their subconscious"], "q1"),
               row("Answer: (B)", ["(B) Their subconscious"], "q2"),  # -> "A": wrong
               row("C", ["(C) x"], "q3"), row("", ["(D) y"], "q4")]
    # per sample 1, 0, 1, 0 -> 50.00
    assert LS.score_task("leval_quality", quality).score == 50.0
    coursera = [row("ACD", ["ACD"], "c1"), row("A, C and D", ["ACD"], "c2"), row("B", ["B"], "c3")]
    # per sample 1, 0.25 ("AC" subset of "ACD"), 1 -> 2.25/3 = 0.75 -> 75.00
    assert LS.score_task("leval_coursera", coursera).score == 75.0


def test_leval_f1():
    # L-Eval normalization keeps case: pred [For, roughly, one, year], gold [For, roughly, 1, one, year]
    # overlap 4; P = 1, R = 4/5 -> F1 = 1.6/1.8 = 8/9
    assert LS.leval_f1_score("For roughly one year", "For roughly 1 one year.") == pytest.approx(8 / 9)
    # lowercase "for" no longer matches "For": overlap 3, P = 3/4, R = 3/5 -> 2/3
    assert LS.leval_f1_score("for roughly one year", "For roughly 1 one year.") == pytest.approx(2 / 3)
    rows = [row("For roughly one year", ["For roughly 1 one year."], "m1"), row("no", ["yes"], "m2")]
    # (8/9 + 0)/2 = 0.4444 -> 44.44
    assert LS.score_task("leval_multidoc_qa", rows).score == 44.44
    # an unlisted L-Eval task is accepted when its rows carry L-Eval's "evaluation" field
    assert LS.task_spec("leval_legal_contract_qa", [{"evaluation": "f1"}]).kind == "leval-f1"
    # open-ended files label documents by the judge L-Eval's authors used; all are scored with F1
    mixed = [{"evaluation": "f1"}, {"evaluation": "LLM"}, {"evaluation": "human"}]
    assert LS.task_spec("leval_financial_qa", mixed).kind == "leval-f1"
    with pytest.raises(LS.ScoreError, match="disagree"):
        LS.task_spec("leval_quality", [{"evaluation": "exam"}, {"evaluation": "f1"}])


def test_ruler_string_match():
    refs = ["1234567", "QAVMA", "7654321"]
    # all: share of the references in the prediction, case-insensitive: 1234567 and qavma -> 2/3
    assert LS.string_match_all("The numbers: 1234567, qavma.", refs) == pytest.approx(2 / 3)
    assert LS.string_match_all("1234567 QAVMA 7654321", refs) == 1.0
    assert LS.string_match_all("nothing", refs) == 0.0 and LS.string_match_all("x", []) == 0.0
    # part: any reference (alternatives)
    assert LS.string_match_part("the answer is Qavma", refs) == 1.0
    assert LS.string_match_part("nothing", refs) == 0.0 and LS.string_match_part("x", []) == 0.0
    # RULER's post-processing: control characters become newlines, then strip; a reference split
    # by a tab no longer matches across it
    assert LS.ruler_postprocess("\t 12\x0b34 \n") == "12\n34"
    assert LS.string_match_all("12\t34", ["12 34"]) == 0.0
    # every synthetic task of scripts/synth_tasks.py has a metric, after L-Eval in the task order
    import synth_tasks
    for task, d in synth_tasks.TASKS.items():
        spec = LS.task_spec(task)
        assert spec.kind == "ruler" and spec.metric == d.metric
    assert LS.task_spec("qa_1").metric == "string_match_part"
    assert LS.task_order(["vt", "leval_quality", "niah_single", "hotpotqa"]) == [
        "hotpotqa", "leval_quality", "niah_single", "vt"]
    # the per-sample score takes the whole list of references, not the max over them
    rows = [row("7 and 8", ["7", "8", "9"], "a"), row("none", ["7"], "b"), row("9", ["9"], "c")]
    assert LS.score_task("niah_multivalue", rows).score == round(100 * (2 / 3 + 0 + 1) / 3, 2) == 55.56


def test_evidence_recall_columns(tmp_path, capsys):
    rows = [row("1234567", ["1234567"], "a", evidence_recall=1.0, control_evidence_recall=0.0),
            row("no", ["7654321"], "b", evidence_recall=0.5, control_evidence_recall=1.0),
            row("no", ["1111111"], "c", evidence_recall=None, control_evidence_recall=None)]
    run = make_run(tmp_path / "runs" / "s3", "s3", {"niah_single": rows, "cwe": [row("a b", ["a", "b"], "d")]})
    full = make_run(tmp_path / "runs" / "full", "full", {"niah_single": [dict(r, control_evidence_recall=None)
                                                                          for r in rows]})
    assert LS.main([str(full), str(run)]) == 0
    assert results(run) == {"niah_single": 33.33, "cwe": 100.0}
    md = (run / "results.md").read_text()
    assert "| evidence recall % | control recall % |" in md
    # means over the rows that record them: (1 + 0.5) / 2 = 75 %, (0 + 1) / 2 = 50 %
    assert "| niah_single | string_match_all | 3 | 33.33 | 75.0 | 50.0 |" in md
    assert "| cwe | string_match_all | 1 | 100.00 | – | – |" in md
    compare = json.loads((tmp_path / "runs" / "longbench_compare.json").read_text())
    by_label = {r["label"]: r for r in compare["runs"]}
    assert by_label["s3"]["evidence_recall"]["niah_single"] == 0.75
    assert by_label["full"]["control_evidence_recall"]["niah_single"] is None
    bad = make_run(tmp_path / "bad", "s3", {"niah_single": [row("x", ["x"], "a", evidence_recall=1.5)]})
    fails([bad], capsys, "evidence_recall", "[0, 1]")
    capsys.readouterr()


# ------------------------------------------------------------------------------------------------
# run directories
# ------------------------------------------------------------------------------------------------


def test_shards_are_merged_and_deduplicated(tmp_path, capsys):
    run = make_run(tmp_path / "run", "s3", {})
    a, b, c = row("Paris", ["Paris"], "1"), row("London", ["Paris"], "2"), row("Rome", ["Rome"], "3")
    write_jsonl(run / "hotpotqa.rank0-of2.jsonl", [a, b])
    write_jsonl(run / "hotpotqa.rank1-of2.jsonl", [dict(b, timings={"s": 2.0}), c])  # same scored fields
    assert LS.main([str(run)]) == 0
    # merged samples 1, 2, 3 (the repeat of 2 dropped): scores 1, 0, 1 -> 66.67
    assert results(run) == {"hotpotqa": 66.67}
    assert "| hotpotqa | qa_f1_score | 3 | 66.67 |" in (run / "results.md").read_text()
    # a conflicting duplicate (different pred for the same _id) is refused
    write_jsonl(run / "hotpotqa.rank1-of2.jsonl", [dict(b, pred="Paris"), c])
    fails([run], capsys, "conflicting duplicates of _id 2", "pred")
    # a missing shard is refused
    (run / "hotpotqa.rank1-of2.jsonl").unlink()
    fails([run], capsys, "missing shard", "hotpotqa.rank1-of2.jsonl")


def test_results_json_and_md(tmp_path, capsys):
    run = make_run(tmp_path / "run", "full", {
        "hotpotqa": [row("Paris", ["Paris"], "1", evidence_tokens=100),
                     row("London", ["Paris"], "2", evidence_tokens=300)],  # 1, 0 -> 50.00
        "passage_count": [row("4", ["4"], "1")],  # 100.00
    })
    assert LS.main([str(run)]) == 0
    assert list(results(run).items()) == [("hotpotqa", 50.0), ("passage_count", 100.0)]
    md = (run / "results.md").read_text()
    assert "# LongBench scores: full on smollm2-135m" in md
    assert "| task | metric | samples | score | mean evidence tokens |" in md
    assert "| hotpotqa | qa_f1_score | 2 | 50.00 | 200.0 |" in md  # mean of 100 and 300
    assert "| passage_count | count_score | 1 | 100.00 | – |" in md
    assert "| **average** |  | 3 | **75.00** |  |" in md  # (50 + 100) / 2
    assert not (run / "results_e.json").exists()
    assert LS.main([str(run), "--e"]) == 0
    assert json.loads((run / "results_e.json").read_text())["passage_count"] == {"0-4k": 100.0, "4-8k": None, "8k+": None}
    assert results(run) == {"hotpotqa": 50.0, "passage_count": 100.0}  # unchanged by --e
    capsys.readouterr()


def test_side_by_side_with_retention_and_plots(tmp_path, capsys):
    gold = ["Paris"]
    tasks_full = {"hotpotqa": [row("Paris", gold, "1", evidence_tokens=4000),
                               row("Paris", gold, "2", evidence_tokens=6000)],  # 100
                  "passage_count": [row("4", ["4"], "1", evidence_tokens=5000),
                                    row("4 or 5", ["4"], "2", evidence_tokens=5000)]}  # (1 + 0.5)/2 -> 75
    tasks_s3 = {"hotpotqa": [row("Paris", gold, "1", evidence_tokens=500),
                             row("Rome", gold, "2", evidence_tokens=500)],  # 50
                "passage_count": [row("4", ["4"], "1", evidence_tokens=500),
                                  row("5", ["4"], "2", evidence_tokens=500)]}  # 50
    full = make_run(tmp_path / "runs" / "full", "full", tasks_full)
    s3 = make_run(tmp_path / "runs" / "s3", "s3", tasks_s3, budget=512)
    bm25 = make_run(tmp_path / "runs" / "bm25", "bm25", {"hotpotqa": tasks_full["hotpotqa"]}, budget=512)
    assert LS.main([str(s3), str(full), str(bm25)]) == 0
    out = tmp_path / "runs"  # default: the first run's parent
    md = (out / "longbench_compare.md").read_text()
    # retention = score / full × 100: s3 hotpotqa 50/100 = 50 %, passage_count 50/75 = 66.67 %;
    # bm25 hotpotqa 100/100 = 100 %, no passage_count.
    assert "| task | s3@512 | full | bm25@512 | s3@512 retention % | bm25@512 retention % |" in md
    assert point_row(md, "hotpotqa") == "| hotpotqa | 50.00 | 100.00 | 100.00 | 50.00 | 100.00 |"
    assert point_row(md, "passage_count") == "| passage_count | 50.00 | 75.00 | – | 66.67 | – |"
    # averages over the task every run has (hotpotqa only)
    assert point_row(md, "**average**") == "| **average** | **50.00** | **100.00** | **100.00** | **50.00** | **100.00** |"
    # intervals: two questions scored 1 and 0 resample to means 0, 50 or 100; a constant run has none
    assert "| hotpotqa | 50.00 [0.00, 100.00] | 100.00 [100.00, 100.00] | 100.00 [100.00, 100.00] |" in md
    assert "over the 1 task(s) every run has: hotpotqa" in md
    summary = json.loads((out / "longbench_compare.json").read_text())
    assert summary["baseline"] == "full"
    assert summary["runs"][0]["retention"] == {"hotpotqa": 50.0, "passage_count": 66.67}
    assert summary["runs"][0]["mean_evidence_tokens"] == {"hotpotqa": 500.0, "passage_count": 500.0}
    for name in ("scores_per_task.png", "retention_per_task.png", "evidence_vs_score.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000, name
    # --baseline and --out-dir: the baseline need not be among RUN_DIRs
    other = tmp_path / "cmp"
    assert LS.main([str(s3), "--baseline", str(full), "--out-dir", str(other)]) == 0
    assert point_row((other / "longbench_compare.md").read_text(), "hotpotqa") == "| hotpotqa | 100.00 | 50.00 | 50.00 |"
    assert all((other / n).read_bytes()[:8] == PNG_MAGIC for n in
               ("scores_per_task.png", "retention_per_task.png", "evidence_vs_score.png"))
    capsys.readouterr()


# ------------------------------------------------------------------------------------------------
# error paths: one line on stderr, exit 1 (argparse usage errors: exit 2), no traceback
# ------------------------------------------------------------------------------------------------


def test_runs_with_the_same_label_are_told_apart(tmp_path, capsys):
    """Two runs of one method from two studies (the same label and directory name): each column is
    named by the shortest tail of its path that differs; a label that does not repeat stays bare."""
    tasks = {"hotpotqa": [row("Paris", ["Paris"], "1")]}
    a = make_run(tmp_path / "study-a" / "leval" / "s3", "s3", tasks, label="s3")
    b = make_run(tmp_path / "study-b" / "leval" / "s3", "s3", tasks, label="s3")
    full = make_run(tmp_path / "study-a" / "leval" / "full", "full", tasks)
    assert LS.main([str(full), str(a), str(b), "--out-dir", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "longbench_compare.md").read_text()
    assert "| task | full | s3 (study-a/leval/s3) | s3 (study-b/leval/s3) |" in md
    runs = [LS.load_run(p) for p in (a, tmp_path / "study-a" / "leval" / "full")]
    assert LS.run_labels(runs) == ["s3", "full"]


def test_errors(tmp_path, capsys):
    good = [row("Paris", ["Paris"], "1")]
    fails([tmp_path / "nope"], capsys, "no such run directory")
    bare = tmp_path / "bare"
    bare.mkdir()
    write_jsonl(bare / "hotpotqa.jsonl", good)
    (bare / "manifest.json").write_text('{"model": "m"}')
    fails([bare], capsys, "missing field 'method'")
    fails([make_run(tmp_path / "empty", "s3", {})], capsys, "empty run")
    fails([make_run(tmp_path / "nosamples", "s3", {"hotpotqa": []})], capsys, "task hotpotqa has no samples")
    bad = make_run(tmp_path / "nofield", "s3", {"hotpotqa": [{"pred": "x", "answers": ["y"], "_id": "1"}]})
    fails([bad], capsys, "hotpotqa.jsonl:1", "missing field(s) all_classes, length")
    broken = make_run(tmp_path / "broken", "s3", {"hotpotqa": good})
    with (broken / "hotpotqa.jsonl").open("a") as f:
        f.write('{"pred": "trunc')
    fails([broken], capsys, "hotpotqa.jsonl:2: not valid JSON")
    fails([make_run(tmp_path / "unknown", "s3", {"foo": good})], capsys, "unknown task 'foo'")
    fails([make_run(tmp_path / "lunknown", "s3", {"leval_foo": good})], capsys, "unknown L-Eval task 'leval_foo'")
    fails([make_run(tmp_path / "retr", "s3", {"passage_retrieval_en": good})], capsys,
          "sample 1", "does not name a paragraph")
    fails([make_run(tmp_path / "cls", "s3", {"trec": good})], capsys, "all_classes")
    f1 = make_run(tmp_path / "f1", "full", {"hotpotqa": good})
    f2 = make_run(tmp_path / "f2", "full", {"hotpotqa": good})
    fails([f1, f2], capsys, "several runs have method \"full\"", "--baseline")
    fails([f1, f1], capsys, "given twice")
    with pytest.raises(SystemExit) as exc:
        LS.main([])
    assert exc.value.code == 2
    capsys.readouterr()


def test_bootstrap_intervals(tmp_path, capsys):
    """The intervals behave as 95 % intervals of a mean should: they hold the estimate, vanish for a
    constant run, are as wide as the binomial rule for a coin, and paired differences of a run with
    itself are exactly 0."""
    import math
    n = 400
    coin = [row("Paris" if i % 2 else "Rome", ["Paris"], str(i)) for i in range(n)]  # mean 0.5
    always = [row("Paris", ["Paris"], str(i)) for i in range(n)]
    a = LS.score_task("hotpotqa", coin)
    lo, hi = LS.score_ci(a.per_sample)
    assert lo < 50.0 < hi
    half_width = 100 * 1.96 * math.sqrt(0.25 / n)  # 4.9 points
    assert abs((hi - lo) / 2 - half_width) < 0.15 * half_width
    b = LS.score_task("hotpotqa", always)
    assert LS.score_ci(b.per_sample) == (100.0, 100.0)
    same = LS.paired_ci(a, a)
    assert same["difference"] == 0 and same["difference_ci95"] == (0.0, 0.0) and same["retention_ci95"] == (100.0, 100.0)
    vs = LS.paired_ci(a, b)  # coin vs always-right: -50 points, retention 50 %
    assert vs["n"] == n and vs["difference"] == -50.0
    assert vs["difference_ci95"][1] < 0 and vs["retention_ci95"][0] < 50 < vs["retention_ci95"][1]
    # pairing is by _id, whatever the order of the rows
    shuffled = LS.score_task("hotpotqa", list(reversed(coin)))
    assert LS.paired_ci(shuffled, a)["difference_ci95"] == (0.0, 0.0)
    full = make_run(tmp_path / "full", "full", {"hotpotqa": always})
    s3 = make_run(tmp_path / "s3", "s3", {"hotpotqa": coin}, budget=512)
    assert LS.main([str(full), str(s3)]) == 0
    md = (tmp_path / "longbench_compare.md").read_text()
    assert "| hotpotqa | **-50.00 [" in md  # the difference table marks a supported difference in bold
    summary = json.loads((tmp_path / "longbench_compare.json").read_text())
    assert summary["runs"][1]["vs_baseline"]["hotpotqa"]["difference"] == -50.0
    capsys.readouterr()


def test_official_pred_py_output(tmp_path, capsys):
    """LongBench's pred.py writes rows without _id into a folder without manifest.json: the row's
    place stands in for the id, the folder's name for the method."""
    run = tmp_path / "pred" / "my-model"
    run.mkdir(parents=True)
    rows = [{"pred": p, "answers": a, "all_classes": None, "length": 100}
            for p, a in (("Paris", ["Paris"]), ("London", ["Paris"]), ("Paris", ["Paris"]))]  # 1, 0, 1
    write_jsonl(run / "hotpotqa.jsonl", rows)
    assert LS.main([str(run)]) == 0
    assert results(run) == {"hotpotqa": 66.67}
    assert "my-model" in (run / "results.md").read_text()
    capsys.readouterr()


def test_cli_process_exit_codes(tmp_path):
    """The real process: exit 1 with one stderr line and no traceback; exit 2 on usage errors."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "missing")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, str(SCRIPT), "--bogus"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 2 and "usage:" in proc.stderr


# ------------------------------------------------------------------------------------------------
# real data: LongBench v1 multi_news from $S3ATTN_DATA
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_news_rows():
    value = os.environ.get("S3ATTN_DATA")
    if not value:
        pytest.skip("S3ATTN_DATA is not set (the shared data folder with longbench/v1/multi_news.jsonl)")
    path = Path(value) / "longbench" / "v1" / "multi_news.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_multi_news_real_answers(tmp_path, multi_news_rows, capsys):
    assert len(multi_news_rows) == 200

    def run_with(name, pred_of):
        rows = [row(pred_of(r), r["answers"], r["_id"], r["all_classes"], r["length"]) for r in multi_news_rows]
        run = make_run(tmp_path / name, "full", {"multi_news": rows})
        assert LS.main([str(run)]) == 0
        return results(run)["multi_news"]

    # Each answer against itself: ROUGE-L P = R = 1, F = 2 * (1 / (2 + 1e-8)) = 0.999999995 per sample
    # (no answer has a sentence long enough to hit the recursion quirk) -> round(99.9999995, 2) = 100.0
    assert run_with("self", lambda r: r["answers"][0]) == 100.0
    # A fixed wrong prediction: "The quick brown fox jumps over the lazy dog." shares only stop words
    # (the, over, ...) with the summaries. 2.68 is the value of the official pipeline (LongBench's
    # metrics.py rouge_score + eval.py scorer on these 200 rows, checked independently of this script).
    assert run_with("wrong", lambda r: "The quick brown fox jumps over the lazy dog.") == 2.68
    capsys.readouterr()


def test_waterbench_lcc_null_string(tmp_path):
    """WaterBench's lcc rows spell a missing all_classes as the string "null": read as null, scored as lcc."""
    run = make_run(tmp_path / "full", "full", {"lcc": [row("x = 1", ["x = 1"], "a", all_classes="null")]})
    loaded = LS.load_run(run)
    assert loaded.tasks["lcc"][0]["all_classes"] is None
    assert LS.score_run(loaded)["lcc"].score == 100.0
    bad = make_run(tmp_path / "bad", "full", {"lcc": [row("x", ["x"], "a", all_classes="oops")]})
    with pytest.raises(LS.ScoreError, match="all_classes"):
        LS.load_run(bad)


def test_common_samples(tmp_path, capsys):
    """--common scores every run on the samples all runs share: a run cut short compares on equal terms."""
    full = make_run(tmp_path / "full", "full", {"leval_financial_qa": [
        row("paris", ["paris"], "a", evaluation="f1"), row("rome", ["rome"], "b", evaluation="f1"),
        row("x", ["oslo"], "c", evaluation="f1")]})
    short = make_run(tmp_path / "bm25", "bm25", {"leval_financial_qa": [row("paris", ["paris"], "a", evaluation="f1")]})
    assert LS.main([str(full), str(short), "--common", "--out-dir", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    # On the one shared sample (a) both score 100; full's own three samples would give 66.67.
    assert "full: leval_financial_qa 100.00 (1) (common samples)" in out
    assert "bm25: leval_financial_qa 100.00 (1) (common samples)" in out
    assert not (full / "results.json").exists()
