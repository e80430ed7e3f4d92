#!/usr/bin/env bash
# Builds s3attn on an offline GPU machine whose python3 has torch (LibTorch) and transformers:
# unpacks the bundle from scripts/gpu_bundle.sh into .deps/prefix (never into /), installs its
# wheels into .deps/site, and builds into build/ against the machine's torch. Extra arguments are
# build targets (default: everything). Prints the environment lines to use the binary and the
# export scripts.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
prefix="$root/.deps/prefix"
if [ ! -d "$prefix/usr" ]; then
  for deb in .deps/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
if [ -d .deps/wheels ] && [ ! -d .deps/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target .deps/site .deps/wheels/*.whl >&2
fi
torch_prefix="$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DS3ATTN_PYTHON="$(command -v python3)" \
  -DCMAKE_PREFIX_PATH="$prefix/usr;$torch_prefix" -DCMAKE_DISABLE_FIND_PACKAGE_ccache=ON -DS3ATTN_WERROR=OFF >&2
cmake --build build -j "$(nproc)" ${1:+--target "$@"} >&2
echo "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if [ -d .deps/site ]; then echo "export PYTHONPATH=$root/.deps/site\${PYTHONPATH:+:\$PYTHONPATH}"; fi
