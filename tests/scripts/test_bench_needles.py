"""scripts/bench_needles.py: its pure functions (sentence boundaries, needle insertion, depth placement,
coverage, where the S3 ranges went) without the model, the needle list against the essays, and one
small end-to-end run (2 needles, 3,000-token haystacks, CPU, default model)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from s3attn_testing import REPO, s3attn_binary
import bench_needles as bn

SCRIPT = REPO / "scripts" / "bench_needles.py"


def word_offsets(text: str) -> list[tuple[int, int]]:
    """A stand-in tokenizer for the pure functions: one token per whitespace-separated word."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def sample_text(sentences: int) -> str:
    return " ".join(f"Sentence number {i} has a few words in it." for i in range(sentences))


# ---------------------------------------------------------------- pure functions

def test_depths_spread_evenly_over_5_to_95_percent():
    assert bn.needle_depths(5) == pytest.approx([0.05, 0.275, 0.5, 0.725, 0.95])
    assert bn.needle_depths(1) == [0.5]
    assert bn.needle_depths(0) == []
    d = bn.needle_depths(len(bn.NEEDLES))
    assert d[0] == pytest.approx(0.05) and d[-1] == pytest.approx(0.95)
    steps = [b - a for a, b in zip(d, d[1:])]
    assert all(s == pytest.approx(steps[0]) and s > 0 for s in steps)


def test_sentence_boundaries():
    text = 'One two. Three four? "Five six." Seven (eight). nine ten! Eleven'
    starts = [text[b:b + 6] for b in bn.sentence_boundaries(text)]
    assert starts == ["Three ", '"Five ', "Seven ", "Eleven"]  # not before "nine": lower case
    assert bn.sentence_boundaries("no boundary here") == []


def test_nearest_boundary_prefers_the_closest_then_the_earlier():
    assert bn.nearest_boundary([10, 20, 40], 26) == 20
    assert bn.nearest_boundary([10, 20, 40], 30) == 20
    assert bn.nearest_boundary([10, 20, 40], 31) == 40
    with pytest.raises(ValueError):
        bn.nearest_boundary([], 5)


@pytest.mark.parametrize("depth", [0.05, 0.3, 0.5, 0.77, 0.95])
def test_needle_goes_in_at_a_sentence_boundary_near_its_depth(depth):
    text = sample_text(60)
    offsets = word_offsets(text)
    needle = bn.NEEDLES[0].sentence
    out, at = bn.place_needle(text, offsets, needle, depth)
    # Exactly the needle and one space were added, at `at`, between two whole sentences.
    assert out[at:at + len(needle)] == needle
    assert out[:at] + out[at + len(needle) + 1:] == text
    assert out[:at].endswith(". ") and out[at + len(needle)] == " " and out[at + len(needle) + 1] == "S"
    # The boundary is within one sentence (9 words) of the target token.
    token = len(word_offsets(out[:at]))
    assert abs(token - depth * len(offsets)) <= 9
    assert bn.place_needle(text, offsets, needle, depth) == (out, at)  # deterministic


def test_depths_give_distinct_increasing_positions():
    text = sample_text(200)
    offsets = word_offsets(text)
    positions = [bn.place_needle(text, offsets, "A fact.", d)[1] for d in bn.needle_depths(8)]
    assert positions == sorted(set(positions))
    with pytest.raises(ValueError):
        bn.place_needle(text, offsets, "A fact.", 1.5)


def test_token_span_covers_the_sentence_tokens():
    text = "Aa bb. Cc dd ee. Ff"
    offsets = word_offsets(text)
    assert bn.token_span(offsets, text.index("Cc"), text.index("ee.") + 3) == (2, 5)
    assert bn.token_span(offsets, text.index("dd") + 1, text.index("dd") + 2) == (3, 4)


def test_evidence_text_and_coverage():
    ev = [{"start": 0, "end": 5, "text": "ab", "source": "lead", "score": 0},
          {"start": 5, "end": 9, "text": "cd", "source": "s3", "score": 2.0},
          {"start": 20, "end": 30, "text": "ef", "source": "bm25", "score": 1.0}]
    assert bn.evidence_text(ev) == "\nabcd\nef"  # touching ranges run together
    assert bn.covered(ev, 2, 9) and bn.covered(ev, 20, 30)
    assert not bn.covered(ev, 8, 10) and not bn.covered(ev, 19, 21)


def test_s3_spans_near_the_needle():
    ev = [{"start": 10, "end": 40, "text": "", "source": "s3", "score": 5.0},
          {"start": 100, "end": 130, "text": "", "source": "bm25", "score": 9.0},
          {"start": 4100, "end": 4150, "text": "", "source": "s3", "score": 7.0},
          {"start": 200, "end": 220, "text": "", "source": "s3", "score": 1.0}]
    near = bn.s3_spans_near(ev, 210, 215, chunk=4096)
    assert near["rank"] == 3 and near["gap"] == 0 and near["nearest_start_distance"] == 10
    assert [s["start"] for s in near["spans"]] == [4100, 10, 200]  # by score
    assert [s["chunk_offset"] for s in near["spans"]] == [4, 10, 200]
    far = bn.s3_spans_near(ev, 1000, 1010, chunk=4096)
    assert far["rank"] is None and far["gap"] == 780 and far["nearest_start_distance"] == 800


def test_parse_variants():
    assert bn.parse_variants(None, "--aggregate max") == {"default": ["--aggregate", "max"]}
    v = bn.parse_variants("base=; cap64=--max-query-features 64;w=--smooth-width 8 --max-span 128", "--lead 0")
    assert v == {"base": ["--lead", "0"], "cap64": ["--lead", "0", "--max-query-features", "64"],
                 "w": ["--lead", "0", "--smooth-width", "8", "--max-span", "128"]}
    for bad in ("noequals", "a=1;a=2", "bad name=--x", ";"):
        with pytest.raises(ValueError):
            bn.parse_variants(bad, "")
    assert bn.option_value(["--chunk", "2048"], "--chunk", 4096) == 2048
    assert bn.option_value(["--chunk=1024"], "--chunk", 4096) == 1024
    assert bn.option_value([], "--chunk", 4096) == 4096


# ---------------------------------------------------------------- the needle list

def test_needles_are_unambiguous_against_the_essays(data_dir):
    essays = json.loads((data_dir / "haystack" / "PaulGrahamEssays.json").read_text())["text"].lower()
    assert len(bn.NEEDLES) >= 16
    assert len({n.question for n in bn.NEEDLES}) == len(bn.NEEDLES)
    assert len({n.answer.lower() for n in bn.NEEDLES}) == len(bn.NEEDLES)
    for n in bn.NEEDLES:
        assert n.answer in n.sentence, n
        assert n.answer.lower() not in n.question.lower(), n
        assert n.answer.lower() not in essays, n
        assert bn.sentence_boundaries(n.sentence + " Next") == [len(n.sentence) + 1], n  # one sentence
        for other in bn.NEEDLES:
            assert other is n or n.answer.lower() not in other.sentence.lower(), (n, other)


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def small_run(default_model, data_dir, tmp_path_factory):
    binary = s3attn_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with scripts/build.sh")
    out = tmp_path_factory.mktemp("needles")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--binary", str(binary), "--model", str(default_model),
                           "--data", str(data_dir), "--device", "cpu", "--needles", "2", "--haystack-tokens", "3000",
                           "--ask-variants", "base=;cap8=--max-query-features 8", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), out


def test_small_run_shape_and_recall(small_run):
    result, out = small_run
    assert json.loads((out / "needles.json").read_text()) == result
    methods = ["s3", "bm25", "s3-hybrid"]
    assert result["config"]["methods"] == methods and result["config"]["needles"] == 2
    assert set(result["recall"]) == {"base", "cap8"}
    for v in ("base", "cap8"):
        assert set(result["recall"][v]) == set(methods)
        assert all(0.0 <= r <= 1.0 for r in result["recall"][v].values())
        assert result["retrieval_time"][v]["s3"]["encode_query_ms_mean"] > 0
    # BM25 finds both facts at this size, and a cap on SAE query features cannot change BM25.
    assert result["recall"]["base"]["bm25"] == 1.0 == result["recall"]["cap8"]["bm25"]
    assert result["covered"]["base"]["bm25"] == 1.0
    rows = result["rows"]
    assert len(rows) == 2
    assert rows[0]["depth"] != rows[1]["depth"]
    for row, target in zip(rows, (0.05, 0.95)):
        assert row["depth_target"] == target and abs(row["depth"] - target) < 0.03
        assert abs(row["haystack_tokens"] - 3000) <= 3 and row["index"]["tokens"] == row["haystack_tokens"]
        begin, end = row["needle_tokens"]
        assert 0 < end - begin < 40
        for v in ("base", "cap8"):
            for m in methods:
                res = row["results"][v][m]
                assert res["evidence_tokens"] == 1024 == sum(res["tokens_by_source"].values())
                assert not res["covered"] or res["retrieved"]  # the whole sentence holds the answer
            assert "s3" in row["results"][v]["s3"]
    assert result["index"]["bytes_per_token"] > 0 and result["index"]["postings_mean"] > 0
    # The control question's asks: one per real ask, with the same settings.
    assert result["config"]["control_question"] == bn.CONTROL_QUESTION
    assert set(result["control_recall"]) == {"base", "cap8"}
    assert all(isinstance(row["results"][v][m]["control_retrieved"], bool)
               for row in rows for v in ("base", "cap8") for m in methods)
    # Every command is recorded: 2 indexes, 2 needles x 2 variants x 3 methods x (question, control) asks.
    assert len(result["commands"]) == 2 + 2 * 2 * 3 * 2
    assert sum("--max-query-features 8" in c for c in result["commands"]) == 12
    assert sum(bn.CONTROL_QUESTION in c for c in result["commands"]) == 12
    assert not any((out / f"needle_{i:02d}" / "index").exists() for i in range(2))
    assert (out / "needle_00" / "haystack.txt").read_text().count(bn.NEEDLES[0].sentence) == 1
