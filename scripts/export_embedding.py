#!/usr/bin/env python3
"""Export a sentence-transformers (BERT, mean pooling) checkpoint to an s3attn embedding model directory.

    scripts/export_embedding.py (--package SPEC | --hf DIR) --out DIR [--dtype float32|bfloat16|float16]
        [--max-seq-length N] [--no-verify] [--overwrite]

The directory contract is docs/model-format.md ("Embedding model directory"); usage: docs/export.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from s3export.embedding import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
