#!/usr/bin/env bash
# `make bench`: runs every benchmark the built pinas offers, each with its defaults, and keeps the JSON.
set -euo pipefail
PINAS=${1:-build/pinas}
OUT=${PINAS_BENCH_OUT:-results/bench}
mkdir -p "$OUT"
kinds=$("$PINAS" bench --help | awk '/^kinds:/{f=1;next} f&&NF{print $1} /^$/{if(f)exit}')
if [ -z "$kinds" ]; then echo "bench: this build offers no benchmarks"; exit 1; fi
args_for() { # the defaults of each benchmark, plus what one needs to run at all
  case "$1" in
    train) echo "--space search_spaces/spaces/quickstart.json --batch 64" ;;
    *) echo "" ;;
  esac
}
for k in $kinds; do
  # shellcheck disable=SC2046
  echo "== pinas bench $k $(args_for "$k") --json  -> $OUT/$k.json"
  "$PINAS" bench "$k" $(args_for "$k") --json > "$OUT/$k.json.tmp"
  mv "$OUT/$k.json.tmp" "$OUT/$k.json"
  cat "$OUT/$k.json"
done
echo "bench: results in $OUT/"
