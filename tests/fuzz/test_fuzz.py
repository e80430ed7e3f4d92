"""The fuzz targets of tests/fuzz (docs/fuzzing.md) in the test flow: every committed crash input of
tests/fuzz/regressions/ is replayed, then each target runs for a few seconds from its seeds (a
minute or so in all), so that a reader that crashes, trips a sanitizer, hangs or throws something
other than s3::Error fails the suite. Long runs: scripts/fuzz.sh --seconds 600."""
from __future__ import annotations

import os
import subprocess

import pytest

from s3attn_testing import REPO

TARGETS = ["manifest", "segment", "safetensors", "tokenizer", "jsonl"]
SECONDS = int(os.environ.get("S3ATTN_FUZZ_SECONDS", "10"))


def fuzz(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "fuzz.sh"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> str:
    """A corpus folder of this session's own: starts from the seeds, never shares runs/fuzz/ with
    a long run that may be going on."""
    return str(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def replayed(work) -> subprocess.CompletedProcess:
    """Builds build-fuzz/ (clang, libFuzzer, ASan, UBSan) and replays the committed crash inputs."""
    return fuzz("--replay-only", "--work", work, timeout=1800)


def test_committed_crash_inputs_replay_cleanly(replayed):
    assert replayed.returncode == 0, replayed.stderr[-6000:]
    assert "fuzz: ok:" in replayed.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_short_fuzz_run_finds_nothing(replayed, work, target):
    assert replayed.returncode == 0, "the fuzz build or a replay failed"
    run = fuzz("--seconds", str(SECONDS), "--work", work, target, timeout=SECONDS + 300)
    assert run.returncode == 0, run.stderr[-6000:]
    assert f"fuzz: {target}: stat::number_of_executed_units:" in run.stderr, run.stderr[-3000:]
