#!/usr/bin/env bash
# `make demo`: the quickstart end to end: search (3 sweep values) -> Pareto front -> export under a latency budget -> private inference.
set -euo pipefail
PINAS=${1:-build/pinas}
CONFIG=configs/quickstart.json
OUT=${PINAS_DEMO_OUT:-results}
RUN=$OUT/quickstart
MODEL=$OUT/quickstart-export
IMAGES=$OUT/quickstart-test-images.safetensors
t0=$(date +%s)

# The budget and the number of private test images come from the config (export.budget_ms, infer.images).
cfg() { "$PINAS" config show "$CONFIG" --set out_dir="$OUT" | grep -o "\"$1\":[[:space:]]*[0-9.e+-]*" | head -1 | sed 's/.*:[[:space:]]*//'; }
BUDGET=$(cfg budget_ms)
NIMG=$(cfg images)

echo "== 1. search: $CONFIG (a ResNet-8 space on 2,000 Fashion-MNIST training images; lambda sweep; all-ReLU, all-poly and first-k baselines)"
if [ -e "$RUN/config.json" ]; then
  echo "   (removing the previous demo run $RUN)"
  rm -rf "$RUN" "$MODEL" "$IMAGES"
fi
"$PINAS" search "$CONFIG" --set out_dir="$OUT"

echo
echo "== 2. the Pareto front, re-read from the run dir (table + $RUN/pareto.svg, $RUN/pareto.png)"
"$PINAS" pareto "$RUN"

echo
echo "== 3. export the most accurate candidate under ${BUDGET} ms, with $NIMG test images; verify it privately in-process"
"$PINAS" export "$RUN" --best-under "$BUDGET" --out "$MODEL" --test-images "$NIMG" "$IMAGES" --verify "$NIMG"
echo
echo "== 4. pinas infer: private inference of the $NIMG labelled test images (dealer + server and client processes over loopback TCP)"
"$PINAS" infer "$MODEL" --input "$IMAGES" | tee "$OUT/.demo-infer.txt"
line=$(grep -o 'accuracy on .*' "$OUT/.demo-infer.txt" || true)
rm -f "$OUT/.demo-infer.txt"
if [ -z "$line" ]; then
  echo "demo: pinas infer printed no accuracy" >&2
  exit 1
fi
priv=$(echo "$line" | sed -E 's/.*private ([0-9.]+%).*/\1/')
plain=$(echo "$line" | sed -E 's/.*plaintext ([0-9.]+%).*/\1/')
echo
echo "private accuracy (2PC, pinas infer): $priv; plaintext accuracy: $plain"
if [ "$priv" != "$plain" ]; then
  echo "demo: private and plaintext accuracy differ" >&2
  exit 1
fi
echo "demo: done in $(( $(date +%s) - t0 )) s. Run dir $RUN, exported model $MODEL, plot $RUN/pareto.png"
