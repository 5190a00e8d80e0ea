#!/usr/bin/env bash
# Behaviour check for refactors: runs the quickstart (search -> Pareto -> export -> infer) and compares
# every deterministic output byte for byte with a run saved before the change.
#
#   scripts/check-behaviour.sh save    GOLDEN_DIR [PINAS]   # before the change
#   scripts/check-behaviour.sh compare GOLDEN_DIR [PINAS]   # after it: exit 0 = identical
#
# Outputs name their run dir, so both runs use the same one (/tmp/pinas-behaviour/out). Compared byte
# for byte: the run dir (config.json, lut.json, pareto.csv/json/svg, baselines/, candidates/*/{net,meta,
# metrics}.json and weights), the export (net.json, meta.json, weights) and its test images. Not
# compared: the "git_rev" line of config.json (the build's commit, by design); and, because they
# change from one run of the same binary to the next: checkpoints (optimiser state) and log.jsonl (wall-clock seconds), pareto.png (cairo's PNG encoder), and in `pinas infer --json` the
# private logits, max_abs_error, dealer_seconds and online/offline seconds (the dealer draws its key
# material from the OS); its classes, plaintext logits, accuracy and per-layer bytes/rounds/AES/MAC
# counters are compared.
set -euo pipefail
mode=${1:?usage: check-behaviour.sh save|compare GOLDEN_DIR [PINAS]}
golden=${2:?usage: check-behaviour.sh save|compare GOLDEN_DIR [PINAS]}
PINAS=${3:-build/pinas}
OUT=/tmp/pinas-behaviour/out

run() {
  rm -rf "$OUT"
  mkdir -p "$OUT"
  PINAS_DEMO_OUT=$OUT ./scripts/demo.sh "$PINAS" >"$OUT/../demo.log" 2>&1 || { tail -20 "$OUT/../demo.log"; exit 1; }
  # one session for all images, as before `--chunk` existed (chunks add a session's rounds each)
  local chunk=()
  "$PINAS" infer --help 2>&1 | grep -q -- '--chunk' && chunk=(--chunk 100000)
  "$PINAS" infer "$OUT/quickstart-export" --input "$OUT/quickstart-test-images.safetensors" "${chunk[@]}" --json >"$OUT/../infer.json"
  python3 - "$OUT/../infer.json" >"$OUT/../infer.stable.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("logits", "max_abs_error", "dealer_seconds"):
    d.pop(k, None)
for layer in d.get("layers", []):
    layer.pop("online_ms", None)
for k in ("online_s", "offline_s"):
    d.get("totals", {}).pop(k, None)
print(json.dumps(d, indent=1, sort_keys=True))
EOF
}

case $mode in
save)
  run
  rm -rf "$golden"
  mkdir -p "$golden"
  cp -a "$OUT" "$golden/out"
  cp "$OUT/../infer.stable.json" "$golden/"
  echo "saved the quickstart outputs in $golden"
  ;;
compare)
  run
  bad=0
  while IFS= read -r f; do
    rel=${f#"$golden/out/"}
    case $rel in */checkpoint/* | */log.jsonl | *.png) continue ;; esac
    if [ ! -e "$OUT/$rel" ]; then echo "missing: $rel"; bad=1
    elif [ "${rel##*/}" = config.json ]; then # the git revision it records names the build, by design
      cmp -s <(grep -v '"git_rev"' "$f") <(grep -v '"git_rev"' "$OUT/$rel") || { echo "differs: $rel"; bad=1; }
    elif ! cmp -s "$f" "$OUT/$rel"; then echo "differs: $rel"; bad=1; fi
  done < <(find "$golden/out" -type f | sort)
  while IFS= read -r f; do
    rel=${f#"$OUT/"}
    [ -e "$golden/out/$rel" ] || { echo "new file: $rel"; bad=1; }
  done < <(find "$OUT" -type f | sort)
  cmp -s "$golden/infer.stable.json" "$OUT/../infer.stable.json" || { echo "differs: pinas infer --json (stable fields)"; bad=1; }
  if [ "$bad" -eq 0 ]; then echo "behaviour unchanged: every compared output is byte-identical"; else exit 1; fi
  ;;
*) echo "usage: check-behaviour.sh save|compare GOLDEN_DIR [PINAS]" >&2; exit 2 ;;
esac
