#!/usr/bin/env bash
# Latency-model fidelity (issue 17): `pinas validate-latency` with the stored cpu profile (no refit) on
# the ResNet-20, VGG-16 and MobileNetV2 spaces at batch 1 and 4, RUNS consecutive runs each (seed = the
# run's number), on a quiet machine and again with two co-runners that each burn one core (started and
# killed here). Writes every run's whole-net MAPE / tau / max error (robust and wall clock) and per-op
# MAPE, and per space x batch x condition the median and the worst run and whether issue 17's targets
# hold in every run: whole MAPE <= 5 %, tau >= 0.95, per-node MAPE <= 10 % for conv2d, relu, poly,
# patch_relu, maxpool, avgpool (an op a space does not have is not judged there). tau is judged over
# the pairs of architectures the validation's passes resolve (tau_resolved: every pass orders the pair
# the same way, their spans apart); the plain tau over every pair is reported beside it, with its own
# yes/no ("tau_every_pair"). JSON to OUT (each run's own validate-latency JSON, with every
# architecture and node, to OUT without .json + "-runs/N.json"), a summary on stderr. See
# docs/latency-fidelity.md.
#   scripts/bench-latency-fidelity.sh BIN [RUNS=5] [ARCHS=10]
# Environment: PINAS_FIDELITY_OUT (default results/bench/latency-fidelity.json), PINAS_FIDELITY_SPACES
# (space files, default the three), PINAS_FIDELITY_BATCHES ("1 4"), PINAS_FIDELITY_CONDITIONS
# ("quiet busy"), PINAS_FIDELITY_ARGS (more validate-latency options, e.g. "--runs 5"; default none),
# PINAS_FIDELITY_SEED (one seed for every run: the very same command RUNS times; default the run's number).
set -euo pipefail
BIN=${1:?usage: scripts/bench-latency-fidelity.sh BIN [RUNS=5] [ARCHS=10]}
RUNS=${2:-5}
ARCHS=${3:-10}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$ROOT/search_spaces/spaces
SPACES=${PINAS_FIDELITY_SPACES:-$S/cifar-resnet20.json $S/cifar-vgg16.json $S/mobilenetv2-32.json}
BATCHES=${PINAS_FIDELITY_BATCHES:-1 4}
CONDITIONS=${PINAS_FIDELITY_CONDITIONS:-quiet busy}
EXTRA=${PINAS_FIDELITY_ARGS:-}
OUT=${PINAS_FIDELITY_OUT:-results/bench/latency-fidelity.json}
SEED=${PINAS_FIDELITY_SEED:-}
case "$RUNS$ARCHS$SEED" in *[!0-9]*) echo "bench-latency-fidelity: RUNS, ARCHS and PINAS_FIDELITY_SEED must be integers" >&2; exit 2 ;; esac
for c in $CONDITIONS; do
  case "$c" in quiet | busy) ;; *) echo "bench-latency-fidelity: unknown condition \"$c\" (quiet, busy)" >&2; exit 2 ;; esac
done
W=$(mktemp -d)
CORUNNERS=()
stop_corunners() {
  local p
  for p in "${CORUNNERS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CORUNNERS[@]}"; do wait "$p" 2>/dev/null || true; done
  CORUNNERS=()
}
# Background jobs of a script ignore SIGINT, so the co-runners are always killed here, also on Ctrl-C.
trap 'stop_corunners; rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_corunners() { # two processes that each keep one core busy until killed
  sh -c 'while :; do :; done' &
  CORUNNERS+=($!)
  sh -c 'while :; do :; done' &
  CORUNNERS+=($!)
}

: > "$W/index"
words() { echo $#; }
# shellcheck disable=SC2086
total=$(($(words $CONDITIONS) * $(words $SPACES) * $(words $BATCHES) * RUNS))
n=0
t0=$(date +%s)
for cond in $CONDITIONS; do
  if [ "$cond" = busy ]; then start_corunners; fi
  for space in $SPACES; do
    for b in $BATCHES; do
      for r in $(seq 1 "$RUNS"); do
        n=$((n + 1))
        seed=${SEED:-$r}
        f="$W/$n.json"
        read -r load _ < /proc/loadavg
        s0=$(date +%s.%N)
        rc=0
        # shellcheck disable=SC2086
        "$BIN" validate-latency "$space" --archs "$ARCHS" --batch "$b" --no-calibrate --seed "$seed" --json $EXTRA \
          > "$f" 2> "$W/$n.err" || rc=$?
        secs=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$cond" "$space" "$b" "$r" "$seed" "$rc" "$load" "$secs" >> "$W/index"
        echo "bench-latency-fidelity: $n/$total $cond $(basename "$space" .json) batch $b run $r (seed $seed): exit $rc, $secs s" \
          "(elapsed $(($(date +%s) - t0)) s)" >&2
        if [ "$rc" != 0 ]; then tail -3 "$W/$n.err" >&2; fi
      done
    done
  done
  stop_corunners
done

python3 - "$W" "$BIN" "$RUNS" "$ARCHS" "$EXTRA" > "$W/out.json" <<'PY'
import json, os, statistics, subprocess, sys
W, BIN, RUNS, ARCHS, EXTRA = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
TARGET_OPS = ["conv2d", "relu", "poly", "patch_relu", "maxpool", "avgpool"]
T_MAPE, T_TAU, T_OP = 5.0, 0.95, 10.0

def figures(d):
    """(whole, wall, per_op {op: {nodes, mape_pct, ...}}) of one validate-latency JSON. Older binaries
    print the whole-net figures at the top level and no per-node errors: then per_op is None."""
    whole = d.get("whole") or {"mape_pct": d.get("mape_pct"), "tau": d.get("kendall_tau"), "max_pct": d.get("max_error_pct")}
    per_op = None
    if isinstance(d.get("per_op"), list):
        per_op = {}
        for o in d["per_op"]:
            op = str(o.get("op", "?")).split(":")[0]  # patch_relu:2x2 and :4x4 are one class
            prev = per_op.get(op)
            if prev is None or (o.get("mape_pct") or 0) > (prev["mape_pct"] or 0):
                per_op[op] = {k: o.get(k) for k in ("nodes", "shape_nodes", "mape_pct", "server_mape_pct", "client_mape_pct",
                                                      "speed_mape_pct")}
    return whole, d.get("wall"), per_op

runs, profile, machine = [], None, None
for line in open(os.path.join(W, "index")):
    n, cond, space, batch, run, seed, rc, load, secs = line.rstrip("\n").split("\t")
    rec = {"condition": cond, "space": os.path.basename(space).rsplit(".", 1)[0], "batch": int(batch), "run": int(run),
           "seed": int(seed), "exit": int(rc), "seconds": float(secs), "loadavg_before": float(load)}
    try:
        d = json.load(open(os.path.join(W, n + ".json")))
    except (OSError, ValueError):
        d = None
    if d is None:
        rec["error"] = open(os.path.join(W, n + ".err")).read().strip()[-400:]
    else:
        rec["whole"], rec["wall"], rec["per_op"] = figures(d)
        # the speed probe's ratio and the whole-net figures with the predictions scaled by it (reported, not judged)
        rec["speed_ratio"], rec["speed"] = d.get("speed_ratio"), d.get("speed")
        rec["space"] = d.get("space", rec["space"])
        rec["fit_only"] = d.get("fit_only")  # the profile's class fits alone (--fit-only), its measured shapes dropped
        h = d.get("host") or {}  # the host-memory gate: waits, and passes/archs measured with the host disturbed
        rec["host"] = {k: h.get(k) for k in ("median_ns", "max_ns", "ref_ns", "waited_s", "disturbed_passes", "disturbed_archs")}
        profile = profile or d.get("profile")
        machine = machine or d.get("machine")
    runs.append(rec)

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def worst(xs, fn):
    xs = [x for x in xs if x is not None]
    return fn(xs) if xs else None

def summarise(group):
    ok = [r for r in group if "whole" in r]
    s = {"runs": len(group), "failed_runs": len(group) - len(ok), "max_loadavg_before": max(r["loadavg_before"] for r in group),
         "median_seconds": med([r["seconds"] for r in group])}
    s["median_speed_ratio"] = med([r.get("speed_ratio") for r in ok])
    hs = [r.get("host") or {} for r in ok]
    s["host"] = {"waited_s": sum(h.get("waited_s") or 0 for h in hs), "disturbed_passes": sum(h.get("disturbed_passes") or 0 for h in hs),
                 "runs_with_disturbed_archs": sum(1 for h in hs if (h.get("disturbed_archs") or 0) > 0)}
    for k in ("whole", "wall", "speed"):
        got = [r[k] for r in ok if r.get(k)]
        s[k] = {"median_mape_pct": med([g.get("mape_pct") for g in got]), "worst_mape_pct": worst([g.get("mape_pct") for g in got], max),
                "median_tau": med([g.get("tau") for g in got]), "worst_tau": worst([g.get("tau") for g in got], min),
                "median_tau_resolved": med([g.get("tau_resolved") for g in got]),
                "worst_tau_resolved": worst([g.get("tau_resolved") for g in got], min),
                "least_resolved_pairs": worst([g.get("resolved_pairs") for g in got], min), "pairs": med([g.get("pairs") for g in got]),
                "worst_max_pct": worst([g.get("max_pct") for g in got], max)} if got else None
    ops = sorted({op for r in ok if r.get("per_op") for op in r["per_op"]})
    s["per_op"] = {op: {"nodes": med([r["per_op"][op]["nodes"] for r in ok if r.get("per_op") and op in r["per_op"]]),
                        "median_mape_pct": med([r["per_op"][op]["mape_pct"] for r in ok if r.get("per_op") and op in r["per_op"]]),
                        "worst_mape_pct": worst([r["per_op"][op]["mape_pct"] for r in ok if r.get("per_op") and op in r["per_op"]], max)}
                   for op in ops}
    w = s["whole"]
    t = {"whole_mape": bool(w and s["failed_runs"] == 0 and w["worst_mape_pct"] is not None and w["worst_mape_pct"] <= T_MAPE),
         # judged over the pairs the validation's passes resolve (tau_resolved); the plain tau over every pair beside it
         "tau": bool(w and s["failed_runs"] == 0 and w["worst_tau_resolved"] is not None and w["worst_tau_resolved"] >= T_TAU),
         "tau_every_pair": bool(w and s["failed_runs"] == 0 and w["worst_tau"] is not None and w["worst_tau"] >= T_TAU)}
    have_ops = ok and all(r.get("per_op") is not None for r in ok)
    # None: the space has no node of that op (not judged); False also when the binary reports no per-op errors.
    t["per_op"] = {op: (None if have_ops and op not in s["per_op"] else
                        bool(have_ops and s["failed_runs"] == 0 and (s["per_op"][op]["worst_mape_pct"] or 0) <= T_OP))
                   for op in TARGET_OPS}
    s["targets"] = t
    s["pass"] = t["whole_mape"] and t["tau"] and all(v is not False for v in t["per_op"].values())
    return s

keys = []
for r in runs:
    k = (r["space"], r["batch"], r["condition"])
    if k not in keys:
        keys.append(k)
summary = []
for k in keys:
    s = {"space": k[0], "batch": k[1], "condition": k[2]}
    s.update(summarise([r for r in runs if (r["space"], r["batch"], r["condition"]) == k]))
    summary.append(s)
ver = subprocess.run([BIN, "--version"], capture_output=True, text=True)
out = {"benchmark": "latency-fidelity", "binary": BIN, "version": (ver.stdout or ver.stderr).strip() or None,
       "runs": RUNS, "archs": ARCHS, "extra_args": EXTRA, "cpus": os.cpu_count(),
       "conditions": {"quiet": {"co_runners": 0}, "busy": {"co_runners": 2, "what": "sh -c 'while :; do :; done', unpinned"}},
       "targets": {"whole_mape_pct_max": T_MAPE, "tau_min": T_TAU, "per_op_mape_pct_max": T_OP, "per_op_ops": TARGET_OPS,
                   "in": "every run"},
       "profile": profile, "machine": machine, "results": runs, "summary": summary,
       "pass": bool(summary) and all(s["pass"] for s in summary),
       "tau_every_pair": bool(summary) and all(s["targets"]["tau_every_pair"] for s in summary)}
print(json.dumps(out, indent=1))

f = lambda x, p=1: "-" if x is None else ("%.*f" % (p, x))
err = sys.stderr
print("latency fidelity: %d run(s) x %d archs per space, batch and condition; worst run (median)" % (RUNS, ARCHS), file=err)
print("%-16s %5s %-6s %-13s %-15s %-15s %-13s %-13s  %s" % ("space", "batch", "cond", "whole MAPE %", "tau resolved", "tau (every)",
                                                           "wall MAPE %", "speed MAPE %", "per-op worst MAPE %"), file=err)
for s in summary:
    w, wl, sp = s["whole"] or {}, s["wall"] or {}, s["speed"] or {}
    ops = " ".join("%s %s%s" % (op, f(v["worst_mape_pct"]), "" if op not in TARGET_OPS or (v["worst_mape_pct"] or 0) <= T_OP else "!")
                   for op, v in s["per_op"].items()) or "(none reported)"
    print("%-16s %5d %-6s %-13s %-15s %-15s %-13s %-13s  %s  %s" % (
        s["space"][:16], s["batch"], s["condition"],
        "%s (%s)" % (f(w.get("worst_mape_pct")), f(w.get("median_mape_pct"))),
        "%s (%s)" % (f(w.get("worst_tau_resolved"), 3), f(w.get("median_tau_resolved"), 3)),
        "%s (%s)" % (f(w.get("worst_tau"), 3), f(w.get("median_tau"), 3)),
        "%s (%s)" % (f(wl.get("worst_mape_pct")), f(wl.get("median_mape_pct"))),
        "%s (%s)" % (f(sp.get("worst_mape_pct")), f(sp.get("median_mape_pct"))),
        ops, "PASS" if s["pass"] else "FAIL" + ("" if not s["failed_runs"] else " (%d run(s) failed)" % s["failed_runs"])), file=err)
    h = s["host"]
    if h["waited_s"] or h["disturbed_passes"]:
        print("%-16s   host memory slow: waited %.0f s, %d pass(es) disturbed, %d run(s) with an arch measured only disturbed" % (
            "", h["waited_s"], h["disturbed_passes"], h["runs_with_disturbed_archs"]), file=err)
print("targets (every run): whole MAPE <= %g %%, tau (over the resolved pairs) >= %g, per-op MAPE <= %g %% for %s: %s" % (
    T_MAPE, T_TAU, T_OP, ", ".join(TARGET_OPS), "met" if out["pass"] else "NOT met"), file=err)
print("plain tau over every pair >= %g in every run: %s" % (
    T_TAU, "yes" if out["tau_every_pair"] else "no"), file=err)
PY
mkdir -p "$(dirname "$OUT")"
cp "$W/out.json" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
# every run's own validate-latency JSON (arch_list: per architecture and node), numbered as in "results"
RUNS_DIR="${OUT%.json}-runs"
rm -rf "$RUNS_DIR.tmp" && mkdir -p "$RUNS_DIR.tmp"
for f in "$W"/[0-9]*.json; do [ -e "$f" ] && cp "$f" "$RUNS_DIR.tmp/"; done
rm -rf "$RUNS_DIR" && mv "$RUNS_DIR.tmp" "$RUNS_DIR"
echo "bench-latency-fidelity: wrote $OUT and each run's validate-latency JSON to $RUNS_DIR/" >&2
