#!/usr/bin/env bash
# GPU check and speed of `s3attn generate` (docs/performance.md), on a machine set up by
# scripts/gpu_build.sh: the default model (exported from its GGUF) and a random Llama-3.1-8B-shaped
# export, each against transformers in the same run. Usage:
#   scripts/gpu_bench_generate.sh GGUF_FILE LLAMA3_TOKENIZER_JSON OUT_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gguf="$1"; tokenizer="$2"; out="$3"
mkdir -p "$out" models
export LD_LIBRARY_PATH="$root/.deps/prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

python3 scripts/export_model.py --gguf "$gguf" --out models/default --dtype float32 --overwrite
build/s3attn generate --model models/default --chat --device cuda --dtype bfloat16 --json \
  --prompt "What is the capital of France?" | tee "$out/default_answer.json"
python3 scripts/bench_generate.py --model models/default --hf-gguf "$gguf" --device cuda --dtype bfloat16 \
  --prompt-tokens 512 2048 7680 --new-tokens 128 --out "$out/bench_generate.jsonl"

python3 scripts/export_model.py --random-init configs/models/llama-3.1-8b.json --tokenizer "$tokenizer" \
  --device cuda --dtype bfloat16 --out models/llama31-8b-random --overwrite
build/s3attn generate --model models/llama31-8b-random --device cuda --dtype bfloat16 --json \
  --prompt "Hello" --max-new-tokens 8 | tee "$out/llama8b_smoke.json"
python3 scripts/bench_generate.py --model models/llama31-8b-random --hf-config configs/models/llama-3.1-8b.json \
  --device cuda --dtype bfloat16 --prompt-tokens 2048 8192 --new-tokens 128 --out "$out/bench_generate.jsonl"
