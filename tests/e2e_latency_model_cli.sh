#!/usr/bin/env bash
# End-to-end checks of the cost model's commands: predict (table, JSON, LUT), calibrate, validate-latency.
source "$(dirname "$0")/lib_e2e.sh"

for c in predict calibrate validate-latency; do
  check "$c --help" expect_rc 0 "$PINAS" "$c" --help
done
"$PINAS" predict --help > "$T/help"
check "predict --help documents the profiles" has "fpga-zcu104" "$T/help"

# ResNet-18 CIFAR, every act decided: relu (the compact form with one candidate is decided).
echo '{"format": "pinas-net/1", "backbone": "resnet", "depth": 18, "act": ["relu"]}' > "$T/r18relu.json"
echo '{"format": "pinas-net/1", "backbone": "resnet", "depth": 18, "act": ["poly"]}' > "$T/r18poly.json"
check "predict pasnet all-ReLU ResNet-18 --json" expect_rc 0 "$PINAS" predict "$T/r18relu.json" --hw pasnet --net wan --json
check "  ... PASNet's 7575.9684 ms" py "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if abs(d['total']['online_ms']-7575.9684)<1e-6 else 1)"
check "predict pasnet all-poly ResNet-18" expect_rc 0 "$PINAS" predict "$T/r18poly.json" --hw pasnet --net wan --json
check "  ... 16.71508 ms" py "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if abs(d['total']['online_ms']-16.71508)<1e-8 else 1)"

check "predict fpga + lan table" expect_rc 0 "$PINAS" predict "$T/r18relu.json" --hw fpga-zcu104 --net lan
check "  ... has a total row and the profile names" bash -c "grep -q '^total ' '$T/out' && grep -q 'under hw fpga-zcu104, net lan' '$T/out'"
check "predict fpga + lan --json" expect_rc 0 "$PINAS" predict "$T/r18relu.json" --hw fpga-zcu104 --net lan --json
check "  ... total = sum of nodes, online = compute + comm" py "
import json,sys; d=json.load(open('$T/out')); n=d['nodes']; t=d['total']
ok = abs(sum(x['online_ms'] for x in n)-t['online_ms']) < 1e-6*t['online_ms'] and all(abs(x['online_ms']-x['compute_ms']-x['comm_ms'])<1e-9 for x in n)
ok = ok and t['rounds'] == sum(x['rounds'] for x in n) and d['hw']=='fpga-zcu104' and d['net']=='lan' and any(x['op']=='relu' for x in n)
sys.exit(0 if ok else 1)"
check "wan is slower than lan" bash -c "
a=\$('$PINAS' predict '$T/r18relu.json' --hw fpga-zcu104 --net lan --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"total\"][\"online_ms\"])')
b=\$('$PINAS' predict '$T/r18relu.json' --hw fpga-zcu104 --net wan --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"total\"][\"online_ms\"])')
python3 -c \"import sys; sys.exit(0 if \$b > \$a else 1)\""
check "the U250 is not slower than the ZCU104" bash -c "
a=\$('$PINAS' predict '$T/r18relu.json' --hw fpga-zcu104 --net lan --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"total\"][\"online_ms\"])')
b=\$('$PINAS' predict '$T/r18relu.json' --hw fpga-u250 --net lan --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"total\"][\"online_ms\"])')
python3 -c \"import sys; sys.exit(0 if \$b <= \$a else 1)\""

# The LUT of a space.
echo '{"format": "pinas-net/1", "backbone": "resnet", "depth": 20, "width": 4, "input": [3, 8, 8], "act": ["relu", "poly", "patch_relu:2x2"]}' > "$T/space.json"
check "an open space needs --lut" expect_rc 1 "$PINAS" predict "$T/space.json" --hw fpga-zcu104 --net lan
check "  ... message" has "slots are still open" "$T/err"
check "predict --lut" expect_rc 0 "$PINAS" predict "$T/space.json" --hw fpga-u250 --net wan --lut "$T/lut.json"
check "  ... LUT header and slots" py "
import json,sys; d=json.load(open('$T/lut.json')); h=d['header']
ok = d['format']=='pinas-lut/1' and h['hw']=='fpga-u250' and h['net']=='wan' and h['mpc']['batch']==1 and h['pinas_version']
ok = ok and len(d['slots'])==19 and all([c['op'] for c in s['candidates']]==['relu','poly','patch_relu:2x2'] for s in d['slots'])
ok = ok and all(len(s['shape'])==3 for s in d['slots']) and d['fixed']['online_ms'] > 0
sys.exit(0 if ok else 1)"

# The golden LUT (tests/golden/lut.json, checked field by field by test_latency_model_golden) is what
# `pinas predict --lut` writes for the golden space and profiles.
check "predict --lut on the golden space and profiles" expect_rc 0 "$PINAS" predict tests/golden/tiny_space.json --hw tests/golden/profile-cpu.json --net tests/golden/profile-link.json --lut "$T/golden-lut.json"
check "  ... byte for byte tests/golden/lut.json" cmp "$T/golden-lut.json" tests/golden/lut.json

check "unknown profile suggests a name" expect_rc 1 "$PINAS" predict "$T/r18relu.json" --hw fpga-zcu14
check "  ... message" has 'did you mean "fpga-zcu104"' "$T/err"
check "a network profile as --hw is refused" expect_rc 1 "$PINAS" predict "$T/r18relu.json" --hw lan
check "missing input is a usage error" expect_rc 2 "$PINAS" predict --hw cpu
check "bad --batch is a usage error" expect_rc 2 "$PINAS" predict "$T/r18relu.json" --batch 0
printf '{"format": "pinas-profile/1", "kind": "network", "name": "slow", "bandwidth_mbit_per_s": 10, "rtt_ms": 100}' > "$T/slow.json"
check "custom network profile by path" expect_rc 0 "$PINAS" predict "$T/r18relu.json" --hw fpga-zcu104 --net "$T/slow.json" --json
check "  ... named in the output" py "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if d['net']=='slow' else 1)"

# Calibration (quick sweep) and validation against the runtime on a tiny space.
check "calibrate --scale 0.1" expect_rc 0 "$PINAS" --quiet calibrate --scale 0.1 --runs 1 --max-batch 2 --out "$T/cpu.json" --json
check "  ... a per-party cpu profile with every class, this machine's CPU and a date" py "
import json,sys; d=json.load(open('$T/cpu.json'))
cls=['conv2d','dwconv','linear','relu','poly','patch_relu','maxpool','avgpool','add','global_avgpool','input']
ok = d['kind']=='cpu' and d['model']=='party-cpu' and all(k in d['primitives'] for k in cls)
ok = ok and all(v>=0 for k in cls for p in ('server','client') for v in d['primitives'][k][p].values())
ok = ok and d['primitives']['relu']['rows'][0] > 0 and d['offline']['aes_blocks_per_s'] > 0
ok = ok and d['calibration']['cpu_model'] != '' and d['calibration']['date'].startswith('20') and d['calibration']['clock']=='thread-cpu'
sys.exit(0 if ok else 1)"
check "  ... its report lists every measured node with its fit" py "
import json,sys; d=json.load(open('$T/out'))
sys.exit(0 if len(d['rows']) > 100 and all(r[5] > 0 for r in d['rows']) and d['nets']==13 else 1)"
echo '{"format": "pinas-net/1", "backbone": "resnet", "depth": 20, "width": 4, "stem": "cifar-pool", "input": [3, 8, 8], "act": ["relu", "poly", "patch_relu:2x2", "identity"], "pool": ["maxpool", "avgpool"]}' > "$T/tiny.json"
check "validate-latency on a tiny space" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 3 --runs 2 --hw "$T/cpu.json" --net loopback --json
check "  ... whole-net (robust and wall) figures, per-op per-node errors, 3 archs with per-party node times" py "
import json,sys; d=json.load(open('$T/out'))
A=d['arch_list']
ok = len(A)==3 and all(a['measured_ms']>0 and a['predicted_ms']>0 and a['wall_ms']>0 for a in A)
ok = ok and d['whole']['mape_pct']>=0 and -1<=d['whole']['tau']<=1 and 'mape_pct' in d['wall'] and d['calibrated'] is False
ops={o['op']:o for o in d['per_op']}
ok = ok and 'conv2d' in ops and 'relu' in ops and all(o['nodes']>0 and o['mape_pct']>=0 for o in d['per_op'])
ok = ok and all(len(n)==6 and n[4]>=0 and n[5]>=0 for a in A for n in a['nodes']) and d['profile']['cpu_model']!=''
ok = ok and 0 <= d['shielded_archs'] <= 3
sys.exit(0 if ok else 1)"
check "  ... passes: 2 at least, then more for the unsettled, up to 6; each arch's two least passes; tau over the resolved pairs" py "
import json,sys; d=json.load(open('$T/out'))
A=d['arch_list']; w=d['whole']
ok = d['passes']==2 and d['max_passes']==6 and d['agree_pct']==3 and 0 <= d['unsettled_archs'] <= 3
ok = ok and all(2 <= a['passes'] <= 6 and a['measured_span_ms'][0] <= a['measured_span_ms'][1] for a in A)
ok = ok and all(a['measured_ms'] <= a['measured_span_ms'][0] * (1 + 1e-9) for a in A)
ok = ok and w['pairs']==3 and 0 <= w['resolved_pairs'] <= 3 and ('tau_resolved' not in w or -1 <= w['tau_resolved'] <= 1)
sys.exit(0 if ok else 1)"
check "  ... the host-memory check before and after every pass, reported; no gate, no waiting" py "
import json,sys; d=json.load(open('$T/out')); h=d['host']
ok = h['tol_pct']==15 and h['gate'] is False and h['max_wait_s']==0 and h['checks'] >= 4 and h['waited_s']==0
ok = ok and isinstance(h['free_page_reporting'], bool) and h['disturbed_archs']==0
ok = ok and 0 <= h['disturbed_passes'] <= 6 and h['ref_ns'] > 0 and 0 < h['min_ns'] <= h['median_ns'] <= h['max_ns']
ok = ok and all(0 <= a['disturbed_passes'] <= a['passes'] and a['disturbed'] in (True, False) for a in d['arch_list'])
sys.exit(0 if ok else 1)"
python3 -c "
import json; d=json.load(open('$T/cpu.json')); d['host_memory_ns']=0.001; json.dump(d, open('$T/cpu-fast.json','w'))"
check "validate-latency against a profile whose host reference no check can meet" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --passes 1 --max-passes 1 --hw "$T/cpu-fast.json" --json
check "  ... every pass reported disturbed, nothing kept apart without the gate" py "
import json,sys; d=json.load(open('$T/out')); h=d['host']; A=d['arch_list']
ok = h['ref_ns']==0.001 and h['disturbed_passes']==1 and h['disturbed_archs']==0 and h['disturbed_checks']==h['checks']==4
ok = ok and all(a['passes']==1 and a['disturbed_passes']==1 and a['disturbed'] is False for a in A)
sys.exit(0 if ok else 1)"
check "validate-latency --host-gate --max-wait 0 against it" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --passes 1 --max-passes 2 --hw "$T/cpu-fast.json" --host-gate --max-wait 0 --json
check "  ... every pass disturbed: more passes (a disturbed one settles nothing), archs flagged, figures still given" py "
import json,sys; d=json.load(open('$T/out')); h=d['host']; A=d['arch_list']
ok = h['gate'] is True and h['disturbed_passes']==2 and h['disturbed_archs']==2 and h['disturbed_checks']==h['checks']==8
ok = ok and all(a['passes']==2 and a['disturbed_passes']==2 and a['disturbed'] is True and a['measured_ms'] > 0 for a in A)
sys.exit(0 if ok else 1)"
check "validate-latency --max-wait without --host-gate is a usage error" expect_rc 2 "$PINAS" validate-latency "$T/tiny.json" --hw "$T/cpu.json" --max-wait 5
check "validate-latency --host-tol 0: no gate, no check" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --passes 1 --max-passes 1 --hw "$T/cpu-fast.json" --host-tol 0 --json
check "  ... nothing checked or flagged" py "
import json,sys; d=json.load(open('$T/out')); h=d['host']
sys.exit(0 if h['checks']==0 and h['disturbed_passes']==0 and not any(a['disturbed'] for a in d['arch_list']) else 1)"
check "validate-latency --host-tol 101 is a usage error" expect_rc 2 "$PINAS" validate-latency "$T/tiny.json" --hw "$T/cpu.json" --host-tol 101
check "calibrate --max-wait -1 is a usage error" expect_rc 2 "$PINAS" calibrate --max-wait -1 --out "$T/never.json"
check "validate-latency --passes 1 --max-passes 1: one pass each, nothing resolved beyond it" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --passes 1 --max-passes 1 --hw "$T/cpu.json" --json
check "  ... every arch measured once, unsettled not counted" py "
import json,sys; d=json.load(open('$T/out'))
sys.exit(0 if all(a['passes']==1 for a in d['arch_list']) and d['unsettled_archs']==0 else 1)"
check "validate-latency --passes 0 is a usage error" expect_rc 2 "$PINAS" validate-latency "$T/tiny.json" --hw "$T/cpu.json" --passes 0
check "validate-latency --agree 0 is a usage error" expect_rc 2 "$PINAS" validate-latency "$T/tiny.json" --hw "$T/cpu.json" --agree 0
check "calibrate --space measures the space's own shapes" expect_rc 0 "$PINAS" --quiet calibrate --scale 0.1 --runs 1 --max-batch 2 --space "$T/tiny.json" --out "$T/cpu-sp.json" --json
check "  ... every candidate of every slot, both batches: shapes in the profile, named space" py "
import json,sys; d=json.load(open('$T/cpu-sp.json')); r=json.load(open('$T/out'))
sh=d['shapes']; cls={e[0] for e in sh}
ok = len(d['spaces'])==1 and len(sh)==r['shapes'] and r['space_archs']==8 and r['space_seconds']>0
ok = ok and {'conv2d','relu','poly','patch_relu','maxpool','avgpool','add'} <= cls and all(e[3]>0 and e[4]>=1 for e in sh)
sys.exit(0 if ok else 1)"
check "validate-latency with the shapes: every node priced by a measured shape" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 3 --runs 1 --batch 2 --hw "$T/cpu-sp.json" --json
check "  ... shape_nodes == nodes for every class" py "
import json,sys; d=json.load(open('$T/out'))
sys.exit(0 if d['fit_only'] is False and all(o['shape_nodes']==o['nodes']>0 for o in d['per_op']) else 1)"
check "validate-latency --fit-only drops them" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 3 --runs 1 --hw "$T/cpu-sp.json" --fit-only --json
check "  ... no node priced by a shape" py "
import json,sys; d=json.load(open('$T/out'))
sys.exit(0 if d['fit_only'] is True and all(o['shape_nodes']==0 for o in d['per_op']) else 1)"
check "calibrate --space with a missing file fails naming it" expect_rc 1 "$PINAS" calibrate --scale 0.1 --runs 1 --space "$T/nope.json" --out "$T/never.json"
check "  ... naming the file, writing nothing" bash -c "grep -q nope.json '$T/err' && [ ! -e '$T/never.json' ]"
check "validate-latency --calibrate fits a profile first and judges the stored one beside it" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 3 --runs 1 --hw "$T/cpu.json" --calibrate --calib-scale 0.1 --save-profile "$T/fitted.json" --json
check "  ... judges the fit, reports the stored profile on the same runs, saves the fit" py "
import json,sys; d=json.load(open('$T/out')); st=d['stored']
ok = d['calibrated'] is True and d['hw'].startswith('cpu (fitted') and st['hw']=='cpu'
ok = ok and all(k in st for k in ('mape_pct','max_pct','tau')) and d['calibration']['nets']==13
ok = ok and all(a['predicted_stored_ms']>0 for a in d['arch_list'])
f=json.load(open('$T/fitted.json')); ok = ok and f['format']=='pinas-profile/1' and f['primitives']==d['calibration']['profile']['primitives']
sys.exit(0 if ok else 1)"
check "validate-latency --save-profile without a calibration is a usage error" expect_rc 2 "$PINAS" validate-latency "$T/tiny.json" --hw "$T/cpu.json" --save-profile "$T/x.json"
check "  ... naming the fix" has "--calibrate" "$T/err"
check "validate-latency --help documents what is measured how" bash -c "'$PINAS' validate-latency --help | grep -q -- 'thread CPU time'"
printf '{"format": "pinas-profile/1", "kind": "cpu", "name": "cpu", "primitives": {"relu": {"a": 1e-5, "b": 2e-7}}, "offline": {"aes_blocks_per_s": 1e8, "ring_macs_per_s": 1e9}}' > "$T/old-cpu.json"
check "an old whole-phase cpu profile is refused" expect_rc 1 "$PINAS" predict "$T/r18relu.json" --hw "$T/old-cpu.json"
check "  ... naming the command" has "pinas calibrate" "$T/err"
# One sampler: validate-latency's architecture k under --seed S is pinas_net_random_arch(S * 1000003 + k),
# which is what `pinas model random --arch random --seed S*1000003+k` writes.
check "validate-latency --seed 0 (2 archs, 1 run each)" expect_rc 0 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --hw tests/golden/profile-cpu.json --seed 0 --json
cp "$T/out" "$T/val0.json"
for k in 0 1; do
  check "model random --arch random --seed $k" expect_rc 0 "$PINAS" --quiet model random "$T/tiny.json" --arch random --seed $k --out "$T/rand$k"
done
check "  ... the same architectures as validate-latency sampled" py "
import json,sys; d=json.load(open('$T/val0.json'))
def choices(p): return [x['choice'] for x in json.load(open(p))['nodes'] if x['op'] in ('act','pool') and len(x['candidates'])>1]
sys.exit(0 if all(choices('$T/rand%d/net.json'%k)==d['arch_list'][k]['choices'] for k in range(2)) else 1)"
check "validate-latency --max-mape 0 fails" expect_rc 1 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --hw "$T/cpu.json" --max-mape 0
check "validate-latency --max-op-mape 0 fails naming a class" expect_rc 1 "$PINAS" --quiet validate-latency "$T/tiny.json" --archs 2 --runs 1 --hw "$T/cpu.json" --max-op-mape 0
check "  ... in the message" has "per-node MAPE" "$T/err"

e2e_done e2e_latency_model_cli
