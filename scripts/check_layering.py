#!/usr/bin/env python3
"""Checks the layering of docs/architecture.md ("Libraries and what may use what") on the sources:
which folder's headers each C++/CUDA file may include, and which files may include LibTorch.

    python3 scripts/check_layering.py [ROOT]

Prints one line per violation (FILE:LINE: what, and the rule) and exits 1 if there is any, 0 otherwise.
CI runs it through tests/scripts/test_check_layering.py, so a lower layer including a higher one fails
the tests."""
from __future__ import annotations

import re
import sys
from pathlib import Path

# Layers by folder (longest prefix wins) and the layers each may include.
LAYERS = {
    "core/base": "base",
    "core/tokenizer": "tokenizer",
    "core/runtime": "runtime",
    "core/pipeline": "pipeline",
    "index": "index",
    "index/bench": "index-tool",
    "retrieval": "retrieval",
    "retrieval/bench": "retrieval-tool",
    "sae": "sae",
    "sae/bench": "sae-tool",
    "cli": "cli",
}
MAY_INCLUDE = {
    "base": {"base"},
    "tokenizer": {"base", "tokenizer"},
    "runtime": {"base", "tokenizer", "runtime"},
    "index": {"base", "index"},
    "retrieval": {"base", "retrieval"},
    "sae": {"base", "sae"},
    "pipeline": {"base", "tokenizer", "runtime", "sae", "index", "retrieval", "pipeline"},
    "cli": {"base", "tokenizer", "runtime", "sae", "index", "retrieval", "pipeline", "cli"},
    "index-tool": {"base", "index", "index-tool"},
    "sae-tool": {"base", "sae", "sae-tool"},
    # A tool that scores a real on-disk index: it adapts the reader through the pipeline's adapters.
    "retrieval-tool": {"base", "retrieval", "retrieval-tool", "index", "index-tool", "pipeline"},
}
# Files that may include LibTorch (<torch/...>, <ATen/...>, <c10/...>): the .cpp files of the runtime, the
# pipeline and s3_sae, the runtime's LibTorch-facing headers and the pipeline's one internal header (the
# loaded SAE its .cpp files share), and sae/'s ATen-facing headers. The
# pipeline's headers stay free of it, so that cli/ can include them; so do s3_sae_io's files.
TORCH_HEADERS_ALLOWED = {"core/runtime/model_torch.h", "core/runtime/torch_util.h", "core/runtime/decode_graph.h", "core/runtime/aoti_decode.h",
                         "core/runtime/dense_model_torch.h", "core/pipeline/tapped_sae_torch.h"}
SAE_IO = {"sae/safetensors", "sae/options", "sae/sae_info"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
TORCH = re.compile(r"^(torch|ATen|c10)/")


def layer_of(rel: str) -> str | None:
    best = None
    for prefix, layer in LAYERS.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return best[1] if best else None


def may_use_torch(rel: str) -> bool:
    layer = layer_of(rel)
    stem = rel.rsplit(".", 1)[0]
    if layer in ("runtime", "pipeline"):
        return rel.endswith(".cpp") or rel in TORCH_HEADERS_ALLOWED
    if layer in ("sae", "sae-tool"):
        return stem not in SAE_IO
    return False


def check(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".cpp", ".h", ".cu", ".cuh") or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in ("build", ".venv", "models", "tests", "third_party", ".deps"):
            continue
        layer = layer_of(rel)
        if layer is None:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            bracket, header = m.groups()
            if bracket == "<":
                if TORCH.match(header) and not may_use_torch(rel):
                    problems.append(f"{rel}:{number}: includes LibTorch <{header}>; {layer} files may not "
                                    "(docs/architecture.md, 'The rule', 1)")
                continue
            target = layer_of(header)
            if target is None:
                continue  # a file next to this one, or a generated header
            if target not in MAY_INCLUDE[layer]:
                problems.append(f"{rel}:{number}: {layer} includes {target} (\"{header}\"); {layer} may include "
                                f"only {', '.join(sorted(MAY_INCLUDE[layer]))} (docs/architecture.md, 'The rule', 2)")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    problems = check(root)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
