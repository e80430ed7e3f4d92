"""Hugging Face checkpoint directories and random-init configs -> (ModelSpec, HF-named state dict)."""

from __future__ import annotations

from pathlib import Path

from .errors import ExportError
from .spec import config_from_dict, read_config_json, spec_from_config

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def check_hf_dir(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path}: no such directory")
    if not path.is_dir():
        raise ExportError(f"{path}: not a directory (for a GGUF file use --gguf)")
    if not (path / "config.json").is_file():
        raise ExportError(f"{path}: not a Hugging Face model directory (no config.json)")
    d = read_config_json(path / "config.json")
    if not any(any(path.glob(p)) for p in WEIGHT_PATTERNS):
        raise ExportError(f"{path}: no weights (*.safetensors or pytorch_model*.bin)")
    return d


def load_hf(path: Path, dtype):
    """(spec, transformers model in `dtype` on the CPU). The model's tensors become model.ts's weights
    (shared, not copied) and it is the reference for --verify."""
    from transformers import AutoConfig, AutoModelForCausalLM

    check_hf_dir(path)
    quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(str(path))
    except Exception as e:
        raise ExportError(f"{path}/config.json: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    spec = spec_from_config(config)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, attn_implementation="sdpa")
    except Exception as e:
        raise ExportError(f"{path}: cannot load the weights ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    model.eval()
    return spec, model


def load_random_init_config(path: Path):
    d = read_config_json(Path(path))
    quiet_transformers()
    return spec_from_config(config_from_dict(d))
