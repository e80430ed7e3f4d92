#!/usr/bin/env bash
# Prepares an offline bundle of the Debian packages s3attn builds against, for GPU nodes without
# internet: .deps/debs/*.deb (dev headers + shared libraries). scripts/gpu_build.sh unpacks it.
# Run on a Debian 12 machine with apt access.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/.deps/debs"
mkdir -p "$out"
packages=(
  libcli11-dev nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libgtest-dev
  libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2 libstemmer-dev libstemmer0d
  libxxhash-dev libxxhash0 libstreamvbyte-dev libstreamvbyte0
)
cd "$out"
missing=()
for p in "${packages[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then apt-get download "${missing[@]}" >&2; fi
ls -1 "$out"
