#!/usr/bin/env python3
"""Export a Hugging Face checkpoint, a GGUF file or a random-init config to an s3attn model directory.

    scripts/export_model.py (--hf DIR | --gguf FILE | --random-init CONFIG_JSON) --out MODEL_DIR
        [--dtype float32|bfloat16|float16] [--device cpu|cuda] [--tokenizer FILE_OR_DIR]
        [--verify] [--overwrite] [--seed N] [--std S]

The model directory contract is docs/model-format.md; usage, families and tolerances: docs/export.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from s3export.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
