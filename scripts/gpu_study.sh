#!/usr/bin/env bash
# The quality study of docs/results.md for one model on one GPU: LongBench lcc (200 rows) and
# multi_news (200) and the four L-Eval files (600 questions), with `full`, `bm25`, `s3` (today's
# defaults), `s3-paper` (the paper's scoring: the question's queries, sum, no centering, no feature
# cap), `s3-hybrid`, `dense` and `s3-dense` (all-MiniLM-L6-v2 passages, docs/dense.md) at the same
# budget (2,048), plus bm25 / s3 / s3-hybrid / dense at 1,024 and 4,096 on L-Eval QuALITY.
# Resumable (run it again after an interruption). Then score on any machine with the scorer's
# packages (scripts/setup.sh):
#   .venv/bin/python scripts/longbench_score.py OUT/longbench/* ; and OUT/leval/*, OUT/budgets/leval/*
# Usage: scripts/gpu_study.sh MODEL_DIR DATA_DIR OUT_DIR
# DATA_DIR has the layout of the project's data folder: longbench/v1/multi_news.jsonl,
# longbench/lcc_waterbench200.jsonl (WaterBench's 200 lcc rows, read as LongBench rows), longbench/config,
# leval/*.jsonl. Environment: SHARDS (1), BATCH (16), DTYPE (bfloat16), DEVICE (cuda), ARGS (flags for
# every run, e.g. "--answer-model DIR"), METHODS (full bm25 s3 s3-hybrid dense s3-dense; the dense
# ones read DENSE_MODEL, default models/all-minilm-l6-v2 from scripts/get_model.sh), PAPER (yes:
# the s3-paper run), PAPER_FLAGS (its flags), BUDGETS (yes: the QuALITY budget runs); LIMIT and CAP for smoke tests
# (scripts/gpu_longbench.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$1"; data="$(cd "$2" && pwd)"; mkdir -p "$3"; out="$(cd "$3" && pwd)"
paper="${PAPER_FLAGS:---query-vectors queries --aggregate sum --score-centering none --max-query-features 0 --max-query-postings 0}"
# LongBench's file names: lcc.jsonl beside multi_news.jsonl (links; the data stay where they are).
staged="$out/data"
"$root/scripts/stage_longbench_data.sh" "$data" "$staged"
export SHARDS="${SHARDS:-1}"
status=0
runs=""
[ "${PAPER:-yes}" = yes ] && runs="s3-paper=s3 $paper"
TASKS="lcc,multi_news" METHODS="${METHODS-full bm25 s3 s3-hybrid dense s3-dense}" RUNS="$runs" \
  "$root/scripts/gpu_longbench.sh" "$model" "$staged" "$out" || status=1
if [ "${BUDGETS:-yes}" = yes ]; then
  runs=""
  for b in 1024 4096; do
    for m in bm25 s3 s3-hybrid dense; do runs+="$m@$b=$m --budget $b;"; done
  done
  SUITES=leval LEVAL_TASKS=quality METHODS="" RUNS="$runs" \
    "$root/scripts/gpu_longbench.sh" "$model" "$staged" "$out/budgets" || status=1
fi
exit $status
