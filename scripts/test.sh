#!/usr/bin/env bash
# Builds s3attn and runs every test: GoogleTest suites (ctest) and pytest (Python and end-to-end CLI
# tests). Tests that need ../shared/data read it from $S3ATTN_DATA and skip themselves, by name,
# without it. GPU tests run only where CUDA is present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh"
export S3ATTN_BIN="$root/build/s3attn"
ctest --test-dir build --output-on-failure -j "${S3ATTN_JOBS:-$(nproc)}"
"$root/.venv/bin/python" -m pytest tests -q -rs "$@"
