#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and fuzzes each reader in turn:
# first every committed crash input of tests/fuzz/regressions/<target>/ is replayed, then the target
# runs for N seconds, one process on one core, from its corpus; it stops at its first finding.
# docs/fuzzing.md describes the targets.
#
#   scripts/fuzz.sh [--seconds N] [--replay-only] [--work DIR] [TARGET...]
#
# TARGET: manifest segment safetensors tokenizer jsonl (default: all). N: seconds per target
# (default 600, a long run; CI runs a short one). Corpora (seeds from the tests' fixtures plus what
# the fuzzer found), crash files and logs stay in DIR (default runs/fuzz/, ignored by git) and grow
# across runs; two runs at once need two DIRs. Exits non-zero on a finding and prints the command
# that reproduces it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_targets=(manifest segment safetensors tokenizer jsonl)
seconds=600
replay_only=0
work="$root/runs/fuzz"
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --replay-only) replay_only=1; shift ;;
    --work) work="${2:?--work needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "error: --seconds: '$seconds' is not a positive number" >&2; exit 2; }
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "error: unknown fuzz target '$t' (one of: ${all_targets[*]})" >&2; exit 2; }
done

"$root/scripts/setup.sh"
build="$root/build-fuzz"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DS3ATTN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j "${S3ATTN_JOBS:-$(nproc)}" --target fuzz_seeds "${targets[@]/#/fuzz_}" >&2
bin="$build/tests/fuzz"

mkdir -p "$work/tmp"
work="$(cd "$work" && pwd)"
export TMPDIR="$work/tmp"  # the targets' scratch files
# Seeds are rewritten whenever fuzz_seeds was rebuilt (the fixtures or formats may have changed) or
# $S3ATTN_DATA changed; the fuzzers' own finds stay.
tokenizers=()
[ -n "${S3ATTN_DATA:-}" ] && [ -d "$S3ATTN_DATA/tokenizers" ] && tokenizers=("$S3ATTN_DATA/tokenizers")
stamp="$work/seeds/.made-from"
if ((!replay_only)) && { [ "$bin/fuzz_seeds" -nt "$stamp" ] || [ "$(cat "$stamp")" != "${tokenizers[*]}" ]; }; then
  rm -rf "$work/seeds"
  "$bin/fuzz_seeds" "$work/seeds" "${tokenizers[@]}"
  echo "${tokenizers[*]}" >"$stamp"
fi

# UBSan aborts on its first report (the build has -fno-sanitize-recover); ASan's leak check is on.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

declare -A max_len=([manifest]=16384 [segment]=16384 [safetensors]=8192 [tokenizer]=65536 [jsonl]=8192)
failed=()
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  crashes="$work/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  dict=()
  [ -f "$root/tests/fuzz/dicts/$t.dict" ] && dict=("-dict=$root/tests/fuzz/dicts/$t.dict")
  regressions=("$root/tests/fuzz/regressions/$t"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "fuzz: $t: replaying ${#regressions[@]} committed inputs of tests/fuzz/regressions/$t" >&2
    if ! "$bin/fuzz_$t" -timeout=20 -rss_limit_mb=2048 "${regressions[@]}" >"$work/$t.replay.log" 2>&1; then
      tail -n 40 "$work/$t.replay.log" >&2
      echo "fuzz: $t: FAILED replaying a committed input (log: $work/$t.replay.log); reproduce with:" >&2
      echo "  $bin/fuzz_$t tests/fuzz/regressions/$t/<file>" >&2
      failed+=("$t")
      continue
    fi
  fi
  ((replay_only)) && continue
  log="$work/$t.log"
  echo "fuzz: $t: ${seconds}s (log: $log)" >&2
  rc=0
  "$bin/fuzz_$t" "$corpus" "$work/seeds/$t" "${dict[@]}" -max_total_time="$seconds" \
    -max_len="${max_len[$t]}" -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -aE '^(stat::|#[0-9]+ *DONE)' "$log" | sed "s/^/fuzz: $t: /" >&2 || true
  if ((rc != 0)); then
    tail -n 60 "$log" >&2
    artifact="$(grep -aoE "Test unit written to [^ ]+" "$log" | tail -n 1 | cut -d' ' -f5)"
    echo "fuzz: $t: FINDING (exit $rc, log: $log); reproduce with:" >&2
    echo "  $bin/fuzz_$t ${artifact:-$crashes/<crash file>}" >&2
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ok: ${targets[*]}" >&2
