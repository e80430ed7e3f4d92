#!/usr/bin/env python3
"""Checks that every tracked C++/CUDA source follows .clang-format (clang-format 14, the version
scripts/setup.sh installs), or the files given.

    python3 scripts/check_format.py [FILE...]

Prints the files that clang-format would change and exits 1 if there is any; `clang-format-14 -i
FILE` fixes one. CI runs it through tests/scripts/test_check_format.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = (".cpp", ".h", ".cu", ".cuh")


def clang_format() -> str:
    for name in ("clang-format-14", "clang-format"):
        if path := shutil.which(name):
            return path
    sys.exit("check_format: clang-format-14 is not installed (scripts/setup.sh installs it)")


def tracked_sources() -> list[Path]:
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", *(f"*{s}" for s in SUFFIXES)],
                           capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def unformatted(files: list[Path], binary: str) -> list[Path]:
    bad = []
    for f in files:
        proc = subprocess.run([binary, "--dry-run", "-Werror", f"--style=file:{ROOT / '.clang-format'}", str(f)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            bad.append(f)
    return bad


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv[1:]] or tracked_sources()
    bad = unformatted(files, clang_format())
    for f in bad:
        print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: not formatted as .clang-format says")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
