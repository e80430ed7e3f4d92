"""scripts/check_format.py: every tracked C++ source follows .clang-format, and the check finds a file
that does not."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_format.py"

pytestmark = pytest.mark.skipif(not (shutil.which("clang-format-14") or shutil.which("clang-format")),
                                reason="clang-format is not installed (scripts/setup.sh installs it)")


def test_every_source_is_formatted():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_unformatted_file_is_found(tmp_path):
    good = tmp_path / "good.cpp"
    good.write_text("int f(int a) {\n  return a + 1;\n}\n")
    bad = tmp_path / "bad.cpp"
    bad.write_text("int   f( int a ){return a+1;}\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(good), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "bad.cpp" in proc.stdout and "good.cpp" not in proc.stdout, proc.stdout
