#!/usr/bin/env bash
# SAE training throughput on the GPU and the SAE configuration sweep (docs/sae.md §11, docs/needles.md),
# on the default model (SmolLM2-135M-Instruct, exported from its GGUF), on a machine set up by
# scripts/gpu_build.sh. Usage:
#   scripts/gpu_sae.sh GGUF_FILE DATA_DIR OUT_DIR [all|throughput|needles|sweep]
# Stages (default all):
#   throughput  `s3attn sae train --device cuda` at the default SAE's size (4,096 latents, k 32) with
#               batches of 1,024 and 4,096, and at the paper's latents and k (16,384, k 128) on the same
#               model: OUT/throughput.jsonl, one `sae train --json` summary per line (vectors_per_s).
#   needles     bench_needles.py with the committed default SAE (16 needles, 12,000-token haystacks):
#               OUT/needles_default/needles.json.
#   sweep       sae_sweep.py over latents x k at the default taps, then two other tap sets at 4,096 / k 32:
#               OUT/sweep/sweep.jsonl. Rows already there are skipped, so a sweep cut short by a time
#               limit continues when the stage is run again.
# Knobs (environment, defaults in brackets): DEVICE (cuda), THROUGHPUT_CONFIGS ("4096:32:1024 4096:32:4096
# 16384:128:4096", latents:k:batch), THROUGHPUT_STEPS (300), NEEDLES (16), HAYSTACK_TOKENS (12000),
# SWEEP_LATENTS (2048,4096,8192,16384), SWEEP_K (8,16,32,64), SWEEP_LAYER_SETS ("3,11,19,27;0,7,15,23"),
# SWEEP_LAYERS_LATENTS (4096), SWEEP_LAYERS_K (32), SWEEP_STEPS (700), SWEEP_BATCH (1024),
# SWEEP_NEEDLES (8), SWEEP_EVAL_TOKENS (16384), JOBS (8: needles indexed and asked side by side),
# S3ATTN_BIN (build/s3attn), PYTHON (python3). The same stages run on the CPU with DEVICE=cpu and tiny
# settings (docs/sae.md §11).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gguf="$1"; data="$(cd "$2" && pwd)"; mkdir -p "$3"; out="$(cd "$3" && pwd)"; stage="${4:-all}"
case "$stage" in all|throughput|needles|sweep) ;; *) echo "unknown stage '$stage'" >&2; exit 2 ;; esac
export LD_LIBRARY_PATH="$root/.deps/prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="${S3ATTN_BIN:-$root/build/s3attn}"
py="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
jobs="${JOBS:-8}"
hay="${HAYSTACK_TOKENS:-12000}"
corpus="$data/corpora/wikitext-2-v1_test.jsonl"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  > "$out/gpu.txt" || true

# The default model and its committed SAE (as scripts/default_model.sh, from the given GGUF).
if [ ! -f models/default/model.json ] || [ ! -f models/default/model.ts ]; then
  "$py" scripts/export_model.py --gguf "$gguf" --out models/default --dtype float32 --overwrite
fi
if [ ! -f models/default/sae/sae.json ] || ! cmp -s assets/sae/smollm2-135m-instruct/sae.json models/default/sae/sae.json; then
  rm -rf models/default/sae.tmp
  cp -r assets/sae/smollm2-135m-instruct models/default/sae.tmp
  rm -rf models/default/sae
  mv models/default/sae.tmp models/default/sae
fi

if [ "$stage" = all ] || [ "$stage" = throughput ]; then
  tp_steps="${THROUGHPUT_STEPS:-300}"
  for cfg in ${THROUGHPUT_CONFIGS:-4096:32:1024 4096:32:4096 16384:128:4096}; do
    IFS=: read -r -a f <<< "$cfg"; set -- "${f[@]}"
    rm -rf "$out/sae-throughput"
    "$bin" sae train --model models/default --corpus "$corpus" --doc-field content --latents "$1" --k "$2" \
      --batch "$3" --steps "$tp_steps" --device "$device" --checkpoint-every 0 --out "$out/sae-throughput" --json \
      | "$py" -c 'import json, sys; r = json.loads(sys.stdin.read()); r.update(latents=int(sys.argv[1]), k=int(sys.argv[2]), batch=int(sys.argv[3]), device=sys.argv[4]); print(json.dumps(r))' \
        "$1" "$2" "$3" "$device" | tee -a "$out/throughput.jsonl"
  done
  rm -rf "$out/sae-throughput"
fi

if [ "$stage" = all ] || [ "$stage" = needles ]; then
  "$py" scripts/bench_needles.py --binary "$bin" --model models/default --data "$data" --device "$device" \
    --needles "${NEEDLES:-16}" --haystack-tokens "$hay" --jobs "$jobs" \
    --ask-variants "base=;cap64=--max-query-features 64;aggmax=--aggregate max" \
    --out "$out/needles_default" > /dev/null
fi

if [ "$stage" = all ] || [ "$stage" = sweep ]; then
  sweep=("$py" scripts/sae_sweep.py --binary "$bin" --model models/default --data "$data" --device "$device"
         --steps "${SWEEP_STEPS:-700}" --batch "${SWEEP_BATCH:-1024}" --needles "${SWEEP_NEEDLES:-8}"
         --haystack-tokens "$hay" --eval-tokens "${SWEEP_EVAL_TOKENS:-16384}" --bench-args "--jobs $jobs"
         --out "$out/sweep")
  "${sweep[@]}" --latents "${SWEEP_LATENTS:-2048,4096,8192,16384}" --k "${SWEEP_K:-8,16,32,64}" > /dev/null
  "${sweep[@]}" --latents "${SWEEP_LAYERS_LATENTS:-4096}" --k "${SWEEP_LAYERS_K:-32}" \
    --layers-sets "${SWEEP_LAYER_SETS:-3,11,19,27;0,7,15,23}" > /dev/null
fi
echo "results in $out" >&2
