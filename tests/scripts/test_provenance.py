"""Benchmark rows carry the s3attn build and the device (scripts/provenance.py), read from the binary
itself: `s3attn --version` names CMakeLists.txt's version and a commit of this repository."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provenance import binary_version, device_name, stamp

ROOT = Path(__file__).resolve().parents[2]


def project_version() -> str:
    return re.search(r"project\(s3attn VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text()).group(1)


def built_binary() -> Path:
    import os
    binary = Path(os.environ.get("S3ATTN_BIN", ROOT / "build" / "s3attn"))
    if not binary.exists():
        pytest.skip(f"test_provenance: {binary} is not built")
    return binary


def test_version_and_commit_of_the_build():
    version, commit = binary_version(built_binary())
    assert version == project_version()
    if commit == "unknown":  # built from a tree without git and without $S3ATTN_COMMIT
        return
    match = re.fullmatch(r"([0-9a-f]{40})(-dirty)?", commit)
    assert match, commit
    if shutil.which("git") and (ROOT / ".git").exists():
        assert subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", match.group(1) + "^{commit}"]).returncode == 0


def test_a_binary_that_does_not_say_is_unknown():
    assert binary_version(Path(shutil.which("true"))) == ("unknown", "unknown")


def test_device_names():
    assert device_name("cpu") == "cpu"
    name = device_name("cuda:0")
    assert name and "\n" not in name
    if not shutil.which("nvidia-smi"):
        assert name == "unknown"


def test_stamp_fields():
    row = stamp(built_binary(), "cpu")
    assert set(row) == {"s3attn_version", "commit", "device_name"} and row["device_name"] == "cpu"
