#!/usr/bin/env bash
# The main job on the default model (SmolLM2-135M-Instruct, 8K-token window): sets everything up on
# first use, answers a short question directly, then indexes a document longer than the model's
# window (the GPL-3 and Apache-2.0 texts every Debian machine has) and answers a question about it
# with S3-Hybrid retrieval, printing the answer and the evidence it came from.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh" s3attn
"$root/scripts/default_model.sh"
bin="$root/build/s3attn"

echo "== generate =="
question="What is the capital of France?"
echo "Q: $question"
printf 'A: '
"$bin" --log-level warn generate --model models/default --chat --max-new-tokens 64 --prompt "$question"

echo
echo "== index a long document and ask about it =="
work="$root/runs/demo"
mkdir -p "$work"
doc="$work/licenses.txt"
cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 > "$doc"
"$bin" index --model models/default --sae models/default/sae --input "$doc" --out "$work/index" --overwrite
"$bin" inspect "$work/index" | head -8
question="${1:-How many days after receiving notice of a violation does a licensee have to cure it?}"
echo "Q: $question"
"$bin" ask --index "$work/index" --question "$question" --method s3-hybrid --budget 1024 --max-new-tokens 64
