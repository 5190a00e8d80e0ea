#!/usr/bin/env bash
# End-to-end: search.method "knapsack" on the synthetic space: a budget below the cheapest architecture fails
# naming search.budgets_ms; two budgets give two candidates within their budgets, relu's distortion is 0,
# pinas pareto lists them, and a rerun of the finished run redoes nothing.
source "$(dirname "$0")/lib_e2e.sh"

SETS=(--set threads=2 --set seed=3 --set data.synthetic_train=400 --set data.synthetic_test=100 --set train.batch_size=50
      --set search.warmup_epochs=1 --set search.epochs=1 --set search.method=knapsack --set search.knapsack_images=100
      --set 'search.knapsack_candidates=["relu","patch_relu:2x2","patch_relu:2x3","patch_relu:4x4"]'
      --set search.baselines=false --set finetune.epochs=1 --set search.hw=cpu --set search.net=lan
      --set 'latency.hw=["cpu"]' --set 'latency.net=["lan"]' --set out_dir="$T")

# The config's cross-field checks name the field.
"$PINAS" config show configs/synthetic.json --set search.method=knapsack >/dev/null 2>"$T/cfg.err"
check "knapsack without budgets: error naming search.budgets_ms" has 'configs/synthetic.json: search.budgets_ms: search.method "knapsack" needs at least one' "$T/cfg.err"
"$PINAS" search configs/synthetic.json "${SETS[@]}" --set name=badopt --set 'search.budgets_ms=[20]' --set 'search.knapsack_candidates=["relu","patch_relu:2"]' >/dev/null 2>"$T/opt.err"
check "a bad option: error naming search.knapsack_candidates" has 'search.knapsack_candidates: "patch_relu:2" is not an activation' "$T/opt.err"

# A budget below the cheapest choice: a clear error before any training.
"$PINAS" search configs/synthetic.json "${SETS[@]}" --set name=small --set 'search.budgets_ms=[0.001]' >"$T/small.out" 2>"$T/small.err"
rc=$?
check "too small a budget exits non-zero (rc $rc)" test "$rc" -ne 0
check "... naming search.budgets_ms" has "search.budgets_ms[0]: 0.001 ms is below the cheapest architecture" "$T/small.err"
check "... before any training" test ! -e "$T/small/checkpoint/warmup-final.safetensors"

# The cheapest and the all-ReLU latency of the knapsack space from the LUT the failed run wrote.
read -r cheap relu < <(python3 - "$T/small/lut.json" <<'EOF'
import json, sys
lut = json.load(open(sys.argv[1]))
cheap = relu = lut["fixed"]["online_ms"]
for s in lut["slots"]:
    ms = {c["op"]: c["online_ms"] for c in s["candidates"]}
    if s["op"] == "pool":
        cheap += ms.get("maxpool", max(ms.values())); relu += ms.get("maxpool", max(ms.values()))
    else:
        cheap += min(ms.values()); relu += ms["relu"]
print(cheap, relu)
EOF
)
check "the LUT prices the knapsack options (cheapest $cheap < all-ReLU $relu ms)" awk -v a="$cheap" -v b="$relu" 'BEGIN { exit !(a < b) }'
b0=$(awk -v a="$cheap" -v b="$relu" 'BEGIN { printf "%.6f", a + 0.25 * (b - a) }')
b1=$(awk -v a="$cheap" -v b="$relu" 'BEGIN { printf "%.6f", a + 0.75 * (b - a) }')

"$PINAS" search configs/synthetic.json "${SETS[@]}" --set name=ks --set "search.budgets_ms=[$b0,$b1]" >"$T/ks.out" 2>"$T/ks.err"
rc=$?
check "knapsack search exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/ks.err"
R=$T/ks
for f in lut.json log.jsonl knapsack/distortion.json knapsack/base/weights.safetensors candidates/0/net.json candidates/0/meta.json \
         candidates/0/weights.safetensors candidates/0/metrics.json candidates/1/metrics.json pareto.json; do
  check "run dir has $f" test -s "$R/$f"
done
check "candidates within their budgets, recorded as knapsack" py "
import json
for k, b in enumerate([$b0, $b1]):
    m = json.load(open('$R/candidates/%d/metrics.json' % k))
    assert m['search']['method'] == 'knapsack' and m['sweep']['budget_ms'] == b, m['sweep']
    assert m['latency']['cpu/lan']['online_ms'] <= b * (1 + 1e-9), (k, m['latency']['cpu/lan']['online_ms'], b)
    assert m['search']['lut_ms'] <= b and m['search']['seconds']['total'] > 0
    assert 0 <= m['accuracy'] <= 1
a, b = [json.load(open('$R/candidates/%d/metrics.json' % k))['relu_count'] for k in (0, 1)]
assert a <= b, (a, b)"
check "relu's distortion is 0 in every slot, others measured" py "
import json
lines = [json.loads(l) for l in open('$R/log.jsonl')]
ms = [l for l in lines if l.get('phase') == 'knapsack-measure']
assert len(ms) == 5, len(ms)
assert all(l['distortion']['relu'] == 0 for l in ms)
assert any(v != 0 for l in ms for k, v in l['distortion'].items() if k != 'relu')
assert len([l for l in lines if l.get('phase') == 'knapsack-solve']) == 2
t = json.load(open('$R/knapsack/distortion.json'))
assert all(s['distortion'][s['options'].index('relu')] == 0 for s in t['slots'])"
check "progress names the measured slots and solved budgets" grep -q "knapsack: budget 1" "$T/ks.err"

"$PINAS" pareto "$R" >"$T/pareto.out" 2>"$T/pareto.err"
check "pinas pareto exits 0" test $? -eq 0
check "... lists the knapsack candidates by budget" has "budget=$(awk -v b="$b0" 'BEGIN { printf "%g", b }')ms" "$T/pareto.out"
check "... both" test "$(grep -c '"label"' "$R/pareto.json")" -eq 2

# A rerun of the finished run redoes nothing (no training, no measuring, no solving).
n_before=$(wc -l <"$R/log.jsonl")
"$PINAS" search --resume "$R" >"$T/re.out" 2>"$T/re.err"
check "resume of the finished run exits 0" test $? -eq 0
check "... and appends nothing to log.jsonl" test "$(wc -l <"$R/log.jsonl")" -eq "$n_before"
# A lost candidate is redone from the saved all-ReLU net and distortions: only its solve and fine-tune.
rm "$R/candidates/1/metrics.json"
"$PINAS" search --resume "$R" >"$T/re2.out" 2>"$T/re2.err"
check "resume with candidate 1 missing exits 0" test $? -eq 0
check "... redoes only candidate 1" py "
import json
new = [json.loads(l) for l in open('$R/log.jsonl')][$n_before:]
assert [l['phase'] for l in new if l['phase'].startswith('knapsack')] == ['knapsack-solve'], [l['phase'] for l in new]
assert new[0]['k'] == 1"
check "... to the same architecture" py "
import json
m = json.load(open('$R/candidates/1/metrics.json'))
assert m['sweep']['budget_ms'] == $b1"
e2e_done e2e_nas_knapsack
