"""Helpers shared by the pytest suites: the s3attn binary and running it."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO / "scripts", REPO / "tests" / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def s3attn_binary() -> Path:
    return Path(os.environ.get("S3ATTN_BIN", REPO / "build" / "s3attn"))


def run_s3attn(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the binary; with check=True a non-zero exit fails the test with its stderr."""
    proc = subprocess.run([str(s3attn_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"s3attn {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def run_json(*args: str) -> dict:
    return json.loads(run_s3attn(*args).stdout)


def assert_one_line_error(proc, code: int, *needles: str) -> None:
    """A failed command: exit `code`, one `error: ...` line on stderr naming `needles`, no trace."""
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, err)
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    for bad in ("Traceback", "terminate called", "Exception raised from", "c10::"):
        assert bad not in err, err
    for needle in needles:
        assert needle in err, err


def xxh3_64_hex(data: bytes) -> str:
    """XXH3-64 (seed 0) as 16 hex digits, from the system's libxxhash (the library s3attn links)."""
    import ctypes
    import ctypes.util
    lib = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return f"{lib.XXH3_64bits(data, len(data)):016x}"


def rewrite_manifest(index_dir: Path, edit) -> None:
    """Edits an index's manifest.json with `edit(dict)` and recomputes its checksum (the XXH3-64 of the
    compact, key-sorted dump without it: docs/index-format.md), so that only the edit is wrong."""
    path = Path(index_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    manifest.pop("checksum", None)
    compact = json.dumps(manifest, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    manifest["checksum"] = xxh3_64_hex(compact.encode("utf-8"))
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_model(hf_dir: Path, out: Path, dtype: str = "float32") -> Path:
    """Exports a Hugging Face checkpoint with scripts/export_model.py; returns the model dir."""
    subprocess.run([sys.executable, str(REPO / "scripts" / "export_model.py"), "--hf", str(hf_dir), "--out", str(out),
                    "--dtype", dtype], check=True, capture_output=True, timeout=600)
    return out


def export_tiny_bert(root: Path, seed: int = 0) -> Path:
    """A tiny random sentence-transformers BERT (tiny_models.make_tiny_bert) in root/st, exported by
    scripts/export_embedding.py to root/emb; returns root/emb."""
    from tiny_models import make_tiny_bert

    src = make_tiny_bert(root / "st", seed=seed)
    subprocess.run([sys.executable, str(REPO / "scripts" / "export_embedding.py"), "--hf", str(src), "--out",
                    str(root / "emb")], check=True, capture_output=True, timeout=600)
    return root / "emb"


def read_postings(postings_file: Path) -> list[list[int]]:
    """Every feature's positions from one varint-delta postings-lNNN.bin (docs/index-format.md),
    read independently of the C++ reader."""
    import struct
    data = postings_file.read_bytes()
    assert data[:4] == b"S3IX" and data[-8:] == b"S3IXEND\0", postings_file
    codec_id, _layer, _slot, d_latent, _n_tokens, _reserved, n_postings, data_bytes = struct.unpack_from(
        "<IiIIIIQQ", data, 16)
    assert codec_id == 1, f"{postings_file}: codec {codec_id} is not varint-delta"
    df = struct.unpack_from(f"<{d_latent}I", data, 56)
    offsets_at = 56 + 4 * d_latent
    offsets_at += -offsets_at % 8
    offsets = struct.unpack_from(f"<{d_latent + 1}Q", data, offsets_at)
    base = offsets_at + 8 * (d_latent + 1)
    lists = []
    for f in range(d_latent):
        pos, prev, out = base + offsets[f], -1, []
        for _ in range(df[f]):
            value, shift = 0, 0
            while True:
                byte = data[pos]
                pos += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            prev = prev + 1 + value
            out.append(prev)
        assert pos == base + offsets[f + 1], f"{postings_file}: feature {f} does not end where its range does"
        lists.append(out)
    assert sum(df) == n_postings and offsets[-1] == data_bytes
    return lists


WORDS = ("river market library grain merchant scholar harbor lantern copper orchard meadow bridge "
         "winter signal archive compass garden tower valley forest candle mirror").split()


def make_text(seed: int, sentences: int) -> str:
    """Seeded filler text for the tiny models: sentences of 6 to 14 WORDS, a blank line every 9."""
    rng = random.Random(seed)
    out = []
    for i in range(sentences):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + ".")
        if i % 9 == 8:
            out.append("\n\n")
    return " ".join(out)
