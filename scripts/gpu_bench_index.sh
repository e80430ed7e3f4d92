#!/usr/bin/env bash
# GPU benchmark of the S3 pipeline (docs/performance.md) on a random Llama-3.1-8B-shaped export with
# random SAEs of the paper's size (layers 0,12,16,29; d_in 128; 16,384 latents; k 128), against the
# bare chunked forward and transformers in the same run. Needs scripts/gpu_build.sh first. Usage:
#   scripts/gpu_bench_index.sh LLAMA3_TOKENIZER_JSON TEXT_FILE OUT_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tokenizer="$1"; text="$2"; out="$3"
mkdir -p "$out" models
export LD_LIBRARY_PATH="$root/.deps/prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
model=models/llama31-8b-random
[ -f $model/model.json ] || python3 scripts/export_model.py --random-init configs/models/llama-3.1-8b.json \
  --tokenizer "$tokenizer" --device cuda --dtype bfloat16 --out $model --overwrite
python3 scripts/make_random_sae.py --model $model --layers 0,12,16,29 --latents 16384 --k 128 --dtype bfloat16 \
  --out models/sae-paper-random
python3 scripts/bench_index.py --model $model --sae models/sae-paper-random --text "$text" \
  --tokens 131072 32768 524288 --hf-config configs/models/llama-3.1-8b.json --out /tmp/s3attn-bench \
  --rows "$out/bench_index.jsonl" --variant serial-encoder=--no-sae-overlap
