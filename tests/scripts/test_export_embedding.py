"""scripts/export_embedding.py and the C++ DenseEncoder (`s3attn embed`) against transformers.

A tiny random sentence-transformers folder (tiny_models.make_tiny_bert) is exported; its model.ts,
run in Python and through `s3attn embed` (C++ tokenizer, truncation, length-sorted padded batches),
must give transformers' mean-pooled, normalised embeddings on held-out passages (cosine >= 0.9999).
Error paths: unsupported pooling, unnormalised models, missing files, an existing --out; a failed
export leaves nothing behind. With the real all-MiniLM-L6-v2 installed (scripts/get_model.sh
all-minilm-l6-v2), `s3attn embed` is compared with its model.ts in Python, fed by Hugging Face
tokenizers.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s3attn_testing import REPO, assert_one_line_error, run_s3attn
from tiny_models import make_tiny_bert

EXPORT = REPO / "scripts" / "export_embedding.py"
MINILM = REPO / "models" / "all-minilm-l6-v2"
# Held-out passages (not the exporter's own verify set): languages, digits, punctuation, a long one.
PASSAGES = [
    "The keeper climbed the stairs of the lighthouse every night.",
    "Les chercheurs ont publié leurs résultats en 2024, après trois ans d'expériences.",
    "Der Zug nach München fährt um 14:35 von Gleis 7 ab.",
    "北京大学的图书馆藏书超过一千万册。",
    "Она открыла окно и посмотрела на заснеженную улицу.",
    "Numbers: 3.14159, 2,718 and -42; e-mail someone@example.com!",
    "",
    " ".join(["A long passage keeps going well past the model's maximum sequence length."] * 40),
]


def export(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPORT), "--hf", str(src), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny-bert")
    src = make_tiny_bert(root / "st")
    proc = export(src, root / "emb")
    assert proc.returncode == 0, proc.stderr
    assert "min cosine with transformers" in proc.stdout
    return src, root / "emb"


def reference(src: Path, texts: list[str], max_len: int) -> torch.Tensor:
    """transformers' BertModel + mean pooling + L2 normalisation (sentence-transformers' modules),
    fed by Hugging Face tokenizers: [CLS] + tokens cut to max_len - 2 + [SEP]."""
    from tokenizers import Tokenizer
    from transformers import BertModel

    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    model = BertModel.from_pretrained(str(src), add_pooling_layer=False).eval()
    out = []
    for t in texts:  # one at a time: no padding on the reference side
        ids = torch.tensor([[cls, *tok.encode(t, add_special_tokens=False).ids[:max_len - 2], sep]])
        with torch.no_grad():
            h = model(input_ids=ids).last_hidden_state[0]
        out.append(torch.nn.functional.normalize(h.mean(dim=0), dim=0))
    return torch.stack(out)


def cpp_embed(model_dir: Path, texts: list[str], tmp_path: Path) -> dict:
    file = tmp_path / "texts.json"
    file.write_text(json.dumps(texts), encoding="utf-8")
    return json.loads(run_s3attn("embed", "--model", model_dir, "--input", file, "--json").stdout)


def test_export_writes_the_directory(tiny):
    src, emb = tiny
    assert sorted(p.name for p in emb.iterdir()) == ["embedding.json", "model.ts", "tokenizer.json"]
    info = json.loads((emb / "embedding.json").read_text())
    assert info["format"] == "s3attn-embedding" and info["format_version"] == 1
    assert info["dim"] == 32 and info["max_seq_length"] == 48 and info["pooling"] == "mean" and info["normalize"]
    assert info["verify"]["ok"] and info["verify"]["min_cosine"] >= 0.9999
    tok = json.loads((emb / "tokenizer.json").read_text())
    assert tok["truncation"] is None and tok["padding"] is None and tok["model"]["type"] == "WordPiece"
    assert (info["cls_token_id"], info["sep_token_id"]) == (tok["model"]["vocab"]["[CLS]"], tok["model"]["vocab"]["[SEP]"])
    # The same weights give the same fingerprint.
    again = json.loads((emb / "embedding.json").read_text())["fingerprint"]
    assert len(again) == 64


def test_model_ts_matches_transformers(tiny):
    from tokenizers import Tokenizer

    src, emb = tiny
    module = torch.jit.load(str(emb / "model.ts"))
    tok = Tokenizer.from_file(str(emb / "tokenizer.json"))
    ids = [[2, *tok.encode(t, add_special_tokens=False).ids[:46], 3] for t in PASSAGES]
    width = max(map(len, ids))
    batch = torch.tensor([x + [0] * (width - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    with torch.no_grad():
        ours = module(batch, mask)
    ref = reference(src, PASSAGES, 48)
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=1)
    assert float(cos.min()) >= 0.9999, cos
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(PASSAGES)), atol=1e-5)


def test_cpp_embed_matches_transformers(tiny, tmp_path):
    """The C++ path: WordPiece tokenizer, truncation to max_seq_length, batches of mixed lengths."""
    src, emb = tiny
    texts = PASSAGES * 3  # several batches' worth, in mixed order
    out = cpp_embed(emb, texts, tmp_path)
    ours = torch.tensor(out["embeddings"])
    ref = reference(src, texts, 48)
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=1)
    assert float(cos.min()) >= 0.9999, cos
    from tokenizers import Tokenizer
    lengths = [len(Tokenizer.from_file(str(src / "tokenizer.json")).encode(t, add_special_tokens=False).ids)
               for t in texts]
    assert out["tokens"] == [min(n, 46) + 2 for n in lengths]  # [CLS] + at most 46 + [SEP]
    assert out["dim"] == 32 and out["truncated"] == sum(n > 46 for n in lengths) >= 3


def test_half_precision_export(tiny, tmp_path):
    src, _ = tiny
    proc = export(src, tmp_path / "bf16", "--dtype", "bfloat16")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "bf16" / "embedding.json").read_text())
    assert info["dtype"] == "bfloat16" and info["verify"]["ok"]
    out = cpp_embed(tmp_path / "bf16", PASSAGES, tmp_path)
    cos = torch.nn.functional.cosine_similarity(torch.tensor(out["embeddings"]), reference(src, PASSAGES, 48), dim=1)
    assert float(cos.min()) >= 0.99, cos


@pytest.mark.parametrize("problem,needle", [
    ("cls_pooling", "pooling"),
    ("unnormalised", "no Normalize module"),
    ("no_tokenizer", "no tokenizer.json"),
    ("no_config", "no config.json"),
    ("exists", "exists (use --overwrite"),
])
def test_bad_sources_fail_with_one_line(problem, needle, tmp_path):
    src = make_tiny_bert(tmp_path / "st", pooling="cls" if problem == "cls_pooling" else "mean",
                         normalize=problem != "unnormalised")
    if problem == "no_tokenizer":
        (src / "tokenizer.json").unlink()
    if problem == "no_config":
        (src / "config.json").unlink()
    out = tmp_path / "out"
    if problem == "exists":
        out.mkdir()
    proc = export(src, out)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "export_embedding: error:" in line]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    if problem != "exists":
        assert not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_sha256_needs_a_package(tmp_path):
    """--sha256 checks a downloaded wheel: with --hf, or not 64 hex digits, it is refused before any work."""
    for extra in (["--hf", str(tmp_path)], ["--package", "x==1"]):
        proc = subprocess.run([sys.executable, str(EXPORT), *extra, "--sha256", "ABC", "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "--sha256 needs --package and 64 lowercase hex digits" in proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


def test_bad_embedding_dirs_fail_with_one_line(tiny, tmp_path):
    _, emb = tiny
    proc = run_s3attn("embed", "--model", tmp_path / "missing", "--text", "x", check=False)
    assert_one_line_error(proc, 1, "does not exist", "get_model.sh all-minilm-l6-v2")
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "model.json").write_text("{}")
    proc = run_s3attn("embed", "--model", tmp_path / "llm", "--text", "x", check=False)
    assert_one_line_error(proc, 1, "not an embedding model directory", "language model")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in emb.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.ts").write_bytes(b"not a torchscript archive")
    proc = run_s3attn("embed", "--model", broken, "--text", "x", check=False)
    assert_one_line_error(proc, 1, "model.ts", "cannot be loaded")
    info = json.loads((emb / "embedding.json").read_text())
    info["format_version"] = 7
    (broken / "embedding.json").write_text(json.dumps(info))
    proc = run_s3attn("embed", "--model", broken, "--text", "x", check=False)
    assert_one_line_error(proc, 1, "embedding.json", "format_version 7")
    info["format_version"] = 1
    (broken / "model.ts").write_bytes((emb / "model.ts").read_bytes())
    info["pad_token_id"] = 1_000_000
    (broken / "embedding.json").write_text(json.dumps(info))
    proc = run_s3attn("embed", "--model", broken, "--text", "x", check=False)
    assert_one_line_error(proc, 1, "embedding.json", "pad_token_id 1000000 is outside the tokenizer's vocabulary")


# --- the real all-MiniLM-L6-v2, when installed --------------------------------------------------------

@pytest.fixture(scope="module")
def minilm() -> Path:
    if not (MINILM / "embedding.json").exists():
        pytest.skip("models/all-minilm-l6-v2 is not installed (scripts/get_model.sh all-minilm-l6-v2)")
    return MINILM


def test_minilm_export_was_verified(minilm):
    info = json.loads((minilm / "embedding.json").read_text())
    assert info["dim"] == 384 and info["max_seq_length"] == 256 and info["verify"]["min_cosine"] >= 0.9999


def test_minilm_cpp_embed_matches_its_model_ts(minilm, tmp_path):
    """C++ tokenizer + batching against Hugging Face tokenizers + the same model.ts, one text at a time."""
    from tokenizers import Tokenizer

    texts = PASSAGES * 2
    out = cpp_embed(minilm, texts, tmp_path)
    tok = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    module = torch.jit.load(str(minilm / "model.ts"))
    ref = []
    for t in texts:
        ids = torch.tensor([[101, *tok.encode(t, add_special_tokens=False).ids[:254], 102]])
        with torch.no_grad():
            ref.append(module(ids, torch.ones_like(ids))[0])
    cos = torch.nn.functional.cosine_similarity(torch.tensor(out["embeddings"]), torch.stack(ref), dim=1)
    assert float(cos.min()) >= 0.9999, cos
    # The sentence encoder ranks a paraphrase above an unrelated sentence.
    pair = cpp_embed(minilm, ["Where is the train to Munich leaving from?", "Der Zug nach München fährt ab.",
                              "The cat sleeps on the sofa."], tmp_path)["embeddings"]
    e = torch.tensor(pair)
    assert float(e[0] @ e[2]) < float(e[0] @ e[1]) or float(e[0] @ e[2]) < 0.3
