#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses of tests/fuzz/ (clang, -fsanitize=fuzzer,address,undefined).
#   run.sh build [DIR]            configure + build the fuzz project in DIR (default build-fuzz)
#   run.sh run NAME SECONDS [DIR] replay tests/fuzz/corpus/NAME/ (every seed once), then fuzz for SECONDS
#   run.sh all SECONDS [DIR]      build, then `run` every harness (what `make fuzz` does)
# NAME is a harness without its prefix: safetensors, net_json, config, profile, prep, handshake. New inputs go
# to DIR/corpus/NAME/ (the seed folder is only read); a crash, leak, timeout or sanitizer report
# leaves its input in DIR/artifacts/NAME/ and makes the script exit non-zero. Exit 77 (ctest's SKIP)
# when clang or libFuzzer is missing: scripts/install-deps.sh installs them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SKIP=77
HARNESSES=($(cd "$HERE" && ls fuzz_*.c | sed "s/^fuzz_//; s/\.c$//"))

# 0 when clang can build and link a libFuzzer target with ASan/UBSan.
have_libfuzzer() {
  command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || return 1
  local t
  t="$(mktemp -d)"
  printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$t/p.c"
  "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined "$t/p.c" -o "$t/p" >/dev/null 2>&1
  local rc=$?
  rm -rf "$t"
  return $rc
}

cmd_build() {
  local dir="${1:-$ROOT/build-fuzz}"
  if ! have_libfuzzer; then
    echo "fuzz: skipped: ${FUZZ_CC:-clang} with libFuzzer (-fsanitize=fuzzer) not found; scripts/install-deps.sh installs clang and libclang-rt-14-dev" >&2
    exit $SKIP
  fi
  cmake -S "$HERE" -B "$dir" -DCMAKE_C_COMPILER="${FUZZ_CC:-clang}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$dir" -j "${JOBS:-$(nproc)}" >/dev/null
}

cmd_run() {
  local name="$1" secs="$2" dir="${3:-$ROOT/build-fuzz}"
  local bin="$dir/fuzz_$name" seeds="$HERE/corpus/$name"
  if [ ! -x "$bin" ]; then
    if ! have_libfuzzer; then echo "fuzz: skipped: no clang with libFuzzer" >&2; exit $SKIP; fi
    echo "fuzz: $bin not built (run: $0 build $dir)" >&2
    exit 1
  fi
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
  mkdir -p "$dir/corpus/$name" "$dir/artifacts/$name"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  local opts=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1
              "-artifact_prefix=$dir/artifacts/$name/")
  [ -f "$HERE/$name.dict" ] && opts+=("-dict=$HERE/$name.dict")
  local log="$dir/fuzz_$name.log"
  # Every seed once: the valid ones must load, the invalid ones must fail cleanly; crash-* files are
  # the inputs of fixed defects (regression tests).
  local n
  n=$(find "$seeds" -type f | wc -l)
  if ! "$bin" "${opts[@]}" $(find "$seeds" -type f | sort) > "$log" 2>&1; then
    echo "fuzz $name: FAILED replaying the $n seeds of $seeds:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  if ! "$bin" "${opts[@]}" -max_total_time="$secs" "$dir/corpus/$name" "$seeds" > "$log" 2>&1; then
    echo "fuzz $name: FAILED after fuzzing (input in $dir/artifacts/$name/):" >&2
    tail -60 "$log" >&2
    exit 1
  fi
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz $name: ok: $n seeds replayed, $runs runs in ${secs}s, corpus $(find "$dir/corpus/$name" -type f | wc -l) inputs"
}

case "${1:-}" in
  build) cmd_build "${2:-}" ;;
  run) [ $# -ge 3 ] || { echo "usage: $0 run NAME SECONDS [DIR]" >&2; exit 2; }; cmd_run "$2" "$3" "${4:-}" ;;
  all)
    secs="${2:-60}"
    dir="${3:-$ROOT/build-fuzz}"
    cmd_build "$dir"
    rc=0
    for h in "${HARNESSES[@]}"; do cmd_run "$h" "$secs" "$dir" || rc=1; done
    exit $rc
    ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
