#!/usr/bin/env bash
# Configures and builds s3attn into build/ (binary: build/s3attn). Extra arguments are build targets.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
jobs="${S3ATTN_JOBS:-$(nproc)}"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >&2
fi
if [ "$#" -gt 0 ]; then
  cmake --build build -j "$jobs" --target "$@" >&2
else
  cmake --build build -j "$jobs" >&2
fi
