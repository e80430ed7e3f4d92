"""scripts/synth_tasks.py: the pure helpers, and generation with a real tokenizer over the essays
(needs S3ATTN_DATA): exact token budgets, determinism, every task's construction (needles, depths,
chains, word frequencies), resuming and the error paths. No model is run here; the end-to-end run
through `s3attn longbench` is tests/scripts/test_synth_suite.py."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from s3attn_testing import REPO
import synth_tasks as st

SCRIPT = REPO / "scripts" / "synth_tasks.py"


# ---------------------------------------------------------------- pure helpers

def test_lengths_parse_with_binary_suffixes():
    assert st.parse_length("4K") == 4096 and st.parse_length("1M") == 1048576 and st.parse_length("5000") == 5000
    assert st.parse_length("128k") == 131072
    for bad in ("4G", "", "K", "-5", "100"):
        with pytest.raises(Exception):
            st.parse_length(bad)
    assert [st.length_name(n) for n in (4096, 1048576, 524288, 5000)] == ["4K", "1M", "512K", "5000"]


def test_prompt_formatting_is_one_pass_like_the_runner():
    # A context holding "{input}" stays as it is (core/pipeline/longbench.cpp formats in one pass).
    assert st.format_prompt("A {context} B {input} C", "x{input}y", "Q") == "A x{input}y B Q C"
    for task in st.TASKS.values():
        assert set(re.findall(r"\{[^}]*\}", task.template)) == {"{context}", "{input}"}


def test_depths_spread_evenly_and_never_at_an_edge():
    assert [st.single_depth(i, 4) for i in range(4)] == [0.125, 0.375, 0.625, 0.875]
    assert st.single_depth(0, 1) == 0.5
    d = st.spread_depths(1, 4, 4)  # sample 1 of 4, 4 needles: 1/4 apart, shifted by 0.375 / 4
    assert d == pytest.approx([0.09375, 0.34375, 0.59375, 0.84375])
    everything = sorted(x for i in range(4) for x in st.spread_depths(i, 4, 4))
    steps = [b - a for a, b in zip(everything, everything[1:])]
    assert all(s == pytest.approx(1 / 16) for s in steps) and 0 < everything[0] and everything[-1] < 1


def test_paraphrase_questions_share_no_content_word_with_their_needle():
    assert st.content_words("The keeper named it") == {"keep", "name"}
    assert st.content_words("tends") & st.content_words("tend")  # inflections are caught
    for needle, question in st.PARAPHRASES:
        assert not st.content_words(needle.format(value="Zorvan")) & st.content_words(question), (needle, question)
    assert len({q for _, q in st.PARAPHRASES}) == len(st.PARAPHRASES)


def test_insert_at_puts_sentences_before_the_next_one():
    text = "One. Two. Three."
    assert st.insert_at(text, [(5, "X.")]) == "One. X. Two. Three."
    assert st.insert_at(text, [(10, "B."), (5, "A.")]) == "One. A. Two. B. Three."
    assert st.insert_at(text, [(0, "A.")]) == "A. One. Two. Three."
    assert st.insert_at(text, [(len(text), "Z.")]) == "One. Two. Three. Z."
    assert st.insert_at(text, [(5, "A."), (5, "B.")]) == "One. A. B. Two. Three."


def test_zipf_counts_decrease_like_one_over_k_squared():
    c = st.zipf_counts(10000, 5)
    # 10000 / zeta(2) = 6079.3: floor of 6079.3, 1519.8, 675.5, 379.9, 243.2
    assert c == [6079, 1519, 675, 379, 243]


def test_fit_finds_the_largest_size_within_the_budget():
    count = lambda prompt: len(prompt)  # noqa: E731
    build = lambda x: ("a" * (3 * x + 7), x)  # noqa: E731  tokens = 3x + 7
    x, prompt, n, payload = st.fit(build, count, 1000, 0, 10)
    assert (x, n, payload) == (331, 1000, 331)
    x, _, n, _ = st.fit(build, count, 1000, 20, 500)
    assert n <= 1000 and n >= 980
    with pytest.raises(st.SynthError, match="smallest"):
        st.fit(build, count, 5, 0, 3)


# ---------------------------------------------------------------- generation (tokenizer + essays)

@pytest.fixture(scope="module")
def essays(data_dir) -> Path:
    return data_dir / "haystack" / "PaulGrahamEssays.json"


def generate(out: Path, essays: Path, *extra, tokenizer=None, check=True) -> subprocess.CompletedProcess:
    source = ["--tokenizer", str(tokenizer)] if tokenizer else ["--model", str(REPO / "models" / "default")]
    proc = subprocess.run([sys.executable, str(SCRIPT), *source, "--haystack", str(essays), "--out", str(out),
                           *map(str, extra)], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        pytest.fail(f"synth_tasks.py exited {proc.returncode}: {proc.stderr}")
    return proc


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def llama2(data_dir) -> Path:
    return data_dir / "tokenizers" / "llama2" / "tokenizer.json"


@pytest.fixture(scope="module")
def suite(tmp_path_factory, essays, llama2) -> Path:
    """Every task at 1K and 3K tokens, 3 samples, with Llama-2's tokenizer (it adds BOS)."""
    out = tmp_path_factory.mktemp("synth")
    proc = generate(out, essays, "--lengths", "1K", "3072", "--samples", "3", "--seed", "7", "--jobs", "2",
                    tokenizer=llama2)
    summary = json.loads(proc.stdout)
    assert set(summary["lengths"]) == {"1024", "3072"}
    return out


def test_config_has_every_task_in_the_longbench_layout(suite):
    prompts = json.loads((suite / "config" / "dataset2prompt.json").read_text())
    maxlen = json.loads((suite / "config" / "dataset2maxlen.json").read_text())
    assert list(prompts) == list(st.TASKS) == list(maxlen)
    assert all(isinstance(v, int) and v > 0 for v in maxlen.values())


def test_every_prompt_is_within_its_budget_and_counted_exactly(suite, llama2):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(llama2))
    for length in (1024, 3072):
        meta = json.loads((suite / str(length) / "synth.json").read_text())
        for task, d in st.TASKS.items():
            budget = length - d.max_new_tokens - 64
            got = rows(suite / str(length) / f"{task}.jsonl")
            assert [r["_id"] for r in got] == [f"{task}-{st.length_name(length)}-{i}" for i in range(3)]
            for r in got:
                prompt = st.format_prompt(d.template, r["context"], r["input"])
                # Llama-2's tokenizer adds BOS, as s3attn's encode_prompt does for it.
                assert len(tok.encode(prompt, add_special_tokens=True).ids) == r["tokens"]
                assert budget - max(8, budget // 1000) <= r["tokens"] <= budget, (task, length, r["tokens"])
                assert r["length"] == length and r["all_classes"] is None and r["answers"]
            assert meta["tasks"][task]["identity"]["add_bos"] is True
            assert meta["tasks"][task]["prompt_budget"] == budget


def test_needles_are_planted_once_at_spread_depths(suite, essays):
    text = json.loads(essays.read_text())["text"].lower()
    for task in ("niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "niah_paraphrase", "vt"):
        depths = []
        for r in rows(suite / "3072" / f"{task}.jsonl"):
            assert r["control_question"] == st.CONTROL_QUESTION
            for needle in r["needles"]:
                assert r["context"].count(needle) == 1, (task, needle)
                assert needle.lower() not in text  # only the planted sentence holds it
            depths += r["meta"]["depths"]
            assert r["meta"]["depths"] == sorted(r["meta"]["depths"])
        # The needles of the 3 samples cover the document: no two within 1/(4 * count) of each other.
        depths.sort()
        assert min(b - a for a, b in zip(depths, depths[1:])) > 1 / (4 * len(depths)) if len(depths) > 1 else True
        assert depths[0] < 0.25 and depths[-1] > 0.75


def test_niah_tasks_ask_what_their_needles_hold(suite):
    needle = re.compile(r"One of the special magic numbers for ([a-z]+-[a-z]+) is: (\d{7})\.")
    for task, planted in (("niah_single", 1), ("niah_multikey", 4), ("niah_multivalue", 4), ("niah_multiquery", 4)):
        targets = set()
        for r in rows(suite / "3072" / f"{task}.jsonl"):
            found = needle.findall(r["context"])
            assert len(found) == planted, task
            keys = [k for k, _ in found]
            by_key = {}
            for k, v in found:
                by_key.setdefault(k, []).append(v)
            if task == "niah_multivalue":
                assert len(set(keys)) == 1 and sorted(r["answers"]) == sorted(by_key[keys[0]])
            else:
                assert len(set(keys)) == planted  # distractors have other keys
                asked = [k for k in keys if k in r["input"]]
                assert sorted(r["answers"]) == sorted(by_key[k][0] for k in asked)
                assert len(asked) == (4 if task == "niah_multiquery" else 1)
                targets.add(keys.index(asked[0]))
            assert r["needles"] == r["answers"]
        if task == "niah_multikey":
            assert targets == {0, 1, 2}  # the asked needle moves between samples


def test_paraphrase_rows_do_not_repeat_the_needle_words(suite):
    for r in rows(suite / "3072" / "niah_paraphrase.jsonl"):
        sentence = next(s.format(value=r["answers"][0]) for s, q in st.PARAPHRASES if q == r["input"])
        assert sentence in r["context"]
        assert not st.content_words(sentence) & st.content_words(r["input"])


def test_variable_tracking_chain_is_in_reading_order(suite):
    for r in rows(suite / "3072" / "vt.jsonl"):
        positions = [r["context"].index(s) for s in r["needles"]]
        assert positions == sorted(positions)
        value = re.search(r"the value (\d{5}) ", r["input"]).group(1)
        assert r["needles"][0] == f"VAR {r['answers'][0]} = {value}"
        for prev, name, stmt in zip(r["answers"], r["answers"][1:], r["needles"][1:]):
            assert stmt == f"VAR {name} = VAR {prev}"
        assert len(r["answers"]) == st.VT_HOPS + 1


def test_common_words_are_the_most_frequent(suite):
    for length, (u_min, ratio) in ((1024, st.CWE_REPEATS_SHORT), (3072, st.CWE_REPEATS_SHORT)):
        for r in rows(suite / str(length) / "cwe.jsonl"):
            words = re.findall(r"\d+\. (\S+)", r["context"])
            numbers = [int(n) for n in re.findall(r"(\d+)\. ", r["context"])]
            assert numbers == list(range(1, len(words) + 1))
            counts = Counter(words)
            top = [w for w, _ in counts.most_common(st.CWE_COMMON)]
            assert sorted(top) == sorted(r["answers"])
            assert {counts[w] for w in r["answers"]} == {r["meta"]["common_repeats"]}
            assert max(c for w, c in counts.items() if w not in r["answers"]) == r["meta"]["uncommon_repeats"]
            assert r["meta"]["common_repeats"] == ratio * r["meta"]["uncommon_repeats"]
            assert "needles" not in r


def test_frequent_words_follow_zipf(suite):
    for r in rows(suite / "3072" / "fwe.jsonl"):
        counts = Counter(r["context"].split())
        ranked = [w for w, _ in counts.most_common()]
        assert ranked[0] == "..." and ranked[1:4] == r["answers"]
        assert [counts[w] for w in ranked[:5]] == r["meta"]["counts"]
        assert counts[ranked[3]] > counts[ranked[4]]


def test_generation_is_deterministic_and_resumable(tmp_path, essays, llama2):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    args = ("--lengths", "1K", "--samples", "2", "--tasks", "niah_single,vt,fwe")
    generate(a, essays, *args, tokenizer=llama2)
    generate(b, essays, *args, "--jobs", "2", tokenizer=llama2)
    generate(c, essays, *args, "--seed", "1", tokenizer=llama2)
    for task in ("niah_single", "vt", "fwe"):
        assert (a / "1024" / f"{task}.jsonl").read_bytes() == (b / "1024" / f"{task}.jsonl").read_bytes()
        assert (a / "1024" / f"{task}.jsonl").read_bytes() != (c / "1024" / f"{task}.jsonl").read_bytes()
    again = json.loads(generate(a, essays, *args, tokenizer=llama2).stdout)
    assert all(v["skipped"] for v in again["lengths"]["1024"].values())
    more = json.loads(generate(a, essays, *args[:-2], "--tasks", "niah_single,cwe", tokenizer=llama2).stdout)
    assert more["lengths"]["1024"]["niah_single"]["skipped"] and not more["lengths"]["1024"]["cwe"]["skipped"]
    meta = json.loads((a / "1024" / "synth.json").read_text())
    assert set(meta["tasks"]) == {"niah_single", "vt", "fwe", "cwe"}


def test_errors_are_one_line(tmp_path, essays, llama2):
    proc = generate(tmp_path / "x", essays, "--lengths", "300", "--tasks", "cwe", tokenizer=llama2, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("synth_tasks: error: ") and proc.stderr.count("\n") == 1
    assert "cwe" in proc.stderr
    proc = generate(tmp_path / "x", essays, "--lengths", "1K", "--tasks", "nope", tokenizer=llama2, check=False)
    assert proc.returncode == 2 and "nope" in proc.stderr
    proc = generate(tmp_path / "x", tmp_path / "missing.json", "--lengths", "1K", tokenizer=llama2, check=False)
    assert proc.returncode == 1 and "missing.json" in proc.stderr and proc.stderr.count("\n") == 1
