"""safetensors interop between sae/ (C++) and Hugging Face `safetensors` (Python), both ways.

The C++ side is driven through tests/sae/safetensors_tool ($S3ATTN_SAFETENSORS_TOOL, default
build/tests/sae/safetensors_tool): `write` produces known tensors that Python's load_file must read
bit for bit; `dump` prints what C++ reads from files that Python's save_file wrote; `write-sae`
writes an SAE directory whose layer files and sae.json Python must understand.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]


def tool() -> Path:
    path = Path(os.environ.get("S3ATTN_SAFETENSORS_TOOL",
                               REPO / "build" / "tests" / "sae" / "safetensors_tool"))
    if not path.exists():
        pytest.fail(f"{path} is missing: build the safetensors_tool target (scripts/build.sh does)")
    return path


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool()), *args], capture_output=True, text=True, check=check)


def expected_tensors() -> dict[str, torch.Tensor]:
    """Keep in sync with known_tensors() in safetensors_tool.cpp."""
    base = torch.arange(24, dtype=torch.float32).view(2, 3, 4) * 0.5 - 3
    return {
        "f32": base,
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f64": torch.arange(5, dtype=torch.float64) / 3,
        "i64": torch.tensor([-3, 0, 1 << 40, -(1 << 40)], dtype=torch.int64),
        "i32": torch.arange(-4, 5, dtype=torch.int32),
        "i16": torch.arange(-300, 300, 100, dtype=torch.int16),
        "u8": torch.arange(0, 250, 10, dtype=torch.uint8),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(42.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.view(6, 4).t().contiguous(),
    }


def test_cpp_writes_python_reads(tmp_path: Path) -> None:
    path = tmp_path / "cpp.safetensors"
    run("write", str(path))
    got = load_file(str(path))
    want = expected_tensors()
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"creator": "s3attn", "note": "ünicode ✓"}
    # Header length makes the data buffer 8-byte aligned, as Python's writer does.
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert (8 + n) % 8 == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64,
                                   torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                   torch.bool])
def test_python_writes_cpp_reads(tmp_path: Path, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(7)
    if dtype.is_floating_point:
        values = (torch.randn(3, 5, 7, generator=g) * 100).to(dtype)
    elif dtype == torch.bool:
        values = torch.rand(3, 5, 7, generator=g) > 0.5
    else:
        info = torch.iinfo(dtype)
        values = torch.randint(max(info.min, -1000), min(info.max, 1000) + 1, (3, 5, 7),
                               generator=g).to(dtype)
    tensors = {"x": values, "also": torch.arange(6, dtype=torch.float32).view(2, 3).t(),
               "s": torch.tensor(1.25)}
    tensors["also"] = tensors["also"].contiguous()
    path = tmp_path / "py.safetensors"
    save_file(tensors, str(path), metadata={"who": "python", "n": "3"})
    out = json.loads(run("dump", str(path)).stdout)
    assert out["metadata"] == {"who": "python", "n": "3"}
    for name, tensor in tensors.items():
        entry = out["tensors"][name]
        assert entry["shape"] == list(tensor.shape), name
        assert entry["values"] == tensor.double().flatten().tolist(), name
    assert out["tensors"]["x"]["dtype"] == {
        torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
        torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
        torch.uint8: "U8", torch.bool: "BOOL"}[dtype]


def test_cpp_rejects_corrupted_python_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(100)}, str(path))
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", 1 << 40)  # header length far beyond the file
    path.write_bytes(bytes(data))
    res = run("dump", str(path), check=False)
    assert res.returncode == 1
    assert str(path) in res.stderr and "header length" in res.stderr
    assert res.stderr.count("\n") == 1  # one line, no stack trace
    # Truncated data.
    save_file({"x": torch.zeros(100)}, str(path))
    path.write_bytes(path.read_bytes()[:-16])
    res = run("dump", str(path), check=False)
    assert res.returncode == 1 and "run past the data buffer" in res.stderr


def test_sae_directory_readable_from_python(tmp_path: Path) -> None:
    out = tmp_path / "sae"
    run("write-sae", str(out))
    info = json.loads((out / "sae.json").read_text())
    assert info["format"] == "s3attn-sae" and info["format_version"] == 1
    assert info["layers"] == [2, 9] and info["d_in"] == 8 and info["d_latent"] == 32
    assert info["k"] == 4 and info["head_mode"] == "per-head"
    for layer in info["layers"]:
        t = load_file(str(out / f"layer_{layer}.safetensors"))
        assert {n: tuple(v.shape) for n, v in t.items()} == {
            "W_enc": (32, 8), "b_enc": (32,), "W_dec": (32, 8), "b_dec": (8,)}
        assert torch.allclose(t["W_dec"].norm(dim=1), torch.ones(32), atol=1e-6)
