#!/usr/bin/env bash
# Links the data folder's LongBench and L-Eval files under the names `s3attn longbench` reads
# (WaterBench's lcc rows as longbench/v1/lcc.jsonl beside multi_news.jsonl); the data stay where
# they are. Usage: scripts/stage_longbench_data.sh DATA_DIR STAGED_DIR
set -euo pipefail
data="$(cd "$1" && pwd)"; staged="$2"
mkdir -p "$staged/longbench/v1"
ln -sfn "$data/longbench/config" "$staged/longbench/config"
ln -sfn "$data/leval" "$staged/leval"
ln -sf "$data/longbench/v1/multi_news.jsonl" "$staged/longbench/v1/multi_news.jsonl"
ln -sf "$data/longbench/lcc_waterbench200.jsonl" "$staged/longbench/v1/lcc.jsonl"
