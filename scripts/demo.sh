#!/usr/bin/env bash
# The main job on an installed model: sets everything up on first use (the model too, through
# scripts/get_model.sh), answers a short question directly, then indexes a document longer than the
# model's window (the GPL-3 and Apache-2.0 texts every Debian machine has, as two documents of one
# index) and answers a question about it with S3-Hybrid retrieval, printing the answer and the
# evidence it came from.
# Usage: scripts/demo.sh [--model NAME] [--device cpu|cuda] [--question TEXT] [--no-setup]
#   --model     smollm2-135m-instruct (default; 8K window) or qwen2.5-coder-1.5b-instruct (32K window,
#               a 1.1 GB download; on the CPU it answers slowly)
#   --device    cpu (default) or cuda
#   --no-setup  skip the setup, the build and the model's installation (an offline GPU node where
#               scripts/gpu_build.sh built the binary and models/NAME is already exported)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
usage="usage: scripts/demo.sh [--model NAME] [--device cpu|cuda] [--question TEXT] [--no-setup]"
name=smollm2-135m-instruct
device=cpu
setup=1
question="How many days after receiving notice of a violation does a licensee have to cure it?"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --model) [ "$#" -ge 2 ] || { echo "$usage" >&2; exit 2; }; name="$2"; shift 2 ;;
    --device) [ "$#" -ge 2 ] || { echo "$usage" >&2; exit 2; }; device="$2"; shift 2 ;;
    --question) [ "$#" -ge 2 ] || { echo "$usage" >&2; exit 2; }; question="$2"; shift 2 ;;
    --no-setup) setup=0; shift ;;
    *) echo "demo: error: unknown argument '$1'; $usage" >&2; exit 2 ;;
  esac
done
model="models/$name"
bin="$root/build/s3attn"
if [ "$setup" = 1 ]; then
  "$root/scripts/build.sh" s3attn
  if [ "$name" = smollm2-135m-instruct ]; then
    "$root/scripts/default_model.sh"
  else
    "$root/scripts/get_model.sh" "$name" --device "$device"
  fi
else
  for f in "$bin" "$model/model.json" "$model/sae/sae.json"; do
    [ -e "$f" ] || { echo "demo: error: --no-setup, but $f is missing" >&2; exit 1; }
  done
fi

echo "== generate ($name, $device) =="
q="What is the capital of France?"
echo "Q: $q"
printf 'A: '
"$bin" --log-level warn generate --model "$model" --chat --max-new-tokens 64 --prompt "$q" --device "$device"

echo
echo "== index a long document and ask about it =="
work="$root/runs/demo-$name"
mkdir -p "$work"
cp /usr/share/common-licenses/GPL-3 "$work/GPL-3.txt"
cp /usr/share/common-licenses/Apache-2.0 "$work/Apache-2.0.txt"
"$bin" index --model "$model" --sae "$model/sae" --input "$work/GPL-3.txt" "$work/Apache-2.0.txt" \
  --out "$work/index" --overwrite --device "$device"
"$bin" inspect "$work/index" | head -8
echo "Q: $question"
"$bin" ask --index "$work/index" --question "$question" --method s3-hybrid --budget 1024 --max-new-tokens 64 \
  --device "$device"
