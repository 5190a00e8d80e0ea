#!/usr/bin/env bash
# End-to-end: bit cutting. A tiny synthetic search, pinas export --bit-cut (table, meta.json mpc.layers,
# re-priced latency, private vs plaintext), then pinas predict / dealer / infer use the windows.
source "$(dirname "$0")/lib_e2e.sh"

SETS=(--set name=cut --set threads=2 --set seed=4 --set data.synthetic_train=300 --set data.synthetic_test=100
      --set train.batch_size=50 --set search.warmup_epochs=1 --set search.epochs=1 --set 'search.lambdas=[0]'
      --set finetune.epochs=0 --set search.baselines=false --set search.hw=cpu --set 'latency.hw=["cpu"]' --set 'latency.net=["lan"]'
      --set export.bit_cut_images=64)
"$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T" >"$T/search.out" 2>"$T/search.err"
rc=$?
check "search exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/search.err"
R=$T/cut

# Without bit cutting: no mpc.layers.
"$PINAS" export "$R" --candidate 0 --out "$T/full" >"$T/full.out" 2>&1
check "export without --bit-cut exits 0" test $? -eq 0
check "... and writes no mpc.layers" bash -c "! grep -q '\"layers\"' '$T/full/meta.json'"

"$PINAS" export "$R" --candidate 0 --out "$T/cut" --bit-cut --verify 16 >"$T/cut.out" 2>"$T/cut.err"
rc=$?
check "export --bit-cut --verify exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$T/cut.err"
check "export prints the per-slot table" has "bit cutting on 64 validation images (eps 0.001, margin 2 bits" "$T/cut.out"
check "export reports private vs plaintext accuracy with the cut windows" has "with the cut comparison windows of" "$T/cut.out"
check "meta.json has a window per comparison slot, each error rate within eps" py "
import json, re
m = json.load(open('$T/cut/meta.json'))
net = json.load(open('$T/cut/net.json'))
L = m['mpc']['layers']
pick = lambda n: n.get('choice', n['candidates'][0])
slots = [n['id'] for n in net['nodes'] if n['op'] in ('act', 'pool') and
         (pick(n) in ('relu', 'maxpool') or pick(n).startswith('patch_relu'))]
assert [l['id'] for l in L] == slots, (L, slots)
assert all(8 <= l['cmp_bits'] <= l['cmp_high'] <= 64 for l in L), L
assert any(l['cmp_bits'] < 64 for l in L), L
rows = [r for r in open('$T/cut.out') if re.match(r'\s+\S+\s+(relu|maxpool|patch_relu:\S+)\s', r)]
assert len(rows) == len(L), rows
assert all(float(r.split()[-1].rstrip('%')) <= 0.1 for r in rows), rows
"
check "the export re-priced the predicted latency (fewer preprocessing bytes than 64 bits)" py "
import json
a = json.load(open('$T/full/meta.json'))['predicted_latency']['cpu/lan']
b = json.load(open('$T/cut/meta.json'))['predicted_latency']['cpu/lan']
assert b['preprocessing_bytes'] < a['preprocessing_bytes'], (a, b)
"

# pinas predict prices the windows; --cmp-bits 64 puts every slot back on 64 bits.
"$PINAS" predict "$T/cut" --hw cpu --net lan --json >"$T/p_cut.json" 2>&1
"$PINAS" predict "$T/cut" --hw cpu --net lan --cmp-bits 64 --json >"$T/p_64.json" 2>&1
check "predict: the windows cost less preprocessing than 64 bits" py "
import json
c = json.load(open('$T/p_cut.json'))['total']; f = json.load(open('$T/p_64.json'))['total']
assert sum(c['offline_bytes']) < sum(f['offline_bytes']), (c, f)
"

# pinas dealer reads the windows (smaller files); --layer-bits ID=B@H overrides one node.
"$PINAS" dealer "$T/cut" --batch 1 --out "$T/prep" --new-dealer-key "$T/dk" --json >"$T/d_cut.json" 2>"$T/d.err"
check "dealer with the windows exits 0" test $? -eq 0
"$PINAS" dealer "$T/cut" --batch 1 --out "$T/prep64" --dealer-key "$T/dk" --cmp-bits 64 --json >"$T/d_64.json" 2>>"$T/d.err"
check "dealer: the windows make smaller preprocessing than --cmp-bits 64" py "
import json
c = json.load(open('$T/d_cut.json'))['totals']; f = json.load(open('$T/d_64.json'))['totals']
assert c['client_bytes'] < f['client_bytes'] and c['server_bytes'] < f['server_bytes'], (c, f)
"
first=$(python3 -c "import json; print(json.load(open('$T/cut/meta.json'))['mpc']['layers'][0]['id'])")
expect_rc 2 "$PINAS" dealer "$T/cut" --batch 1 --out "$T/prep2" --dealer-key "$T/dk" --layer-bits "$first=40@30"
check "dealer: --layer-bits ID=B@H with H < B is a usage error" test $? -eq 0

# pinas infer uses the windows.
"$PINAS" export "$R" --candidate 0 --out "$T/cut2" --bit-cut --test-images 16 "$T/x.safetensors" >/dev/null 2>&1
"$PINAS" infer "$T/cut2" --input "$T/x.safetensors" >"$T/infer.out" 2>"$T/infer.err"
rc=$?
check "pinas infer on the bit-cut model exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -5 "$T/infer.err"
check "pinas infer: private and plaintext predictions agree" grep -q "argmax agreement 16/16" "$T/infer.out"

e2e_done e2e_nas_bitcut
