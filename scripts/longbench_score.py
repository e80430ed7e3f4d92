#!/usr/bin/env python3
"""Scores `s3attn longbench` run directories with LongBench's and L-Eval's official metrics.

    scripts/longbench_score.py RUN_DIR... [--baseline RUN_DIR] [--out-dir DIR] [--e]

A run directory holds `<task>.jsonl` (or shards `<task>.rank<R>-of<W>.jsonl`), one JSON object per
sample with the fields pred, answers, all_classes, length and _id (extra fields such as
evidence_tokens are allowed), and `manifest.json` with at least {"method": ..., "model": ...}.
Official LongBench pred.py output is accepted too: rows without _id (their place in the file stands
in for it) and a folder without manifest.json (the folder's name is the method and the label).

Every run directory gets `results.json` ({"<task>": score}) and `results.md`. With several runs, or
with --baseline, the out dir (default: the first run directory's parent) gets a side-by-side table
with retention against the FullKV run (`longbench_compare.md` / `.json`) and three PNG plots.

The metrics follow LongBench/metrics.py and LongBench/eval.py (THUDM/LongBench), for `leval_*`
tasks L-Eval's Evaluation/auto_eval.py and em.py (OpenLMLab/LEval), and for the synthetic tasks of
scripts/synth_tasks.py RULER's string-match metrics (NVIDIA/RULER); docs/longbench.md ("Scoring")
lists every rule and every place where this script knowingly differs. Rows that carry
evidence_recall / control_evidence_recall (synthetic tasks) get their means in the tables.
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import re
import string
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROG = "longbench_score"

# ------------------------------------------------------------------------------------------------
# LongBench metrics (semantics of LongBench/metrics.py). Each takes (prediction, ground_truth,
# **kwargs) and returns a float in [0, 1]; the scorer takes the max over the gold answers.
# ------------------------------------------------------------------------------------------------

_EN_PUNCTUATION = frozenset(string.punctuation)
# LongBench's Chinese punctuation list plus ASCII punctuation (normalize_zh_answer).
_ZH_PUNCTUATION = frozenset(
    string.punctuation
    + "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗"
    "〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """English normalization: lowercase, drop ASCII punctuation, drop the words a/an/the, and
    collapse whitespace to single spaces (in this order, as LongBench/SQuAD do)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _EN_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize_zh_answer(text: str) -> str:
    """Chinese normalization: lowercase, drop ASCII and Chinese punctuation, remove all whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ZH_PUNCTUATION)
    return "".join(text.split())


def f1_score(prediction_tokens, ground_truth_tokens) -> float:
    """Bag-of-words F1 over two token lists (multiset overlap)."""
    overlap = sum((Counter(prediction_tokens) & Counter(ground_truth_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, **kwargs) -> float:
    return f1_score(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


_JIEBA = None


def _jieba():
    global _JIEBA
    if _JIEBA is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict ..." chatter on stderr
        _JIEBA = jieba
    return _JIEBA


def _zh_tokens(text: str) -> list[str]:
    tokens = (normalize_zh_answer(tok) for tok in _jieba().cut(text, cut_all=False))
    return [tok for tok in tokens if tok]


def qa_f1_zh_score(prediction: str, ground_truth: str, **kwargs) -> float:
    return f1_score(_zh_tokens(prediction), _zh_tokens(ground_truth))


_ROUGE = None


def rouge_score(prediction: str, ground_truth: str, **kwargs) -> float:
    """ROUGE-L F of the `rouge` package (1.0.1), exactly the call LongBench makes:
    Rouge().get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"], 0.0 on any error
    (empty prediction, or RecursionError in the package's recursive LCS on very long sentences)."""
    global _ROUGE
    if _ROUGE is None:
        from rouge import Rouge

        _ROUGE = Rouge
    try:
        scores = _ROUGE().get_scores([prediction], [ground_truth], avg=True)
    except Exception:  # LongBench uses a bare `except:`; see docs/longbench.md
        return 0.0
    return scores["rouge-l"]["f"]


def rouge_zh_score(prediction: str, ground_truth: str, **kwargs) -> float:
    prediction = " ".join(_jieba().cut(prediction, cut_all=False))
    ground_truth = " ".join(_jieba().cut(ground_truth, cut_all=False))
    return rouge_score(prediction, ground_truth)


def classification_score(prediction: str, ground_truth: str, **kwargs) -> float:
    """1/k when the gold class is among the k class names found (as substrings) in the prediction.

    As in LongBench, a found class that is a proper substring of the gold class is dropped, but the
    drop happens while iterating the same list, so the element after each dropped one is skipped.
    LongBench's similarity fallback for "no class found" is unreachable there (`list != 0` is always
    true) and is therefore absent here too."""
    all_classes = kwargs.get("all_classes")
    if not isinstance(all_classes, list):
        raise ValueError("classification needs the row's all_classes (a list of class names)")
    found = [name for name in all_classes if name in prediction]
    for name in found:  # mutating while iterating, deliberately (LongBench semantics)
        if name in ground_truth and name != ground_truth:
            found.remove(name)
    return 1.0 / len(found) if ground_truth in found else 0.0


def _number_hit_rate(prediction: str, wanted: str) -> float:
    numbers = re.findall(r"\d+", prediction)
    if not numbers:
        return 0.0
    return sum(1 for number in numbers if number == wanted) / len(numbers)


def _paragraph_id(ground_truth: str, pattern: str) -> str:
    match = re.search(pattern, ground_truth)
    if match is None:
        raise ValueError(f"gold answer {ground_truth!r} does not name a paragraph ({pattern})")
    return match.group(1)


def retrieval_score(prediction: str, ground_truth: str, **kwargs) -> float:
    """Share of the numbers in the prediction that equal N of the gold "Paragraph N"."""
    return _number_hit_rate(prediction, _paragraph_id(ground_truth, r"Paragraph (\d+)"))


def retrieval_zh_score(prediction: str, ground_truth: str, **kwargs) -> float:
    """Share of the numbers in the prediction that equal N of the gold "段落N"."""
    return _number_hit_rate(prediction, _paragraph_id(ground_truth, r"段落(\d+)"))


def count_score(prediction: str, ground_truth, **kwargs) -> float:
    """Share of the numbers in the prediction that equal the gold count."""
    return _number_hit_rate(prediction, str(ground_truth))


_FUZZ = None


def _fuzz_ratio(a: str, b: str) -> int:
    """fuzzywuzzy's fuzz.ratio with difflib's SequenceMatcher (LongBench's environment has no
    python-Levenshtein; with it, fuzzywuzzy would switch to a different, non-identical ratio)."""
    global _FUZZ
    if _FUZZ is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Using slow pure-python SequenceMatcher"
            from fuzzywuzzy import fuzz
        if fuzz.SequenceMatcher is not difflib.SequenceMatcher:
            fuzz.SequenceMatcher = difflib.SequenceMatcher
        _FUZZ = fuzz
    return _FUZZ.ratio(a, b)


def code_sim_score(prediction: str, ground_truth: str, **kwargs) -> float:
    """fuzz.ratio/100 between the gold line and the first prediction line (after dropping leading
    newlines) that contains none of "`", "#", "//" anywhere; "" when there is no such line."""
    chosen = ""
    for line in prediction.lstrip("\n").split("\n"):
        if "`" not in line and "#" not in line and "//" not in line:
            chosen = line
            break
    return _fuzz_ratio(chosen, ground_truth) / 100


# dataset -> metric, exactly LongBench/eval.py's dataset2metric.
DATASET2METRIC = {
    "narrativeqa": qa_f1_score,
    "qasper": qa_f1_score,
    "multifieldqa_en": qa_f1_score,
    "multifieldqa_zh": qa_f1_zh_score,
    "hotpotqa": qa_f1_score,
    "2wikimqa": qa_f1_score,
    "musique": qa_f1_score,
    "dureader": rouge_zh_score,
    "gov_report": rouge_score,
    "qmsum": rouge_score,
    "multi_news": rouge_score,
    "vcsum": rouge_zh_score,
    "trec": classification_score,
    "triviaqa": qa_f1_score,
    "samsum": rouge_score,
    "lsht": classification_score,
    "passage_retrieval_en": retrieval_score,
    "passage_count": count_score,
    "passage_retrieval_zh": retrieval_zh_score,
    "lcc": code_sim_score,
    "repobench-p": code_sim_score,
}
# Tasks whose prediction is cut to its first line before scoring (eval.py).
FIRST_LINE_TASKS = ("trec", "triviaqa", "samsum", "lsht")


def first_line(prediction: str) -> str:
    return prediction.lstrip("\n").split("\n")[0]


# ------------------------------------------------------------------------------------------------
# L-Eval (Evaluation/auto_eval.py + em.py): "exam" = multiple choice, "f1" = open-ended QA.
# ------------------------------------------------------------------------------------------------

# Evaluation type of the L-Eval tasks this project runs ($S3ATTN_DATA/leval) plus TPO; rows may
# also carry L-Eval's own "evaluation" field, which then decides.
LEVAL_EVALUATION = {
    "coursera": "exam",
    "quality": "exam",
    "tpo": "exam",
    "multidoc_qa": "f1",
    "financial_qa": "f1",
}
OPEN_ENDED_LABELS = {"f1", "LLM", "human", "rouge"}  # row labels of open-ended L-Eval documents
LEVAL_MULTI_ANSWER = ("coursera",)  # auto_eval.py reads several letters only for coursera


def _leval_normalize(text: str) -> str:
    """L-Eval's em.py normalize_answer: drop ASCII punctuation, the lowercase words a/an/the, and
    extra whitespace. Unlike SQuAD/LongBench it does not lowercase (its `lower` is never called)."""
    text = "".join(ch for ch in text if ch not in _EN_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def leval_gold_choice(gold: str) -> str:
    """auto_eval.py process_gt_mc: the A-D letters of the gold's first whitespace token
    ("(B) Their subconscious ..." -> "B", "ACD" -> "ACD"); "A" when there are none."""
    tokens = gold.split()
    if not tokens:
        raise ValueError("empty gold answer for a multiple-choice question")
    letters = re.sub(r"[^A-D]", "", tokens[0])
    return letters or "A"


def leval_predicted_choice(response: str, multi_answer: bool) -> str:
    """auto_eval.py process_output_mc, step for step:
    1. blank response -> "None" (scores 0);
    2. the response is itself a substring of "ABCD" ("B", "BC") -> taken as is;
    3. single-answer tasks: the first character of the response that is one of A B C D, wherever it
       stands (note: "Answer: (B)" gives "A", from "Answer");
    4. otherwise (coursera, or no A-D anywhere): a leading run of A-D letters of length > 1 -> its
       sorted letter set; else the text before "Question", every capital letter that is followed by
       whitespace, "." or ")" kept if it is A-D -> sorted set; else the first run of A-D characters
       anywhere; else "A" (L-Eval's random-guess fallback)."""
    if not response.strip():
        return "None"
    if response in "ABCD":
        return response
    if not multi_answer:
        for ch in response:
            if ch in "ABCD":
                return ch
    lead = ""
    for ch in response:
        if ch not in "ABCD":
            break
        lead += ch
    if len(lead) > 1:
        return "".join(sorted(set(lead)))
    # auto_eval.py trims one leading character per leading letter it read.
    rest = response[len(lead):].split("Question")[0]
    options = re.findall(r"\s*[A-Z](?=[\s.)])", rest)
    letters = re.sub(r"[^A-D]", "", lead + " ".join(options).strip())
    chosen = "".join(sorted(set(letters)))
    if not chosen:
        run = ""
        for ch in rest:
            if ch in "ABCD":
                run += ch
            elif run:
                break
        chosen = run
    return chosen or "A"


def leval_exam_score(predicted: str, gold: str) -> float:
    """em.py exact_match_score on processed choices: 1 when equal, 0.25 when the predicted letters
    are a subset of the gold letters (coursera: some but not all correct options), else 0."""
    p, g = _leval_normalize(predicted), _leval_normalize(gold)
    if p == g:
        return 1.0
    if set(p) <= set(g):
        return 0.25
    return 0.0


def leval_f1_score(prediction: str, ground_truth: str, **kwargs) -> float:
    """L-Eval's F1: bag-of-words F1 over _leval_normalize tokens (case-sensitive)."""
    return f1_score(_leval_normalize(prediction).split(), _leval_normalize(ground_truth).split())


# ------------------------------------------------------------------------------------------------
# RULER (scripts/eval/synthetic/constants.py and evaluate.py of NVIDIA/RULER): the prediction is
# stripped and its control characters become newlines; a reference counts when it occurs in the
# prediction, both lower-cased. Each takes the sample's whole list of references.
# ------------------------------------------------------------------------------------------------


def ruler_postprocess(prediction: str) -> str:
    return re.sub(r"[\x00-\x1f]", "\n", prediction.strip()).strip()


def string_match_all(prediction: str, references: list[str]) -> float:
    """The share of the references found in the prediction (1 only when every one is)."""
    if not references:
        return 0.0
    pred = ruler_postprocess(prediction).lower()
    return sum(1.0 for r in references if r.lower() in pred) / len(references)


def string_match_part(prediction: str, references: list[str]) -> float:
    """1 when any reference is found in the prediction (references are alternatives)."""
    pred = ruler_postprocess(prediction).lower()
    return max((1.0 if r.lower() in pred else 0.0 for r in references), default=0.0)


# The tasks of scripts/synth_tasks.py, then RULER's own names (its QA tasks list alternatives).
RULER_METRIC = {
    "niah_single": string_match_all,
    "niah_multikey": string_match_all,
    "niah_multivalue": string_match_all,
    "niah_multiquery": string_match_all,
    "niah_paraphrase": string_match_all,
    "vt": string_match_all,
    "cwe": string_match_all,
    "fwe": string_match_all,
    **{f"niah_single_{i}": string_match_all for i in (1, 2, 3)},
    **{f"niah_multikey_{i}": string_match_all for i in (1, 2, 3)},
    "qa_1": string_match_part,
    "qa_2": string_match_part,
}


# ------------------------------------------------------------------------------------------------
# Run directories
# ------------------------------------------------------------------------------------------------


class ScoreError(Exception):
    """A problem with the input; reported as one line on stderr, exit status 1."""


REQUIRED_FIELDS = ("pred", "answers", "all_classes", "length", "_id")
# Optional per-row numbers in [0, 1] (s3attn longbench, rows with `needles`): their task means are shown.
RECALL_FIELDS = ("evidence_recall", "control_evidence_recall")
# Fields that must agree between two rows with the same _id (a conflicting duplicate otherwise).
IDENTITY_FIELDS = ("pred", "answers", "all_classes", "length")
_FILE_RE = re.compile(r"^(?P<task>[^.]+?)(?:\.rank(?P<rank>\d+)-of(?P<world>\d+))?\.jsonl$")


@dataclass
class TaskSpec:
    name: str  # as in the file name, e.g. "multi_news", "qasper_e", "leval_quality"
    metric: str  # metric function name shown in the tables
    kind: str  # "longbench" | "leval-exam" | "leval-f1" | "ruler"


def task_spec(task: str, rows: list[dict] | None = None) -> TaskSpec:
    """The scoring rule of a task name; ScoreError for unknown tasks."""
    if task.startswith("leval_"):
        name = task[len("leval_"):]
        evaluations = {r.get("evaluation") for r in rows or [] if r.get("evaluation") is not None}
        # L-Eval's open-ended files label each document "f1", "LLM" or "human" (which judge its
        # authors used on it); all of them are open-ended questions, scored here with F1.
        if evaluations and evaluations <= OPEN_ENDED_LABELS:
            evaluations = {"f1"}
        if len(evaluations) > 1:
            raise ScoreError(f"{task}: rows disagree on 'evaluation' ({sorted(evaluations)})")
        evaluation = evaluations.pop() if evaluations else LEVAL_EVALUATION.get(name)
        if evaluation == "exam":
            return TaskSpec(task, "leval_exam", "leval-exam")
        if evaluation == "f1":
            return TaskSpec(task, "leval_f1", "leval-f1")
        if evaluation is None:
            raise ScoreError(
                f"unknown L-Eval task '{task}': its rows carry no 'evaluation' field and it is not one of "
                f"{', '.join('leval_' + k for k in LEVAL_EVALUATION)}"
            )
        raise ScoreError(f"{task}: L-Eval evaluation '{evaluation}' is not supported (only f1 and exam)")
    if task in RULER_METRIC:
        return TaskSpec(task, RULER_METRIC[task].__name__, "ruler")
    base = task[:-2] if task.endswith("_e") and task[:-2] in DATASET2METRIC else task
    if base not in DATASET2METRIC:
        raise ScoreError(
            f"unknown task '{task}': not one of LongBench's {len(DATASET2METRIC)} tasks "
            "(nor <task>_e of LongBench-E, nor leval_<name>, nor a synthetic task: "
            f"{', '.join(RULER_METRIC)})"
        )
    return TaskSpec(task, DATASET2METRIC[base].__name__, "longbench")


@dataclass
class Run:
    path: Path
    manifest: dict
    tasks: dict[str, list[dict]]  # task -> merged, de-duplicated rows in file order

    @property
    def method(self) -> str:
        return self.manifest["method"]

    @property
    def model(self) -> str:
        return describe_model(self.manifest["model"])


def describe_model(model) -> str:
    if isinstance(model, str):
        return model
    if isinstance(model, dict):
        for key in ("name", "path", "id"):
            if isinstance(model.get(key), str):
                return model[key]
    return json.dumps(model, sort_keys=True)


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ScoreError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise ScoreError(f"{path}:{lineno}: a row must be a JSON object")
                if "_id" not in row:  # official pred.py output has no _id: the row's place stands in
                    row["_id"] = f"{path.name}#{len(rows)}"
                _check_row(row, f"{path}:{lineno}")
                rows.append(row)
    except UnicodeDecodeError:
        raise ScoreError(f"{path}: not UTF-8 text") from None
    return rows


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_row(row: dict, where: str) -> None:
    missing = [k for k in REQUIRED_FIELDS if k not in row]
    if missing:
        raise ScoreError(f"{where}: missing field(s) {', '.join(missing)}")
    if not isinstance(row["pred"], str):
        raise ScoreError(f"{where}: 'pred' must be a string")
    answers = row["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ScoreError(f"{where}: 'answers' must be a list of strings")
    classes = row["all_classes"]
    if classes == "null":  # WaterBench's lcc rows spell a missing all_classes so (docs/longbench.md)
        row["all_classes"] = classes = None
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise ScoreError(f"{where}: 'all_classes' must be null or a list of strings")
    if not _is_number(row["length"]):
        raise ScoreError(f"{where}: 'length' must be a number")
    if not isinstance(row["_id"], (str, int)) or isinstance(row["_id"], bool):
        raise ScoreError(f"{where}: '_id' must be a string")
    for key in RECALL_FIELDS:
        value = row.get(key)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            raise ScoreError(f"{where}: '{key}' must be null or a number in [0, 1]")


def load_run(path: Path) -> Run:
    if not path.is_dir():
        raise ScoreError(f"{path}: no such run directory")
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():  # official pred.py output: the folder names the run
        return _load_rows(path, {"method": path.name, "model": "unknown (no manifest.json)", "label": path.name})
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScoreError(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ScoreError(f"{manifest_path}: must be a JSON object")
    if not isinstance(manifest.get("method"), str) or not manifest["method"]:
        raise ScoreError(f"{manifest_path}: missing field 'method' (a non-empty string)")
    if manifest.get("model") in (None, ""):
        raise ScoreError(f"{manifest_path}: missing field 'model'")
    return _load_rows(path, manifest)


def _load_rows(path: Path, manifest: dict) -> "Run":
    files: dict[str, list[tuple[int, int, Path]]] = {}
    for file in sorted(path.glob("*.jsonl")):
        match = _FILE_RE.match(file.name)
        if match is None:
            raise ScoreError(f"{file}: not <task>.jsonl nor <task>.rank<R>-of<W>.jsonl")
        task = match["task"]
        if match["world"] is None:
            key = (0, 0)
        else:
            rank, world = int(match["rank"]), int(match["world"])
            if world < 1 or rank >= world:
                raise ScoreError(f"{file}: rank {rank} is outside 0..{world - 1}")
            key = (world, rank)
        files.setdefault(task, []).append((*key, file))
    if not files:
        raise ScoreError(f"{path}: empty run (no <task>.jsonl files)")

    tasks = {}
    for task, entries in files.items():
        entries.sort()
        worlds = {w for w, _, _ in entries if w}
        for world in sorted(worlds):
            have = {r for w, r, _ in entries if w == world}
            lost = sorted(set(range(world)) - have)
            if lost:
                names = ", ".join(f"{task}.rank{r}-of{world}.jsonl" for r in lost)
                raise ScoreError(f"{path}: missing shard(s) {names}")
        tasks[task] = _merge(task, [(f, _read_jsonl(f)) for _, _, f in entries])
        if not tasks[task]:
            raise ScoreError(f"{path}: task {task} has no samples")
    return Run(path, manifest, tasks)


def _merge(task: str, parts: list[tuple[Path, list[dict]]]) -> list[dict]:
    """Concatenates shards in (plain file, then rank) order; a repeated _id is dropped when its
    scored fields are identical to the first occurrence, and refused when they differ."""
    merged: list[dict] = []
    seen: dict = {}
    for file, rows in parts:
        for row in rows:
            key = row["_id"]
            if key in seen:
                first_file, first = seen[key]
                differing = [k for k in IDENTITY_FIELDS if first[k] != row[k]]
                if differing:
                    raise ScoreError(
                        f"{task}: conflicting duplicates of _id {key} in {first_file.name} and "
                        f"{file.name} (they differ in {', '.join(differing)})"
                    )
                continue
            seen[key] = (file, row)
            merged.append(row)
    return merged


# ------------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------------

BUCKETS = ("0-4k", "4-8k", "8k+")


@dataclass
class TaskResult:
    task: str
    metric: str
    samples: int
    score: float  # round(100 * mean, 2)
    per_sample: list[float] = field(repr=False, default_factory=list)
    ids: list = field(repr=False, default_factory=list)  # the rows' _id, in the order of per_sample
    buckets: dict | None = None  # LongBench-E: bucket -> score or None when the bucket is empty
    mean_evidence_tokens: float | None = None
    evidence_recall: float | None = None  # mean over the rows that have it, in [0, 1]
    control_evidence_recall: float | None = None


def sample_scores(spec: TaskSpec, rows: list[dict]) -> list[float]:
    """Per-sample scores in [0, 1]: the max over the gold answers (0 when there are none)."""
    out = []
    for row in rows:
        prediction, answers = row["pred"], row["answers"]
        try:
            if spec.kind == "leval-exam":
                multi = any(t in spec.name for t in LEVAL_MULTI_ANSWER)
                chosen = leval_predicted_choice(prediction, multi)
                score = max([leval_exam_score(chosen, leval_gold_choice(g)) for g in answers], default=0.0)
            elif spec.kind == "leval-f1":
                score = max([leval_f1_score(prediction, g) for g in answers], default=0.0)
            elif spec.kind == "ruler":
                score = RULER_METRIC[spec.name](prediction, answers)
            else:
                base = spec.name[:-2] if spec.name not in DATASET2METRIC else spec.name
                metric = DATASET2METRIC[base]
                if base in FIRST_LINE_TASKS:
                    prediction = first_line(prediction)
                score = 0.0
                for gold in answers:
                    score = max(score, metric(prediction, gold, all_classes=row["all_classes"]))
        except ValueError as exc:
            raise ScoreError(f"{spec.name}: sample {row['_id']}: {exc}") from None
        out.append(float(score))
    return out


def score_task(task: str, rows: list[dict], buckets: bool = False) -> TaskResult:
    spec = task_spec(task, rows)
    per_sample = sample_scores(spec, rows)
    total = 0.0
    for s in per_sample:  # sequential sum in row order, as eval.py's scorer()
        total += s
    result = TaskResult(task, spec.metric, len(rows), round(100 * total / len(per_sample), 2), per_sample,
                        [r["_id"] for r in rows])
    if buckets:
        import numpy as np

        groups = {b: [] for b in BUCKETS}
        for row, s in zip(rows, per_sample):
            length = row["length"]
            groups["0-4k" if length < 4000 else "4-8k" if length < 8000 else "8k+"].append(s)
        # eval.py's scorer_e: round(100 * np.mean(...), 2); an empty bucket is null, not NaN.
        result.buckets = {b: (float(round(100 * np.mean(v), 2)) if v else None) for b, v in groups.items()}
    evidence = [r["evidence_tokens"] for r in rows if _is_number(r.get("evidence_tokens"))]
    if evidence:
        result.mean_evidence_tokens = sum(evidence) / len(evidence)
    for key in RECALL_FIELDS:
        values = [r[key] for r in rows if _is_number(r.get(key))]
        if values:
            setattr(result, key, sum(values) / len(values))
    return result


def task_order(names) -> list[str]:
    """LongBench's order (eval.py's table, then LongBench-E), then L-Eval tasks, then the synthetic
    tasks in RULER_METRIC's order."""
    official = list(DATASET2METRIC)
    synthetic = list(RULER_METRIC)

    def key(name):
        if name in DATASET2METRIC:
            return (0, official.index(name), name)
        if name.endswith("_e") and name[:-2] in DATASET2METRIC:
            return (1, official.index(name[:-2]), name)
        if name in RULER_METRIC:
            return (3, synthetic.index(name), name)
        return (2, 0, name)

    return sorted(names, key=key)


def score_run(run: Run, buckets: bool = False) -> dict[str, TaskResult]:
    return {task: score_task(task, run.tasks[task], buckets) for task in task_order(run.tasks)}


def average(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 2) if values else None


# ------------------------------------------------------------------------------------------------
# Uncertainty: bootstrap over questions
# ------------------------------------------------------------------------------------------------

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _bootstrap_indices(n: int, rng):
    return rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))


def _percentile_ci(values) -> tuple[float, float]:
    import numpy as np

    lo, hi = np.percentile(np.asarray(values, dtype=float), [2.5, 97.5])
    return round(float(lo), 2), round(float(hi), 2)


def score_ci(per_sample: list[float], seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % percentile bootstrap interval of 100 × the mean per-sample score (questions resampled)."""
    import numpy as np

    x = np.asarray(per_sample, dtype=float)
    rng = np.random.default_rng(seed)
    return _percentile_ci(100.0 * x[_bootstrap_indices(len(x), rng)].mean(axis=1))


def paired_samples(a: TaskResult, b: TaskResult) -> tuple[list[float], list[float]]:
    """The two runs' per-sample scores on the questions both answered, matched by _id."""
    where = {i: k for k, i in enumerate(b.ids)}
    pairs = [(s, b.per_sample[where[i]]) for i, s in zip(a.ids, a.per_sample) if i in where]
    return [p for p, _ in pairs], [q for _, q in pairs]


def paired_ci(a: TaskResult, b: TaskResult, seed: int = BOOTSTRAP_SEED) -> dict:
    """Paired bootstrap over the questions both runs answered: 95 % intervals of the difference of
    scores (a − b, points) and of the retention (100 × mean a / mean b, %). A difference whose
    interval excludes 0 is one this sample of questions supports."""
    import numpy as np

    x, y = paired_samples(a, b)
    if not x:
        return {"n": 0, "difference": None, "difference_ci95": None, "retention_ci95": None}
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    idx = _bootstrap_indices(len(x), np.random.default_rng(seed))
    mx, my = x[idx].mean(axis=1), y[idx].mean(axis=1)
    out = {"n": len(x), "difference": round(float(100 * (x.mean() - y.mean())), 2),
           "difference_ci95": _percentile_ci(100.0 * (mx - my)), "retention_ci95": None}
    ok = my > 0
    if ok.all():
        out["retention_ci95"] = _percentile_ci(100.0 * mx[ok] / my[ok])
    return out


def average_ci(task_results: list[TaskResult], seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """95 % interval of the unweighted mean of task scores: each replicate resamples every task's
    questions, then averages the task means."""
    import numpy as np

    if not task_results:
        return None
    rng = np.random.default_rng(seed)
    means = np.zeros(BOOTSTRAP_RESAMPLES)
    for r in task_results:
        x = np.asarray(r.per_sample, dtype=float)
        means += 100.0 * x[_bootstrap_indices(len(x), rng)].mean(axis=1)
    return _percentile_ci(means / len(task_results))


# ------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


RECALL_LABELS = {"evidence_recall": "evidence recall %", "control_evidence_recall": "control recall %"}


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_run_results(run: Run, results: dict[str, TaskResult], buckets: bool) -> None:
    (run.path / "results.json").write_text(
        json.dumps({t: r.score for t, r in results.items()}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if buckets:
        (run.path / "results_e.json").write_text(
            json.dumps({t: r.buckets for t, r in results.items()}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
    show_evidence = any(r.mean_evidence_tokens is not None for r in results.values())
    recalls = [k for k in RECALL_FIELDS if any(getattr(r, k) is not None for r in results.values())]
    head = ["task", "metric", "samples", "score"]
    align = ["---", "---", "---:", "---:"]
    if buckets:
        head += list(BUCKETS)
        align += ["---:"] * len(BUCKETS)
    if show_evidence:
        head.append("mean evidence tokens")
        align.append("---:")
    for k in recalls:
        head.append(RECALL_LABELS[k])
        align.append("---:")
    lines = [
        f"# LongBench scores: {_md_cell(run.method)} on {_md_cell(run.model)}",
        "",
        f"Run directory: `{run.path}`. Scored by `scripts/longbench_score.py` (LongBench / L-Eval official "
        "metrics; scores are 100 × the mean per-sample score, rounded to 2 decimals).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(align) + "|",
    ]
    for t, r in results.items():
        cells = [t, r.metric, str(r.samples), _fmt(r.score)]
        if buckets:
            cells += [_fmt(r.buckets[b]) for b in BUCKETS]
        if show_evidence:
            cells.append(_fmt(r.mean_evidence_tokens, 1))
        cells += [_pct(getattr(r, k)) for k in recalls]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**average**", "", str(sum(r.samples for r in results.values())),
             f"**{_fmt(average(r.score for r in results.values()))}**"]
    if buckets:
        cells += [_fmt(average(r.buckets[b] for r in results.values())) for b in BUCKETS]
    if show_evidence:
        cells.append("")
    cells += [""] * len(recalls)
    lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The average is the unweighted mean of the task scores."]
    if recalls:
        lines += ["", "Evidence recall: mean share of each sample's needles found in the context the model saw "
                  "(control: in the evidence of the row's control question), over the rows that record it."]
    (run.path / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_labels(runs: list[Run]) -> list[str]:
    """Column label per run: manifest "label", else the method (with "@<budget>" when the manifest has
    a budget and the method is not full); labels that repeat get the shortest tail of their run's path
    that tells those runs apart (the directory name, or more of the path when that repeats too)."""
    labels = []
    for run in runs:
        label = run.manifest.get("label")
        if not isinstance(label, str) or not label:
            label = run.method
            budget = run.manifest.get("budget")
            if budget not in (None, "", 0) and run.method != "full":
                label = f"{label}@{budget}"
        labels.append(label)
    counts = Counter(labels)
    out = []
    for lab, run in zip(labels, runs):
        if counts[lab] == 1:
            out.append(lab)
            continue
        same = [r.path.resolve().parts for l, r in zip(labels, runs) if l == lab]
        parts = run.path.resolve().parts
        depth = 1
        while depth < len(parts) and sum(p[-depth:] == parts[-depth:] for p in same) > 1:
            depth += 1
        out.append(f"{lab} ({'/'.join(parts[-depth:])})")
    return out


def retention(score: float | None, base: float | None) -> float | None:
    """score / FullKV score × 100 (%); None when either is missing or the baseline scored 0."""
    if score is None or base is None or base == 0:
        return None
    return round(100.0 * score / base, 2)


def write_comparison(runs: list[Run], results: list[dict[str, TaskResult]], baseline: int | None,
                     out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = run_labels(runs)
    tasks = task_order({t for res in results for t in res})
    common = [t for t in tasks if all(t in res for res in results)]
    base_res = results[baseline] if baseline is not None else None

    def score(i, t):
        return results[i][t].score if t in results[i] else None

    rets = {}
    for i in range(len(runs)):
        if base_res is None or i == baseline:
            continue
        rets[i] = {t: retention(score(i, t), base_res[t].score if t in base_res else None) for t in tasks}

    avg = [average(score(i, t) for t in common) for i in range(len(runs))]
    avg_ret = {i: average(r[t] for t in common) for i, r in rets.items()}
    cis = [{t: score_ci(res[t].per_sample) for t in res} for res in results]
    avg_cis = [average_ci([res[t] for t in common]) for res in results]
    paired = {i: {t: paired_ci(results[i][t], base_res[t]) for t in tasks if t in results[i] and t in base_res}
              for i in rets}

    def with_ci(value, ci) -> str:
        return _fmt(value) if ci is None or value is None else f"{_fmt(value)} [{_fmt(ci[0])}, {_fmt(ci[1])}]"

    head = ["task"] + [_md_cell(l) for l in labels] + [f"{_md_cell(labels[i])} retention %" for i in rets]
    lines = ["# LongBench side by side", ""]
    for i, (run, label) in enumerate(zip(runs, labels)):
        mark = " (baseline)" if i == baseline else ""
        lines.append(f"- **{_md_cell(label)}**{mark}: method `{run.method}`, model `{_md_cell(run.model)}`, "
                     f"run `{run.path}`")
    lines.append("")
    if baseline is None:
        lines += ["No FullKV baseline (no run with method \"full\" and no --baseline): no retention.", ""]
    else:
        lines += [f"Retention = score / {labels[baseline]} score × 100 %, per task; the average retention is "
                  "the mean of the per-task retentions.", ""]
    lines += [f"Brackets: 95 % bootstrap intervals ({BOOTSTRAP_RESAMPLES} resamples of the questions, seed "
              f"{BOOTSTRAP_SEED}); retention intervals are paired (the same questions resampled for both runs).", ""]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for t in tasks:
        cells = [t] + [with_ci(score(i, t), cis[i].get(t)) for i in range(len(runs))]
        cells += [with_ci(rets[i][t], paired[i].get(t, {}).get("retention_ci95")) for i in rets]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**average**"] + [f"**{with_ci(a, ci)}**" for a, ci in zip(avg, avg_cis)]
    cells += [f"**{_fmt(avg_ret[i])}**" for i in rets]
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if paired:
        lines += [f"Difference from {labels[baseline]} in points, with its paired 95 % interval; **bold** where "
                  "the interval excludes 0 (a difference these questions support):", "",
                  "| task | " + " | ".join(_md_cell(labels[i]) for i in paired) + " |",
                  "|---|" + "---:|" * len(paired)]
        for t in tasks:
            cells = [t]
            for i in paired:
                p = paired[i].get(t)
                if not p or p["difference_ci95"] is None:
                    cells.append("–")
                    continue
                lo, hi = p["difference_ci95"]
                text = f"{p['difference']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                cells.append(f"**{text}**" if lo > 0 or hi < 0 else text)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if len(common) < len(tasks):
        lines.append(f"Averages are over the {len(common)} task(s) every run has: {', '.join(common) or 'none'}.")
    else:
        lines.append("Averages are unweighted means over the tasks.")
    md = out_dir / "longbench_compare.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")

    summary = {
        "baseline": labels[baseline] if baseline is not None else None,
        "tasks": tasks,
        "common_tasks": common,
        "runs": [
            {
                "label": labels[i],
                "method": run.method,
                "model": run.model,
                "run_dir": str(run.path),
                "scores": {t: r.score for t, r in results[i].items()},
                "ci95": cis[i],
                "average_ci95": avg_cis[i],
                "vs_baseline": paired.get(i),
                "samples": {t: r.samples for t, r in results[i].items()},
                "mean_evidence_tokens": {t: r.mean_evidence_tokens for t, r in results[i].items()},
                "evidence_recall": {t: r.evidence_recall for t, r in results[i].items()},
                "control_evidence_recall": {t: r.control_evidence_recall for t, r in results[i].items()},
                "average": avg[i],
                "retention": rets.get(i),
                "average_retention": avg_ret.get(i),
            }
            for i, run in enumerate(runs)
        ],
    }
    js = out_dir / "longbench_compare.json"
    js.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [md, js] + write_plots(labels, results, tasks, rets, baseline, out_dir)


def write_plots(labels, results, tasks, rets, baseline, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    width_in = max(6.0, 1.1 * len(tasks) + 2.5)

    def grouped_bars(ax, series: list[tuple[str, list]]):
        n = max(1, len(series))
        width = 0.8 / n
        for k, (label, values) in enumerate(series):
            xs = [j - 0.4 + width * (k + 0.5) for j in range(len(tasks))]
            ys = [v if v is not None else 0.0 for v in values]
            bars = ax.bar(xs, ys, width, label=label)
            for bar, v in zip(bars, values):
                if v is None:
                    bar.set_hatch("//")
                    bar.set_alpha(0.3)
        ax.set_xticks(range(len(tasks)))
        ax.set_xticklabels(tasks, rotation=30, ha="right")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    fig, ax = plt.subplots(figsize=(width_in, 4.5))
    grouped_bars(ax, [(labels[i], [res[t].score if t in res else None for t in tasks])
                      for i, res in enumerate(results)])
    ax.set_ylabel("score")
    ax.set_title("LongBench score per task")
    fig.tight_layout()
    path = out_dir / "scores_per_task.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    if rets:
        fig, ax = plt.subplots(figsize=(width_in, 4.5))
        grouped_bars(ax, [(labels[i], [r[t] for t in tasks]) for i, r in rets.items()])
        ax.axhline(100.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_ylabel(f"retention vs {labels[baseline]} (%)")
        ax.set_title("Retention per task (score / FullKV score)")
        fig.tight_layout()
        path = out_dir / "retention_per_task.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(7, 5))
    xs_all = []
    markers = "osD^v<>pPX*h"
    for i, res in enumerate(results):
        pts = [(r.mean_evidence_tokens, r.score, t) for t, r in res.items() if r.mean_evidence_tokens is not None]
        if not pts:
            continue
        xs_all += [p[0] for p in pts]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=labels[i], marker=markers[i % len(markers)])
        if len(pts) * len(results) <= 40:
            for x, y, t in pts:
                ax.annotate(t, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if xs_all:
        if min(xs_all) > 0 and max(xs_all) / min(xs_all) > 20:
            ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no evidence_tokens in these runs", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("mean evidence tokens per sample")
    ax.set_ylabel("task score")
    ax.set_title("Evidence tokens vs score (one point per task and method)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / "evidence_vs_score.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="longbench_score.py",
        description="Score s3attn longbench run directories with LongBench's (and L-Eval's) official metrics.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", type=Path, help="run directories to score")
    parser.add_argument("--baseline", type=Path, metavar="RUN_DIR",
                        help="FullKV run for retention (default: the run whose manifest method is \"full\")")
    parser.add_argument("--out-dir", type=Path, metavar="DIR",
                        help="where the side-by-side table and plots go (default: the first run's parent)")
    parser.add_argument("--common", action="store_true",
                        help="score every run on the samples all runs that have a task share (by _id), so that "
                             "runs cut short compare on equal terms; per-run results.json are then not written")
    parser.add_argument("--e", action="store_true",
                        help="also score LongBench-E length buckets (0-4k, 4-8k, 8k+) into results_e.json")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return _main(args)
    except ScoreError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def restrict_to_common(runs: list[Run]) -> None:
    """Keeps, per task, the rows whose _id every run with that task has (in each run's order)."""
    for task in {t for run in runs for t in run.tasks}:
        having = [run for run in runs if task in run.tasks]
        common = set.intersection(*({r["_id"] for r in run.tasks[task]} for run in having))
        if not common:
            raise ScoreError(f"--common: the runs share no sample of task {task}")
        for run in having:
            run.tasks[task] = [r for r in run.tasks[task] if r["_id"] in common]


def _main(args) -> int:
    paths = [p.resolve() for p in args.runs]
    if len(set(paths)) != len(paths):
        raise ScoreError("a RUN_DIR is given twice")
    baseline_path = args.baseline.resolve() if args.baseline else None
    if baseline_path is not None and baseline_path not in paths:
        paths.insert(0, baseline_path)
    runs = [load_run(p) for p in paths]
    if args.common:
        restrict_to_common(runs)
    results = [score_run(run, args.e) for run in runs]
    for run, res in zip(runs, results):
        summary = ", ".join(f"{t} {r.score:.2f} ({r.samples})" for t, r in res.items())
        if args.common:
            print(f"{run.path}: {run.method}: {summary} (common samples)")
            continue
        write_run_results(run, res, args.e)
        print(f"{run.path}: {run.method}: {summary} -> {run.path / 'results.json'}")

    if len(runs) < 2:
        return 0
    if baseline_path is not None:
        baseline = paths.index(baseline_path)
    else:
        fulls = [i for i, run in enumerate(runs) if run.method == "full"]
        if len(fulls) > 1:
            raise ScoreError("several runs have method \"full\"; pick the baseline with --baseline RUN_DIR")
        baseline = fulls[0] if fulls else None
        if baseline is None:
            print(f"{PROG}: note: no run has method \"full\" and no --baseline: no retention", file=sys.stderr)
    models = {run.model for run in runs}
    if len(models) > 1:
        print(f"{PROG}: note: the runs use different models ({', '.join(sorted(models))})", file=sys.stderr)
    out_dir = (args.out_dir or args.runs[0].resolve().parent).resolve()
    for path in write_comparison(runs, results, baseline, out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
