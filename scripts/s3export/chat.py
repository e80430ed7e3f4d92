"""Tokenizer-derived facts for model.json: BOS behaviour, stop ids, chat-template prefix/suffix; and
copying the tokenizer files into the model directory."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .errors import ExportError

PLACEHOLDER = "S3ATTN_USER_TEXT_PLACEHOLDER"
BOS_PROBE = "Hello world, 123."
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def warn(msg: str) -> None:
    print(f"export_model: warning: {msg}", file=sys.stderr)


def load_tokenizer(path: Path):
    """A transformers fast tokenizer from an HF directory or a tokenizer.json file."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    try:
        if path.is_file():
            return PreTrainedTokenizerFast(tokenizer_file=str(path))
        if path.is_dir():
            if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
                raise ExportError(f"{path}: no tokenizer files (tokenizer.json / tokenizer_config.json)")
            return AutoTokenizer.from_pretrained(str(path))
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{path}: cannot load the tokenizer ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    raise ExportError(f"{path}: no such tokenizer file or directory")


def write_tokenizer_files(tok, src: Optional[Path], out_dir: Path) -> None:
    """tokenizer.json (+ tokenizer_config.json, ...) into out_dir: copied verbatim from `src` when it has
    them, otherwise written by the loaded tokenizer's save_pretrained."""
    src = Path(src) if src is not None else None
    if src is not None and src.is_file():
        shutil.copyfile(src, out_dir / "tokenizer.json")
        return
    copied = False
    if src is not None and (src / "tokenizer.json").exists():
        for name in TOKENIZER_FILES:
            if (src / name).exists():
                shutil.copyfile(src / name, out_dir / name)
        copied = True
    if not copied:
        if not getattr(tok, "is_fast", False):
            raise ExportError("the tokenizer has no fast (tokenizer.json) form")
        with tempfile.TemporaryDirectory() as tmp:
            tok.save_pretrained(tmp)
            if not (Path(tmp) / "tokenizer.json").exists():
                raise ExportError("the tokenizer could not be saved as tokenizer.json")
            for name in TOKENIZER_FILES:
                if (Path(tmp) / name).exists():
                    shutil.copyfile(Path(tmp) / name, out_dir / name)


def adds_bos(tok) -> bool:
    """Whether encoding with add_special_tokens=True prepends BOS (decided by encoding a probe)."""
    if tok.bos_token_id is None:
        return False
    with_sp = tok(BOS_PROBE, add_special_tokens=True)["input_ids"]
    plain = tok(BOS_PROBE, add_special_tokens=False)["input_ids"]
    return len(with_sp) > len(plain) and with_sp[0] == tok.bos_token_id and with_sp[1:1 + len(plain)] == plain


def chat_template_parts(tok) -> Optional[dict]:
    """{"prefix", "suffix"} of the template rendered for one user message and add_generation_prompt=True;
    None when there is no template or it cannot be split around the user text."""
    if not getattr(tok, "chat_template", None):
        return None
    try:
        text = tok.apply_chat_template([{"role": "user", "content": PLACEHOLDER}], tokenize=False,
                                       add_generation_prompt=True)
    except Exception as e:
        warn(f"chat template could not be rendered ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
             "chat_template is null")
        return None
    if not isinstance(text, str) or text.count(PLACEHOLDER) != 1:
        warn("chat template does not contain the user text exactly once; chat_template is null")
        return None
    prefix, suffix = text.split(PLACEHOLDER)
    return {"prefix": prefix, "suffix": suffix}


def read_generation_eos(src_dir: Optional[Path]) -> list[int]:
    if src_dir is None or not (Path(src_dir) / "generation_config.json").is_file():
        return []
    try:
        g = json.loads((Path(src_dir) / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        warn("generation_config.json is unreadable; ignored")
        return []
    v = g.get("eos_token_id")
    if v is None:
        return []
    return [int(x) for x in (v if isinstance(v, list) else [v])]


def tokenizer_facts(tok) -> dict:
    """The tokenizer's part of model.json (all null/false without a tokenizer)."""
    if tok is None:
        return {"add_bos_token": False, "bos_token": None, "bos_token_id": None, "eos_token_id": None,
                "pad_token_id": None, "chat_template": None, "tokenizer_size": None}
    return {
        "add_bos_token": adds_bos(tok),
        "bos_token": tok.bos_token if tok.bos_token_id is not None else None,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "chat_template": chat_template_parts(tok),
        "tokenizer_size": len(tok),
    }
