#!/usr/bin/env bash
# The synthetic long-context suite on one GPU (docs/synthetic.md): generates the tasks for the
# model's tokenizer, measures the scaling curves (scripts/bench_index.py, alone on the GPU), then
# runs every method at every length with `s3attn longbench`, JOBS processes sharing the GPU, the
# longest lengths first. Resumable: run it again after an interruption (finished rows, lengths and
# scaling rows are kept). Needs build/s3attn (scripts/gpu_build.sh s3attn) and an exported model
# with its SAE (MODEL_DIR/sae).
# Usage:
#   scripts/gpu_synth.sh MODEL_DIR DATA_DIR OUT_DIR
# DATA_DIR has the layout of ../shared/data (haystack/PaulGrahamEssays.json). OUT_DIR gets runs/,
# scaling/ and logs/ (small: rows without contexts); the generated tasks (~60 MB per million-token
# length and task at 2 samples) go to WORK (default OUT_DIR/data).
# Environment (defaults):
#   LENGTHS ("4K 8K 32K 128K 512K 1M"); lengths of at least LONG_FROM (256K) use LONG_TASKS
#   ("niah_single niah_multikey") and LONG_SAMPLES (2), the others TASKS (all) and SAMPLES (4);
#   METHODS ("full bm25 s3 s3-hybrid"; full only where the length fits the model's window);
#   BUDGET (2048), RESERVE (64: tokens kept for the chat template), SEED (0), JOBS (12 processes at
#   once), SHARDS (2 per length and method), BATCH (8), DTYPE (bfloat16), DEVICE (cuda);
#   STEPS ("generate scaling runs"); SCALING_LENGTHS (= LENGTHS), HF_MAX (128K: transformers' full
#   prefill up to this length); ARGS (flags added to every run, e.g. --answer-model DIR);
#   PYTHON (python3), S3ATTN_BIN (build/s3attn); LIMIT and CAP (--limit, --max-new-tokens-cap: smoke tests only;
#   with DEVICE=cpu DTYPE=float32 it runs anywhere, as tests/scripts/test_synth_suite.py does).
# Then, on a machine with the scorer's packages (.venv):
#   .venv/bin/python scripts/synth_report.py OUT_DIR --label NAME
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$#" -ne 3 ]; then
  echo "usage: scripts/gpu_synth.sh MODEL_DIR DATA_DIR OUT_DIR" >&2
  exit 2
fi
model="$1"; data="$2"; out="$3"
work="${WORK:-$out/data}"
lengths="${LENGTHS:-4K 8K 32K 128K 512K 1M}"; long_from="${LONG_FROM:-262144}"
tasks="${TASKS:-all}"; samples="${SAMPLES:-4}"
long_tasks="${LONG_TASKS:-niah_single niah_multikey}"; long_samples="${LONG_SAMPLES:-2}"
methods="${METHODS:-full bm25 s3 s3-hybrid}"; budget="${BUDGET:-2048}"; reserve="${RESERVE:-64}"
seed="${SEED:-0}"; jobs="${JOBS:-12}"; shards="${SHARDS:-2}"; batch="${BATCH:-8}"
dtype="${DTYPE:-bfloat16}"; device="${DEVICE:-cuda}"; steps="${STEPS:-generate scaling runs}"
hf_max="${HF_MAX:-131072}"
py="${PYTHON:-python3}"; bin="${S3ATTN_BIN:-$root/build/s3attn}"
for f in "$bin" "$model/model.json" "$model/sae/sae.json" "$data/haystack/PaulGrahamEssays.json"; do
  [ -e "$f" ] || { echo "gpu_synth: error: $f is missing" >&2; exit 1; }
done
mkdir -p "$out/logs" "$out/runs" "$out/scaling" "$work"

tokens_of() {  # 4K -> 4096, 1M -> 1048576
  "$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); import synth_tasks as s; print(s.parse_length(sys.argv[2]))' \
    "$root/scripts" "$1"
}
window="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["max_position_embeddings"])' "$model/model.json")"
max_length=$((window - reserve))
short=(); long=()
for l in $lengths; do
  n="$(tokens_of "$l")" || exit 2
  if [ "$n" -ge "$long_from" ]; then long+=("$n"); else short+=("$n"); fi
done
# The lengths, longest first (their runs start first), with their task lists.
all_lengths="$(printf '%s\n' "${short[@]}" "${long[@]}" | grep . | sort -rn | tr '\n' ' ')"
tasks_at() {
  local t="$tasks"
  [ "$1" -ge "$long_from" ] && t="$long_tasks"
  if [ "$t" = all ]; then
    "$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); import synth_tasks as s; print(",".join(s.TASKS))' "$root/scripts"
  else
    echo "$t" | tr ' ' ','
  fi
}
echo "gpu_synth: window $window, max length $max_length, lengths: $all_lengths" >&2

if [[ " $steps " == *" generate "* ]]; then
  start=$SECONDS
  gen=("$py" "$root/scripts/synth_tasks.py" --model "$model" --haystack "$data/haystack/PaulGrahamEssays.json"
       --seed "$seed" --reserve "$reserve" --jobs "$(nproc)" --out "$work")
  if ((${#short[@]})); then
    "${gen[@]}" --lengths "${short[@]}" --tasks "$(tasks_at 0)" --samples "$samples" >"$out/logs/generate-short.json" || exit 1
  fi
  if ((${#long[@]})); then
    "${gen[@]}" --lengths "${long[@]}" --tasks "$(tasks_at "$long_from")" --samples "$long_samples" \
      >"$out/logs/generate-long.json" || exit 1
  fi
  echo "gpu_synth: generated in $((SECONDS - start)) s" >&2
fi

if [[ " $steps " == *" scaling "* ]]; then
  start=$SECONDS
  scaling=()
  for l in ${SCALING_LENGTHS:-$lengths}; do scaling+=("$(tokens_of "$l")"); done
  rows="$out/scaling/bench_index.jsonl"
  have=0
  [ -f "$rows" ] && have="$(grep -c '"what": "ask"' "$rows")"
  if [ "$have" -lt "${#scaling[@]}" ]; then
    rm -f "$rows"
    "$py" -c 'import json, sys; open(sys.argv[2], "w").write(json.load(open(sys.argv[1]))["text"])' \
      "$data/haystack/PaulGrahamEssays.json" "$work/essays.txt"
    OMP_NUM_THREADS=1 "$py" "$root/scripts/bench_index.py" --model "$model" --sae "$model/sae" --text "$work/essays.txt" \
      --tokens "${scaling[@]}" --every-length --hf-config model --hf-max-tokens "$hf_max" --new-tokens 32 \
      --device "$device" --dtype "$dtype" --binary "$bin" --out "$work/scaling" --rows "$rows" \
      >"$out/logs/scaling.out" 2>"$out/logs/scaling.err" || { echo "gpu_synth: scaling failed:" >&2; tail -3 "$out/logs/scaling.err" >&2; }
  fi
  echo "gpu_synth: scaling in $((SECONDS - start)) s" >&2
fi

if [[ " $steps " == *" runs "* ]]; then
  start=$SECONDS
  extra=()
  [ -n "${CAP:-}" ] && extra+=(--max-new-tokens-cap "$CAP")
  [ -n "${LIMIT:-}" ] && extra+=(--limit "$LIMIT")
  read -r -a common <<< "${ARGS:-}"
  extra+=("${common[@]}")
  running=0
  for n in $all_lengths; do
    for method in $methods; do
      if [ "$method" = full ] && [ "$n" -gt "$window" ]; then continue; fi
      for ((rank = 0; rank < shards; rank++)); do
        if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
        RANK=$rank WORLD_SIZE=$shards OMP_NUM_THREADS=1 "$bin" longbench --data "$work/$n" \
          --config "$work/config" --tasks "$(tasks_at "$n")" --model "$model" --method "$method" --budget "$budget" \
          --max-length "$max_length" --batch "$batch" --device "$device" --dtype "$dtype" "${extra[@]}" \
          --label "$method" --out "$out/runs/$n/$method" \
          >"$out/logs/run-$n-$method-$rank.json" 2>"$out/logs/run-$n-$method-$rank.err" &
        running=$((running + 1))
      done
    done
  done
  wait
  echo "gpu_synth: runs in $((SECONDS - start)) s" >&2
fi

status=0
for f in "$out"/logs/*.err; do
  [ -e "$f" ] || continue
  if grep -q "error: " "$f"; then echo "== $f"; tail -3 "$f"; status=1; fi
done
for n in $all_lengths; do
  for method in $methods; do
    [ -d "$out/runs/$n/$method" ] || continue
    printf '%s %s: %s rows\n' "$n" "$method" "$(cat "$out/runs/$n/$method"/*.jsonl 2>/dev/null | wc -l)"
  done
done
exit $status
