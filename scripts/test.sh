#!/usr/bin/env bash
# Builds s3attn and runs every test: GoogleTest suites (ctest) and pytest (Python and end-to-end CLI
# tests). Tests that need the data folder read it from $S3ATTN_DATA and skip themselves, by name,
# without it. GPU tests run only where CUDA is present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh"
export S3ATTN_BIN="$root/build/s3attn"
# ctest runs suites side by side: one intra-op thread each keeps LibTorch's spinning threads from
# oversubscribing the cores; pytest runs one s3attn at a time with all of them.
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" ctest --test-dir build --output-on-failure -j "${S3ATTN_JOBS:-$(nproc)}"
"$root/.venv/bin/python" -m pytest tests -q -rs "$@"
