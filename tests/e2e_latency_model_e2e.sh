#!/usr/bin/env bash
# End-to-end latency (issue 16): `pinas predict --client-storage/--rate/--trace`, `pinas stream` (a real
# stream against the simulation; no timing is asserted here: scripts/bench-e2e.sh does that), and
# `pinas pareto --metric e2e` on a hand-made run dir.
source "$(dirname "$0")/lib_e2e.sh"
G=$(cd "$(dirname "$0")" && pwd)/golden

check "model random (all-relu)" expect_rc 0 "$PINAS" model random "$G/tiny_space.json" --out "$T/relu" --arch all-relu
check "model random (all-poly)" expect_rc 0 "$PINAS" model random "$G/tiny_space.json" --out "$T/poly" --arch all-poly

# predict: unbounded storage at a low rate -> the online latency; none -> online + dealer + transfer.
check "predict --client-storage inf --rate 1/h --json" expect_rc 0 "$PINAS" predict "$T/relu" --client-storage inf --rate 1/h --json
check "  ... mean = online, nobody waited" py "
import json,sys; d=json.load(open('$T/out')); e=d['e2e']; r=e['result']
sys.exit(0 if abs(r['mean_ms']-d['total']['online_ms'])<1e-6*d['total']['online_ms'] and r['waited_share']==0 and r['n']==20000 else 1)"
check "predict --client-storage 0 --rate 1/h --json" expect_rc 0 "$PINAS" predict "$T/relu" --client-storage 0 --rate 1/h --json
check "  ... p50 = online + dealer + transfer, everybody waited" py "
import json,sys; d=json.load(open('$T/out')); e=d['e2e']; r=e['result']; c=e['costs']
tot=c['online_ms']+c['gen_ms']+c['xfer_ms']
sys.exit(0 if abs(r['p50_ms']-tot)<1e-6*tot and abs(e['total_ms']-tot)<1e-9*tot and r['waited_share']==1 and r['capacity']==0 else 1)"
check "predict --client-storage 2GB --rate 6/min (table)" expect_rc 0 "$PINAS" predict "$T/relu" --client-storage 2GB --rate 6/min --net wan
check "  ... prints the e2e figures" has "waited for preprocessing" "$T/out"
printf '0\n0\n# a comment\n10\n' > "$T/trace.txt"
check "predict --trace" expect_rc 0 "$PINAS" predict "$T/relu" --client-storage 1 --trace "$T/trace.txt" --json
check "  ... 3 arrivals, all waited (storage below one set)" py "
import json,sys; r=json.load(open('$T/out'))['e2e']['result']; sys.exit(0 if r['n']==3 and r['waited_share']==1 else 1)"
check "bad size" expect_rc 1 "$PINAS" predict "$T/relu" --client-storage 2XB --rate 6/min
check "  ... names the option" has "--client-storage" "$T/err"
check "bad rate" expect_rc 1 "$PINAS" predict "$T/relu" --client-storage 2GB --rate 6/fortnight
check "  ... names the option" has "--rate" "$T/err"
printf '0\n5\n3\n' > "$T/back.txt"
check "a decreasing trace" expect_rc 1 "$PINAS" predict "$T/relu" --client-storage 2GB --trace "$T/back.txt"
check "  ... names file and line" has "back.txt:3" "$T/err"
check "--rate without --client-storage" expect_rc 2 "$PINAS" predict "$T/relu" --rate 6/min

# stream: a few requests on the tiny model; with no storage every request waits for its own set, with
# unbounded storage none does. The store's directory goes away.
mkdir -p "$T/tmp"
check "stream --client-storage 0 --net lan" expect_rc 0 env TMPDIR="$T/tmp" "$PINAS" stream "$T/relu" --requests 8 --rate 20/s --client-storage 0 --net lan --json
check "  ... everybody waited; the link was emulated; the prediction ran; the store is gone" py "
import json,os,sys; d=json.load(open('$T/out')); m=d['measured']; c=d['measured_costs']
ok = d['requests']==8 and d['capacity']==0 and m['waited_share']==1 and d['predicted']['waited_share']==1 and m['mean_ms']>0
ok = ok and c['gen_ms']>0 and c['xfer_ms']>3 and d['predicted']['n']==8 and os.listdir('$T/tmp')==[]
sys.exit(0 if ok else 1)"
check "stream --client-storage inf" expect_rc 0 env TMPDIR="$T/tmp" "$PINAS" stream "$T/poly" --requests 6 --rate 10/s --client-storage inf --json
check "  ... nobody waited" py "
import json,os,sys; d=json.load(open('$T/out')); m=d['measured']
sys.exit(0 if d['capacity']==6 and m['waited_share']==0 and d['predicted']['waited_share']==0 and os.listdir('$T/tmp')==[] else 1)"
check "stream table" expect_rc 0 "$PINAS" stream "$T/relu" --requests 4 --rate 10/s --client-storage 1MB
check "  ... prints measured and predicted" bash -c "grep -q '^measured:' '$T/out' && grep -q '^predicted (measured costs' '$T/out'"
check "stream without --rate" expect_rc 2 "$PINAS" stream "$T/relu" --requests 4 --client-storage 1MB

# pareto --metric e2e: a run dir with two candidates (their model dirs) re-priced by the simulation.
R="$T/run"
mkdir -p "$R/candidates"
echo '{}' > "$R/config.json"
for k in 0 1; do
  src=$([ $k = 0 ] && echo relu || echo poly); acc=$([ $k = 0 ] && echo 0.9 || echo 0.8)
  cp -r "$T/$src" "$R/candidates/$k"
  echo "{\"format\": \"pinas-metrics/1\", \"run\": \"fake\", \"kind\": \"candidate\", \"k\": $k, \"accuracy\": $acc, \"relu_count\": 1}" > "$R/candidates/$k/metrics.json"
done
check "pareto --metric online" expect_rc 0 "$PINAS" pareto "$R" --json
cp "$T/out" "$T/online.json"
check "pareto --metric e2e --client-storage 0 --rate 1/min" expect_rc 0 "$PINAS" pareto "$R" --metric e2e --client-storage 0 --rate 1/min --json
check "  ... latency = online + dealer + transfer > online; accuracies kept" py "
import json,sys; a={e['label']:e for e in json.load(open('$T/online.json'))['entries']}; b={e['label']:e for e in json.load(open('$T/out'))['entries']}
ok = set(a)==set(b) and all(b[k]['latency_ms']>a[k]['latency_ms'] and b[k]['accuracy']==a[k]['accuracy'] for k in a)
sys.exit(0 if ok else 1)"
check "  ... written under pareto-<hw>-<net>-e2e" bash -c "ls '$R'/pareto-*-e2e/pareto.json >/dev/null"
check "pareto --metric e2e --client-storage inf" expect_rc 0 "$PINAS" pareto "$R" --metric e2e --client-storage inf --rate 1/min --json
check "  ... equals the online latency" py "
import json,sys; a={e['label']:e for e in json.load(open('$T/online.json'))['entries']}; b={e['label']:e for e in json.load(open('$T/out'))['entries']}
sys.exit(0 if all(abs(b[k]['latency_ms']-a[k]['latency_ms'])<1e-3*a[k]['latency_ms'] for k in a) else 1)"
check "pareto --rate without e2e" expect_rc 2 "$PINAS" pareto "$R" --rate 1/min

e2e_done e2e_latency_model_e2e
