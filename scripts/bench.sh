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
# Data-parallel search: 2 local ranks against 1 process (issue 15); JSON like the others.
echo "== scripts/bench-dist.sh  -> $OUT/dist.json"
"$(dirname "$0")/bench-dist.sh" "$PINAS" > "$OUT/dist.json.tmp"
mv "$OUT/dist.json.tmp" "$OUT/dist.json"
cat "$OUT/dist.json"
# End-to-end latency: real streams against the simulation (issue 16); JSON like the others.
echo "== scripts/bench-e2e.sh  -> $OUT/e2e.json"
"$(dirname "$0")/bench-e2e.sh" "$PINAS" > "$OUT/e2e.json.tmp"
mv "$OUT/e2e.json.tmp" "$OUT/e2e.json"
cat "$OUT/e2e.json"
# The runtime before/after figures (issue 14): key bytes, 1e6 ReLUs, threads, ResNet-18 with peak RSS.
echo "== scripts/bench-runtime.sh  -> $OUT/runtime.json"
"$(dirname "$0")/bench-runtime.sh" "$PINAS" "$OUT/runtime.json" > /dev/null
cat "$OUT/runtime.json"
# Latency-model fidelity, quiet and with co-runners (issue 17): 41-60 min on 2 cores, so only when asked.
if [ "${PINAS_BENCH_FIDELITY:-0}" = 1 ]; then
  echo "== scripts/bench-latency-fidelity.sh  -> $OUT/latency-fidelity.json"
  PINAS_FIDELITY_OUT="$OUT/latency-fidelity.json" "$(dirname "$0")/bench-latency-fidelity.sh" "$PINAS"
  cat "$OUT/latency-fidelity.json"
else
  echo "== scripts/bench-latency-fidelity.sh skipped (41-60 min): PINAS_BENCH_FIDELITY=1 make bench runs it"
fi
# How the machine's speed drifts against the stored profile (issue 17): 40 min, so only when asked.
if [ "${PINAS_BENCH_DRIFT:-0}" = 1 ]; then
  echo "== scripts/bench-latency-drift.sh  -> $OUT/latency-drift.json"
  PINAS_DRIFT_OUT="$OUT/latency-drift.json" "$(dirname "$0")/bench-latency-drift.sh" "$PINAS"
  cat "$OUT/latency-drift.json"
else
  echo "== scripts/bench-latency-drift.sh skipped (40 min): PINAS_BENCH_DRIFT=1 make bench runs it"
fi
echo "bench: results in $OUT/"
