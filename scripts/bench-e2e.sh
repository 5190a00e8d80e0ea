#!/usr/bin/env bash
# End-to-end latency benchmark (issue 16): real streams (`pinas stream`) against the simulation's
# prediction from the run's own measured T_gen / T_xfer / L_on. JSON on stdout; the acceptance is
# |median relative error of the mean latency| <= 15 % per scenario ("pass"). Run it on a quiet machine:
# the dealer, the two parties and the timers share the cores, and other load skews one run's figures.
#   scripts/bench-e2e.sh [PINAS] [REPEATS]   (env: PINAS_E2E_REQUESTS, default 20; PINAS_E2E_NET, default lan)
set -euo pipefail
PINAS=${1:-build/pinas}
REPS=${2:-5}
N=${PINAS_E2E_REQUESTS:-20}
NET=${PINAS_E2E_NET:-lan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$PINAS" model random "$ROOT/tests/golden/tiny_space.json" --out "$W/m" --arch all-relu >/dev/null
# A probe sizes the scenarios to this machine: the dealer's and the server's time per request.
"$PINAS" stream "$W/m" --requests 6 --rate 2/s --client-storage inf --net "$NET" --json > "$W/probe.json"
read -r GEN ON BYTES < <(python3 -c "
import json; d=json.load(open('$W/probe.json')); c=d['measured_costs']
print(c['gen_ms']/1e3, c['online_ms']/1e3, d['client_set_bytes'])")
# Scenarios that force waiting: one stored set with the dealer ~80 % busy, and no storage at all.
python3 - "$GEN" "$ON" "$BYTES" > "$W/scen" <<'PY'
import sys
gen, on, b = map(float, sys.argv[1:])
print("one-set", "%.6g/s" % (0.8 / max(gen, on)), int(b * 1.5))
print("no-storage", "%.6g/s" % (0.5 / (gen + on)), 0)
PY
while read -r name rate storage; do
  for r in $(seq 1 "$REPS"); do
    "$PINAS" stream "$W/m" --requests "$N" --rate "$rate" --client-storage "$storage" --net "$NET" --seed "$r" --json > "$W/$name-$r.json"
  done
done < "$W/scen"
python3 - "$W" "$REPS" "$N" "$NET" <<'PY'
import json, statistics, sys
w, reps, n, net = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = {"benchmark": "e2e", "requests": n, "repeats": reps, "net": net, "scenarios": []}
for line in open(w + "/scen"):
    name, rate, storage = line.split()
    runs = [json.load(open("%s/%s-%d.json" % (w, name, r))) for r in range(1, reps + 1)]
    err = [d["predicted_error"] for d in runs]
    s = {"name": name, "rate": rate, "client_storage_bytes": int(storage),
         "measured_mean_ms": [d["measured"]["mean_ms"] for d in runs],
         "predicted_mean_ms": [d["predicted"]["mean_ms"] for d in runs],
         "waited_share": [d["measured"]["waited_share"] for d in runs],
         "model_predicted_mean_ms": [d["model_predicted"]["mean_ms"] for d in runs],
         "median_measured_ms": statistics.median(d["measured"]["mean_ms"] for d in runs),
         "median_predicted_ms": statistics.median(d["predicted"]["mean_ms"] for d in runs),
         "median_error": statistics.median(err), "median_abs_error": statistics.median(abs(e) for e in err)}
    s["pass"] = s["median_abs_error"] <= 0.15
    out["scenarios"].append(s)
out["pass"] = all(s["pass"] for s in out["scenarios"])
print(json.dumps(out, indent=2))
PY
