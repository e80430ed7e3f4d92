#!/usr/bin/env bash
# Prepares an offline bundle for GPU nodes without internet: .deps/debs/*.deb (the Debian packages
# s3attn builds against: dev headers + shared libraries) and .deps/wheels/*.whl (the Python
# packages scripts/export_model.py needs beyond torch and transformers: gguf and what it imports,
# for the node's Python, PYVER, default 3.12). scripts/gpu_build.sh unpacks both. Run on a
# Debian 12 machine with apt and pip access.
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
# gguf (GGUF exports) and its imports, as wheels for the node's Python (no dependencies resolved:
# numpy comes with torch there).
wheels="$root/.deps/wheels"
mkdir -p "$wheels"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$wheels" \
  gguf==0.19.0 pyyaml tqdm requests urllib3 idna certifi charset_normalizer >&2
ls -1 "$wheels"
