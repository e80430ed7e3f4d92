#!/usr/bin/env bash
# LongBench and L-Eval with every method on one GPU (docs/results.md). Each (suite, method) runs as
# SHARDS processes (RANK/WORLD_SIZE) sharing the GPU, each generating BATCH samples at a time
# (`s3attn longbench --batch`). Resumable: run it again to finish an interrupted run. Needs
# build/s3attn (scripts/build.sh or scripts/gpu_build.sh) and an exported model with its SAE.
# Usage:
#   scripts/gpu_longbench.sh MODEL_DIR DATA_DIR OUT_DIR
# DATA_DIR has the layout of the data folder ($S3ATTN_DATA): longbench/v1, longbench/config, leval.
# Environment (defaults): METHODS ("full bm25 s3 s3-hybrid"), TASKS (multi_news), SUITES
# ("longbench leval"), SHARDS (2), BATCH (16), BUDGET (2048), DTYPE (bfloat16), DEVICE (cuda);
# RUNS: more runs beside METHODS, ";"-separated "LABEL=METHOD [flags...]" (e.g.
# "s3-paper=s3 --query-vectors queries --aggregate sum --score-centering none --max-query-features 0;
# bm25@1024=bm25 --budget 1024"), each into OUT_DIR/<suite>/LABEL; RUN_SUITES: the suites RUNS apply
# to (default: SUITES); ARGS: flags added to every run (e.g. --answer-model DIR); LEVAL_TASKS (all);
# LIMIT and CAP (--limit, --max-new-tokens-cap) for smoke tests only; DENSE_MODEL
# (models/all-minilm-l6-v2, scripts/get_model.sh all-minilm-l6-v2): the --dense-model of the runs
# whose method is dense or s3-dense (e.g. METHODS="full bm25 s3 s3-hybrid dense s3-dense");
# MAX_PROCS (0: every process at once): at most this many processes on the GPU at a time, the others
# queued; RETRIES (3): a process that fails with "out of device memory" (the GPU full of the others)
# is queued again, up to this many times, RETRY_WAIT (30) seconds later — it resumes its rows;
# S3ATTN_BIN (build/s3attn).
# Then, where the scorer's packages are installed (scripts/setup.sh):
#   .venv/bin/python scripts/longbench_score.py OUT_DIR/longbench/* ; same for OUT_DIR/leval/*
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$1"; data="$2"; out="$3"
methods="${METHODS-full bm25 s3 s3-hybrid}"; tasks="${TASKS:-multi_news}"; suites="${SUITES:-longbench leval}"
shards="${SHARDS:-2}"; batch="${BATCH:-16}"; budget="${BUDGET:-2048}"; dtype="${DTYPE:-bfloat16}"
device="${DEVICE:-cuda}"
dense_model="${DENSE_MODEL:-$root/models/all-minilm-l6-v2}"
bin="${S3ATTN_BIN:-$root/build/s3attn}"
max_procs="${MAX_PROCS:-0}"; retries="${RETRIES:-3}"; retry_wait="${RETRY_WAIT:-30}"
extra=()
[ -n "${LIMIT:-}" ] && extra+=(--limit "$LIMIT")
[ -n "${CAP:-}" ] && extra+=(--max-new-tokens-cap "$CAP")
read -r -a common <<< "${ARGS:-}"
extra+=("${common[@]}")
mkdir -p "$out/logs"
job_names=()  # one per process: SUITE-LABEL-RANK (its logs' names)
job_cmds=()   # the process's command, quoted for eval
labels=()
launch_failed=0
# One (suite, label) run: SHARDS processes; "$@" = the method and its flags.
launch() {
  local suite="$1" label="$2"; shift 2
  local args
  if [ "$suite" = leval ]; then
    args=(--suite leval --data "$data/leval" --tasks "${LEVAL_TASKS:-all}")
  else
    args=(--data "$data/longbench/v1" --config "$data/longbench/config" --tasks "$tasks")
  fi
  [[ " $* " == *" --budget "* ]] || args+=(--budget "$budget")
  if [[ "$1" == dense || "$1" == s3-dense ]] && [[ " $* ${extra[*]} " != *" --dense-model "* ]]; then
    if [ ! -f "$dense_model/embedding.json" ]; then
      echo "gpu_longbench: $suite/$label: no dense model at $dense_model (scripts/get_model.sh all-minilm-l6-v2, or set DENSE_MODEL)" >&2
      launch_failed=1
      return 0
    fi
    args+=(--dense-model "$dense_model")
  fi
  for ((rank = 0; rank < shards; rank++)); do
    job_names+=("$suite-$label-$rank")
    job_cmds+=("$(printf '%q ' env RANK=$rank WORLD_SIZE=$shards OMP_NUM_THREADS=1 "$bin" longbench \
      "${args[@]}" --model "$model" --batch "$batch" --device "$device" --dtype "$dtype" "${extra[@]}" \
      --label "$label" --out "$out/$suite/$label" --method "$@")")
  done
  labels+=("$suite/$label")
}
for suite in $suites; do
  for method in $methods; do launch "$suite" "$method" "$method"; done
done
IFS=';' read -r -a runs <<< "${RUNS:-}"
for suite in ${RUN_SUITES:-$suites}; do
  for run in "${runs[@]}"; do
    run="$(echo "$run" | sed 's/^ *//; s/ *$//')"
    [ -n "$run" ] || continue
    read -r -a spec <<< "${run#*=}"
    launch "$suite" "${run%%=*}" "${spec[@]}"
  done
done
status=$launch_failed
# The processes: MAX_PROCS at a time (all when 0); one that ran out of device memory goes back to
# the queue (its rows resume), the others' failures are reported below.
declare -A job_of tries
queue=("${!job_names[@]}")
running=0
while ((${#queue[@]} + running > 0)); do
  while ((${#queue[@]} > 0)) && { [ "$max_procs" -eq 0 ] || [ "$running" -lt "$max_procs" ]; }; do
    i="${queue[0]}"; queue=("${queue[@]:1}")
    name="${job_names[$i]}"
    eval "${job_cmds[$i]}" >"$out/logs/$name.json" 2>"$out/logs/$name.err" &
    job_of[$!]=$i; tries[$i]=$(( ${tries[$i]:-0} + 1 )); running=$((running + 1))
  done
  finished=""
  wait -n -p finished; rc=$?
  running=$((running - 1)); i="${job_of[$finished]}"; unset "job_of[$finished]"
  [ "$rc" -eq 0 ] && continue
  name="${job_names[$i]}"
  if grep -q "out of device memory" "$out/logs/$name.err" && [ "${tries[$i]}" -le "$retries" ]; then
    echo "gpu_longbench: $name: out of device memory (try ${tries[$i]}); queued again in $retry_wait s" >&2
    sleep "$retry_wait"
    queue+=("$i")
  else
    status=1
  fi
done
for f in "$out"/logs/*.err; do
  if grep -q "error" "$f"; then echo "== $f"; tail -3 "$f"; fi
done
for label in "${labels[@]}"; do
  printf '%s: %s rows\n' "$label" "$(cat "$out/$label"/*.jsonl 2>/dev/null | wc -l)"
done
exit $status
