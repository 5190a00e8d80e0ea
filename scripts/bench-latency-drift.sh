#!/usr/bin/env bash
# How the machine's speed drifts against the stored cpu profile (issue 17): every INTERVAL seconds for
# MINUTES, one small `pinas validate-latency` per space (stored profile, no refit; --archs ARCHS, batch 1,
# seed 1: the very same command each time) and records, per sample, the time, the whole-net MAPE, the
# bias (the mean over the architectures of predicted - measured, in % of measured: positive = the
# machine runs faster than when the profile was fitted), the host-memory check's median and the speed
# probe's ratio. Summary per space: the bias's median, least and greatest, its greatest change between
# two consecutive samples, how many samples have whole-net MAPE <= 5 %, and how many windows of 5
# consecutive samples all do (issue 17's "5 consecutive runs"). Nothing else should run meanwhile.
# JSON to OUT, a line per sample and the summary on stderr. See docs/latency-fidelity.md.
#   scripts/bench-latency-drift.sh BIN [MINUTES=40] [INTERVAL=120] [ARCHS=4]
# Environment: PINAS_DRIFT_OUT (default results/bench/latency-drift.json), PINAS_DRIFT_SPACES (space
# files, default ResNet-20, VGG-16 and MobileNetV2), PINAS_DRIFT_ARGS (more validate-latency options).
set -euo pipefail
BIN=${1:?usage: scripts/bench-latency-drift.sh BIN [MINUTES=40] [INTERVAL=120] [ARCHS=4]}
MINUTES=${2:-40}
INTERVAL=${3:-120}
ARCHS=${4:-4}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$ROOT/search_spaces/spaces
SPACES=${PINAS_DRIFT_SPACES:-$S/cifar-resnet20.json $S/cifar-vgg16.json $S/mobilenetv2-32.json}
EXTRA=${PINAS_DRIFT_ARGS:-}
OUT=${PINAS_DRIFT_OUT:-results/bench/latency-drift.json}
case "$MINUTES$INTERVAL$ARCHS" in *[!0-9]*) echo "bench-latency-drift: MINUTES, INTERVAL and ARCHS must be integers" >&2; exit 2 ;; esac
[ "$ARCHS" -ge 2 ] || { echo "bench-latency-drift: ARCHS must be at least 2" >&2; exit 2; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

: > "$W/index"
t0=$(date +%s)
n=0
while [ $(($(date +%s) - t0)) -lt $((MINUTES * 60)) ]; do
  ts=$(date +%s)
  for space in $SPACES; do
    n=$((n + 1))
    rc=0
    # shellcheck disable=SC2086
    "$BIN" validate-latency "$space" --archs "$ARCHS" --batch 1 --no-calibrate --seed 1 --json $EXTRA \
      > "$W/$n.json" 2> "$W/$n.err" || rc=$?
    printf '%s\t%s\t%s\t%s\n' "$n" "$(date -u +%H:%M:%S)" "$space" "$rc" >> "$W/index"
    if [ "$rc" != 0 ]; then
      echo "bench-latency-drift: $(basename "$space" .json) exit $rc" >&2
      tail -3 "$W/$n.err" >&2
      continue
    fi
    python3 - "$W/$n.json" "$(basename "$space" .json)" "$(date -u +%H:%M:%S)" >&2 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bias = sum(a["error_pct"] for a in d["arch_list"]) / len(d["arch_list"])
print(f"bench-latency-drift: {sys.argv[3]} {sys.argv[2]}: whole MAPE {d['whole']['mape_pct']:.1f} %, bias {bias:+.1f} %, "
      f"host {d['host'].get('median_ns', float('nan')):.2f} ns, speed probe {d.get('speed_ratio', float('nan')):.3f}")
PY
  done
  left=$((ts + INTERVAL - $(date +%s)))
  if [ "$left" -gt 0 ] && [ $(($(date +%s) + left - t0)) -lt $((MINUTES * 60)) ]; then sleep "$left"; fi
done

python3 - "$W" "$BIN" "$MINUTES" "$INTERVAL" "$ARCHS" "$EXTRA" > "$W/out.json" <<'PY'
import json, os, statistics, subprocess, sys
W, BIN, MINUTES, INTERVAL, ARCHS, EXTRA = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
samples, profile, machine = [], None, None
for line in open(os.path.join(W, "index")):
    n, t, space, rc = line.rstrip("\n").split("\t")
    rec = {"time_utc": t, "space": os.path.basename(space).removesuffix(".json"), "exit": int(rc)}
    if rc == "0":
        d = json.load(open(os.path.join(W, n + ".json")))
        errs = [a["error_pct"] for a in d["arch_list"]]
        rec.update({"whole_mape_pct": d["whole"]["mape_pct"], "bias_pct": sum(errs) / len(errs),
                    "host_median_ns": d["host"].get("median_ns"), "speed_ratio": d.get("speed_ratio"),
                    "errors_pct": errs})
        profile = profile or d.get("profile")
        machine = machine or d.get("machine")
    samples.append(rec)
summary = {}
for space in dict.fromkeys(s["space"] for s in samples):
    ok = [s for s in samples if s["space"] == space and s["exit"] == 0]
    if not ok:
        summary[space] = {"samples": 0}
        continue
    b = [s["bias_pct"] for s in ok]
    met = [s["whole_mape_pct"] <= 5 for s in ok]
    summary[space] = {
        "samples": len(ok), "bias_median_pct": statistics.median(b), "bias_min_pct": min(b), "bias_max_pct": max(b),
        "bias_max_step_pct": max((abs(x - y) for x, y in zip(b, b[1:])), default=0.0),
        "whole_mape_median_pct": statistics.median(s["whole_mape_pct"] for s in ok),
        "samples_within_5pct": sum(met),
        "windows_of_5": max(len(met) - 4, 0), "windows_of_5_all_within": sum(all(met[i:i + 5]) for i in range(len(met) - 4)),
    }
try:
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
except OSError:
    version = None
json.dump({"bench": "latency-drift", "pinas": version, "minutes": MINUTES, "interval_s": INTERVAL, "archs": ARCHS,
           "extra_args": EXTRA, "profile": profile, "machine": machine, "samples": samples, "summary": summary},
          sys.stdout, indent=1)
for space, s in summary.items():
    if not s["samples"]:
        print(f"{space}: no sample", file=sys.stderr)
        continue
    print(f"{space}: {s['samples']} samples, bias median {s['bias_median_pct']:+.1f} % (range {s['bias_min_pct']:+.1f} .. "
          f"{s['bias_max_pct']:+.1f}, greatest step {s['bias_max_step_pct']:.1f}), whole MAPE <= 5 % in "
          f"{s['samples_within_5pct']} of {s['samples']}, 5 in a row in {s['windows_of_5_all_within']} of {s['windows_of_5']} windows",
          file=sys.stderr)
PY
mkdir -p "$(dirname "$OUT")"
mv "$W/out.json" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "bench-latency-drift: wrote $OUT" >&2
