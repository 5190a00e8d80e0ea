#!/usr/bin/env bash
# End-to-end checks of the pinas CLI foundation: help, version, space show, config show, model random, errors.
source "$(dirname "$0")/lib_e2e.sh"

check "--help lists space and config" bash -c "'$PINAS' --help | grep -q 'space ' && '$PINAS' --help | grep -q 'config '"
check "--version names the git revision" bash -c "'$PINAS' --version | grep -Eq '^pinas [0-9.]+ \(git [0-9a-f]+|unknown\)'"
check "every listed command has --help" bash -c "for c in \$('$PINAS' --help | awk '/^commands:/{f=1;next} f&&NF{print \$1} /^\$/{if(f)exit}'); do '$PINAS' \$c --help >/dev/null || { echo \"  \$c --help failed\"; exit 1; }; done"
check "unknown command exits 2 with a suggestion" expect_rc 2 "$PINAS" spaec
check "  ... suggestion text" has 'did you mean "space"' "$T/err"

cat > "$T/r18.json" <<'J'
{"format": "pinas-net/1", "backbone": "resnet", "depth": 18, "act": ["relu", "poly"]}
J
check "space show --json" expect_rc 0 "$PINAS" space show "$T/r18.json" --json
check "  ... relu_count 557056" python3 -c "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if d['relu_count']==557056 and abs(d['macs']/0.56e9-1)<0.01 and len(d['nodes'])==67 else 1)"
check "space show table totals" bash -c "'$PINAS' space show '$T/r18.json' | tail -1 | grep -q 'ReLUs 557056'"
echo '{"format": "pinas-net/1", "backbone": "resnet", "depth": 18, "act": ["relu", "sigmoid"]}' > "$T/bad.json"
check "bad space exits 1 naming the file" expect_rc 1 "$PINAS" space show "$T/bad.json"
check "  ... message" has "bad.json: act[1]: unknown candidate \"sigmoid\"" "$T/err"

echo '{"train": {"epochs": "ten"}}' > "$T/x.json"
check "config show with a bad field exits 1" expect_rc 1 "$PINAS" config show "$T/x.json"
check "  ... message names file and field" has "x.json: train.epochs: expected a positive integer, got \"ten\"" "$T/err"
echo '{"train": {"epochs": 3}}' > "$T/ok.json"
check "config show --set" expect_rc 0 "$PINAS" config show "$T/ok.json" --set train.lr=0.3 --set data.dataset=cifar100
check "  ... effective values" python3 -c "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if d['train']['epochs']==3 and d['train']['lr']==0.3 and d['data']['dataset']=='cifar100' and d['train']['batch_size']==64 else 1)"
check "config show unknown key suggests" expect_rc 1 "$PINAS" config show "$T/ok.json" --set train.lrr=1
check "  ... suggestion" has 'did you mean "train.lr"' "$T/err"
check "config show missing file" expect_rc 1 "$PINAS" config show "$T/nope.json"
check "config schema lists fields" bash -c "'$PINAS' config schema | grep -q 'train.epochs'"

check "model random all-poly" expect_rc 0 "$PINAS" model random tests/golden/tiny_space.json --arch all-poly --seed 3 --out "$T/m"
check "  ... writes the three files" test -s "$T/m/net.json" -a -s "$T/m/weights.safetensors" -a -s "$T/m/meta.json"
check "  ... every slot decided" python3 -c "import json,sys; d=json.load(open('$T/m/net.json')); sys.exit(0 if all('choice' in n for n in d['nodes'] if n['op'] in ('act','pool') and len(n['candidates'])>1) else 1)"
check "model random --arch random" expect_rc 0 "$PINAS" model random tests/golden/tiny_space.json --arch random --seed 5 --out "$T/r1"
check "model random --arch random, same seed again" expect_rc 0 "$PINAS" model random tests/golden/tiny_space.json --arch random --seed 5 --out "$T/r2"
check "  ... the same architecture and weights, source \"random\"" py "
import json,sys; a=open('$T/r1/net.json').read(); b=open('$T/r2/net.json').read(); m=json.load(open('$T/r1/meta.json'))
sys.exit(0 if a==b and open('$T/r1/weights.safetensors','rb').read()==open('$T/r2/weights.safetensors','rb').read() and m['source']=='random' else 1)"
check "model random bad --arch exits 2" expect_rc 2 "$PINAS" model random tests/golden/tiny_space.json --arch most --out "$T/m2"
check "  ... nothing written" test ! -e "$T/m2"

echo
e2e_done e2e_cli
