#!/usr/bin/env bash
# On a GPU machine (see docs/sae.md, "GPU checks"): builds only the sae/ targets against the
# machine's torch and the offline Debian bundle (.deps, from scripts/gpu_bundle.sh), runs every
# sae test (the *Cuda* ones included) and the interop pytest, then sae_bench at the paper size.
# Logs go to $1 (default /tmp/sae_gpu_check). Exit status: the tests'.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${1:-/tmp/sae_gpu_check}"
mkdir -p "$out"
prefix="$root/.deps/prefix"
if [ ! -d "$prefix/usr" ]; then
  for deb in .deps/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
torch_prefix="$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
build="${S3ATTN_BUILD:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DS3ATTN_PYTHON="$(command -v python3)" \
  -DCMAKE_PREFIX_PATH="$prefix/usr;$torch_prefix" -DCMAKE_DISABLE_FIND_PACKAGE_ccache=ON \
  >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target sae_tests sae_io_tests safetensors_tool sae_bench \
  >"$out/build.log" 2>&1 || { grep -E "error|FAILED" -A5 "$out/build.log" | head -40; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
status=0
"$build/tests/sae/sae_io_tests" >"$out/sae_io_tests.log" 2>&1 || status=1
"$build/tests/sae/sae_tests" >"$out/sae_tests.log" 2>&1 || status=1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |planted|^\[  FAILED" "$out/sae_io_tests.log" "$out/sae_tests.log"
S3ATTN_SAFETENSORS_TOOL="$build/tests/sae/safetensors_tool" python3 -m pytest tests/sae -q \
  >"$out/pytest.log" 2>&1 || status=1
tail -1 "$out/pytest.log"
bench="$build/sae/sae_bench"
"$bench" --device cuda --json >"$out/bench_bf16.txt" 2>&1
"$bench" --device cuda --group-size 1 >"$out/bench_bf16_noprefilter.txt" 2>&1
"$bench" --device cuda --dtype float32 >"$out/bench_f32.txt" 2>&1
"$bench" --device cuda --k 32 --train --batch 4096 --json >"$out/bench_train_k32.txt" 2>&1
for f in "$out"/bench_*.txt; do echo "== $(basename "$f")"; grep -v '^{' "$f"; done
exit $status
