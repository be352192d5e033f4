#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (or only the TARGETs named), starting from
# the committed seeds (fuzz/seeds/<target>/) copied into a working corpus (fuzz/corpus/<target>/,
# kept between runs, gitignored; logs in fuzz/logs/). Exits non-zero if any target crashed, after printing where
# libFuzzer wrote the crashing input (fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh 60                       # every target, a minute each
#   scripts/fuzz.sh 600 jws_verify request   # two targets, ten minutes each
#   FUZZ_SANITIZER=address scripts/fuzz.sh 60  # with AddressSanitizer (default: none, see below)
#
# Reproduce a crash:  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none TARGET ARTIFACT
# Minimise it:        RUSTC_BOOTSTRAP=1 cargo fuzz tmin --fuzz-dir fuzz -s none TARGET ARTIFACT
#
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain use them. The
# default sanitizer is `none`: every tollgate crate forbids unsafe code, what these targets hunt
# is panics (debug assertions and overflow checks are on) and broken invariants, and without
# ASan the targets run several times faster. Set FUZZ_SANITIZER=address to add it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
sanitizer=${FUZZ_SANITIZER:-none}
fuzz=(cargo fuzz)
flags=(--fuzz-dir fuzz --sanitizer "$sanitizer" --debug-assertions)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi

"${fuzz[@]}" build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  artifacts=fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts" fuzz/logs
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n "fuzz/seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  dict=()
  if [ -f "fuzz/dicts/$target.dict" ]; then
    dict=("-dict=fuzz/dicts/$target.dict")
  fi
  # Not in the artifacts folder: after a crash cargo-fuzz replays the newest file there.
  log=fuzz/logs/$target.log
  echo "=== $target: ${seconds}s ($(date -u +%H:%M:%S))"
  status=0
  TIMEFORMAT="cpu: %U s user, %S s system, %R s wall"
  { time "${fuzz[@]}" run "${flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" "${dict[@]}" >"$log" 2>&1; } 2>"$log.time" || status=$?
  cat "$log.time"
  if [ "$status" -eq 0 ]; then
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  else
    failed+=("$target")
    tail -n 40 "$log"
    echo "!!! $target crashed; the input is in $artifacts/:"
    grep -E 'Test unit written to|artifact_prefix' "$log" || ls -t "$artifacts"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]}" >&2
  exit 1
fi
echo "no crash in ${#targets[@]} targets"
