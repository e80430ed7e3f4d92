#!/usr/bin/env bash
# Installs the default model, SmolLM2-135M-Instruct, with its committed SAE (scripts/get_model.sh
# smollm2-135m-instruct) and makes models/default point at it. The SAE records the model's
# fingerprint (a hash of the weights), so a mismatched export is refused when the SAE is loaded.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/get_model.sh" smollm2-135m-instruct
# models/default was a directory of its own before get_model.sh existed: replace it by the link.
if [ ! -L models/default ]; then
  rm -rf models/default
  ln -s smollm2-135m-instruct models/default
fi
