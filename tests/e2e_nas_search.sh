#!/usr/bin/env bash
# End-to-end: search on the synthetic space (lambda direction, logs, run dir), pinas pareto, pinas export -> pinas infer.
source "$(dirname "$0")/lib_e2e.sh"
num() { grep -o "\"$1\":[[:space:]]*[-0-9.e+]*" "$2" | head -1 | sed 's/.*:[[:space:]]*//'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# lambda = 0 (accuracy only) against a large lambda (latency dominates): the large one must keep fewer ReLUs.
SETS=(--set name=dir --set threads=2 --set seed=3 --set data.synthetic_train=400 --set data.synthetic_test=100
      --set train.batch_size=50 --set search.warmup_epochs=1 --set search.epochs=3 --set search.arch_lr=0.05
      --set 'search.lambdas=[0,5]' --set finetune.epochs=0 --set search.hw=pasnet --set 'latency.hw=["pasnet","fpga-zcu104"]' --set 'latency.net=["lan","wan"]')
"$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T" >"$T/search.out" 2>"$T/search.err"
rc=$?
check "search exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/search.err"
R=$T/dir
r0=$(num relu_count "$R/candidates/0/metrics.json")
r1=$(num relu_count "$R/candidates/1/metrics.json")
rall=$(num relu_count "$R/baselines/all-relu/metrics.json")
echo "     ReLUs: lambda=0 -> $r0, lambda=5 -> $r1, all-ReLU -> $rall"
check "lambda=0 keeps more ReLUs than lambda=5" lt "$r1" "$r0"
check "lambda=0 keeps no more than all-ReLU" test "$r0" -le "$rall"
l0=$(num online_ms "$R/candidates/0/metrics.json")
l1=$(num online_ms "$R/candidates/1/metrics.json")
check "lambda=5 is predicted faster than lambda=0 ($l1 < $l0 ms)" lt "$l1" "$l0"

# Every search epoch logs CE, E[lat], alpha entropy and the argmax latency.
n=$(grep '"phase":"search-' "$R/log.jsonl" | grep '"ce"' | grep '"expected_latency_ms"' | grep '"alpha_entropy"' | grep -c '"argmax_latency_ms"')
check "log.jsonl has 6 complete search epoch lines (got $n)" test "$n" -eq 6
e_first=$(grep '"phase":"search-1"' "$R/log.jsonl" | head -1 | grep -o '"expected_latency_ms":[0-9.e+-]*' | cut -d: -f2)
e_last=$(grep '"phase":"search-1"' "$R/log.jsonl" | tail -1 | grep -o '"expected_latency_ms":[0-9.e+-]*' | cut -d: -f2)
check "E[lat] falls during the lambda=5 search ($e_first -> $e_last)" lt "$e_last" "$e_first"
check "progress shows the argmax latency" grep -q "argmax" "$T/search.err"

# The run dir layout.
for f in config.json log.jsonl lut.json pareto.json pareto.csv pareto.svg pareto.png candidates/0/net.json \
         candidates/0/weights.safetensors candidates/0/meta.json candidates/1/metrics.json baselines/all-poly/metrics.json; do
  check "run dir has $f" test -s "$R/$f"
done
check "config.json records the seed" grep -q '"seed":[[:space:]]*3' "$R/config.json"
check "config.json records the git revision" grep -q '"git_rev"' "$R/config.json"
check "config.json has the space inline" grep -q '"nodes"' "$R/config.json"
check "metrics price every profile pair" test "$(grep -c '"online_ms"' "$R/candidates/0/metrics.json")" -ge 4
check "pareto.png is a PNG" test "$(head -c 4 "$R/pareto.png" | od -An -c | tr -d ' ')" = "211PNG"
check "pareto.csv has a row per candidate and baseline" test "$(wc -l <"$R/pareto.csv")" -eq 5
check "search prints the table" grep -q "Pareto front under pasnet / lan" "$T/search.out"

# pinas pareto: merge the run with itself under another profile pair.
"$PINAS" pareto "$R" "$R" --hw fpga-zcu104 --net wan --out "$T/merged" >"$T/pareto.out" 2>"$T/pareto.err"
check "pareto over two runs exits 0" test $? -eq 0
check "merged table names the profile" grep -q "fpga-zcu104 / wan" "$T/pareto.out"
check "merged pareto.json has 8 entries" test "$(grep -c '"label"' "$T/merged/pareto.json")" -eq 8
check "merged plot written" test -s "$T/merged/pareto.png"
cp "$R/pareto.csv" "$T/own.csv"
"$PINAS" pareto "$R" --hw fpga-zcu104 --net wan >/dev/null 2>&1
check "pareto of one run under other profiles exits 0" test $? -eq 0
check "... writes beside the run's files" test -s "$R/pareto-fpga-zcu104-wan/pareto.png"
check "... and leaves the run's own pareto.csv as it was" cmp -s "$R/pareto.csv" "$T/own.csv"
"$PINAS" pareto "$R" --metric fastest >/dev/null 2>&1
check "pareto: bad --metric is a usage error" test $? -eq 2
"$PINAS" pareto "$T/nothing" >/dev/null 2>"$T/err"
check "pareto: a dir without candidates fails" test $? -eq 1

# pinas export -> pinas infer: private inference of test images through the runtime's own CLI.
budget=$(awk -v a="$l0" 'BEGIN { print a * 1.01 }')
"$PINAS" export "$R" --best-under "$budget" --out "$T/model" --test-images 16 "$T/x.safetensors" --verify 16 >"$T/export.out" 2>"$T/export.err"
rc=$?
check "export --best-under exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$T/export.err"
check "export wrote a model dir" test -s "$T/model/net.json" -a -s "$T/model/weights.safetensors" -a -s "$T/model/meta.json"
check "exported meta names its source" grep -q '"exported_from"' "$T/model/meta.json"
check "private accuracy equals plaintext accuracy" grep -q "(equal)" "$T/export.out"
"$PINAS" infer "$T/model" --input "$T/x.safetensors" >"$T/infer.out" 2>"$T/infer.err"
rc=$?
check "pinas infer on the exported model exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/infer.err"
check "private and plaintext predictions agree on all 16 images" grep -q "argmax agreement 16/16" "$T/infer.out"
check "pinas infer reads the labels and prints equal private and plaintext accuracy" \
  bash -c "grep -Eq 'accuracy on 16 labelled inputs: private ([0-9.]+%) \(([0-9]+)/16\), plaintext \1 \(\2/16\)' '$T/infer.out'"
"$PINAS" export "$R" --candidate 1 --out "$T/m1" >/dev/null 2>&1
check "export --candidate 1 exits 0" test $? -eq 0
check "export --candidate 1 wrote candidate 1's net" cmp -s "$R/candidates/1/net.json" "$T/m1/net.json"
"$PINAS" export "$R" --best-under 0.000001 --out "$T/m2" >/dev/null 2>"$T/err"
check "export: an impossible budget fails" test $? -eq 1
check "... naming the fastest candidate" grep -q "the fastest needs" "$T/err"
"$PINAS" export "$R" --candidate 7 --out "$T/m3" >/dev/null 2>"$T/err"
check "export: a missing candidate fails" test $? -eq 1
"$PINAS" export "$R" --candidate 0 --best-under 3 --out "$T/m4" >/dev/null 2>&1
check "export: --candidate with --best-under is a usage error" test $? -eq 2

# The multiplicative form, with retraining from scratch: a 1 ms target keeps pushing E[lat] down; a 50 ms
# target stops pushing once E[lat] is under it, so its supernet ends slower.
"$PINAS" --quiet search configs/synthetic.json "${SETS[@]}" --set name=mul --set out_dir="$T" --set search.loss=multiplicative \
  --set 'search.targets_ms=[1,50]' --set search.beta=2 --set finetune.mode=scratch --set finetune.epochs=1 \
  --set search.baselines=false >"$T/mul.out" 2>"$T/mul.err"
rc=$?
check "multiplicative search with scratch retraining exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/mul.err"
m0=$(grep '"phase":"search-0"' "$T/mul/log.jsonl" | tail -1 | grep -o '"expected_latency_ms":[0-9.e+-]*' | cut -d: -f2)
m1=$(grep '"phase":"search-1"' "$T/mul/log.jsonl" | tail -1 | grep -o '"expected_latency_ms":[0-9.e+-]*' | cut -d: -f2)
check "target 1 ms ends with a lower E[lat] than target 50 ms ($m0 < $m1)" lt "$m0" "$m1"
check "metrics record the target" grep -q '"target_ms"' "$T/mul/candidates/1/metrics.json"
check "metrics record scratch retraining" grep -q '"scratch"' "$T/mul/candidates/1/metrics.json"

# The literal CE*(E/T)^beta (search.target_clamp=false): the target only rescales the alpha gradient, which
# Adam normalises away, so targets 1 and 50 ms search identically (why the clamped form is the default).
"$PINAS" --quiet search configs/synthetic.json "${SETS[@]}" --set name=lit --set out_dir="$T" --set search.loss=multiplicative \
  --set 'search.targets_ms=[1,50]' --set search.beta=2 --set search.target_clamp=false --set finetune.epochs=0 \
  --set search.baselines=false >"$T/lit.out" 2>"$T/lit.err"
check "literal multiplicative search exits 0" test $? -eq 0
q0=$(grep '"phase":"search-0"' "$T/lit/log.jsonl" | tail -1 | grep -o '"expected_latency_ms":[0-9.e+-]*' | cut -d: -f2)
q1=$(grep '"phase":"search-1"' "$T/lit/log.jsonl" | tail -1 | grep -o '"expected_latency_ms":[0-9.e+-]*' | cut -d: -f2)
check "literal form: targets 1 and 50 ms end at the same E[lat] ($q0 vs $q1)" \
  awk -v a="$q0" -v b="$q1" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-3 * a) }'

# Naive baselines at matched latency and distillation from the all-ReLU baseline: every point trained
# by one recipe (scratch, 1 epoch), first-k and random placements no slower than their candidate.
"$PINAS" --quiet search configs/synthetic.json "${SETS[@]}" --set name=naive --set out_dir="$T" --set finetune.mode=scratch \
  --set finetune.epochs=1 --set search.naive_first_k=true --set search.naive_random=2 --set finetune.distill=true \
  --set search.hw=cpu --set 'latency.hw=["cpu"]' --set 'latency.net=["lan"]' >"$T/naive.out" 2>"$T/naive.err"
rc=$?
check "search with naive baselines and distillation exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/naive.err"
check "naive baselines match their candidate's latency, kinds and families agree" py "
import json, glob, os
run = '$T/naive'
n = 0
for d in sorted(glob.glob(run + '/baselines/*/')):
    m = json.load(open(d + 'metrics.json'))
    if m['kind'] not in ('first-k', 'random'): continue
    nv = m['naive']; n += 1
    assert nv['family'] == m['kind'], d
    c = json.load(open('%s/candidates/%d/metrics.json' % (run, nv['matched_to'])))
    own = m['latency']['cpu/lan']['online_ms']; cand = c['latency']['cpu/lan']['online_ms']
    assert own <= cand * (1 + 1e-9), (d, own, cand)
    assert abs(nv['budget_ms'] - cand) <= 1e-6 * cand, (nv, cand)
    assert os.path.basename(d.rstrip('/')).startswith(m['kind']), d
assert n >= 2, n
print('  %d naive baselines' % n)"
check "every point but the teacher distilled from baselines/all-relu" py "
import json, glob
run = '$T/naive'
for p in glob.glob(run + '/candidates/*/metrics.json') + glob.glob(run + '/baselines/*/metrics.json'):
    m = json.load(open(p)); ft = m['finetune']
    assert ft['mode'] == 'scratch' and ft['epochs'] == 1, p
    if m['kind'] == 'all-relu': assert 'distilled_from' not in ft, p
    else: assert ft.get('distilled_from') == 'baselines/all-relu', p"
check "all-ReLU (the teacher) was trained before the candidates" py "
import json
phases = [json.loads(l).get('phase') for l in open('$T/naive/log.jsonl')]
fin = [p for p in phases if p and p.startswith('finetune-')]
assert fin[0] == 'finetune-all-relu', fin"
check "pareto prints the searched-vs-naive comparison" expect_rc 0 "$PINAS" pareto "$T/naive"
check "  ... with its header" has "searched vs best naive" "$T/out"
check "pareto.json holds the comparison" py "
import json; p = json.load(open('$T/naive/pareto.json')); c = p['comparison']
assert len(c) == 2 and all('naive_accuracy' in e for e in c), c"

e2e_done e2e_nas_search
