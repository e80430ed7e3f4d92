"""Provenance of a benchmark row: which s3attn build made it and on which device.

Every benchmark script stamps its rows with `stamp(binary, device)`, so a number in docs/ can be
traced to the commit and the GPU that produced it even when the rows are read on their own.
"""
import functools
import re
import subprocess
from pathlib import Path

_VERSION_LINE = re.compile(r"^s3attn (\S+) \(commit (\S+)\)$")


@functools.cache
def binary_version(binary: Path) -> tuple[str, str]:
    """(version, commit) from `s3attn --version`; ("unknown", "unknown") for a binary that does not
    say (an older build)."""
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    match = _VERSION_LINE.match(proc.stdout.strip())
    return (match.group(1), match.group(2)) if match else ("unknown", "unknown")


@functools.cache
def device_name(device: str) -> str:
    """The GPU's name as nvidia-smi gives it ("NVIDIA H100 80GB HBM3") for cuda / cuda:N, "cpu" for
    the CPU, "unknown" when nvidia-smi cannot say."""
    if not device.startswith("cuda"):
        return "cpu"
    index = device.partition(":")[2] or "0"
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", index],
                              capture_output=True, text=True, timeout=60)
    except OSError:
        return "unknown"
    name = proc.stdout.strip()
    return name if proc.returncode == 0 and name else "unknown"


def stamp(binary: Path, device: str) -> dict:
    """The fields every benchmark row carries: s3attn's version and commit, the device's name."""
    version, commit = binary_version(Path(binary))
    return {"s3attn_version": version, "commit": commit, "device_name": device_name(device)}
