#!/usr/bin/env bash
# End-to-end: `pinas predict` and `pinas search` warn, once, when the cpu profile was fitted on another
# CPU model (its calibration.cpu_model against this machine's), and stay quiet when it was fitted here,
# when it records no CPU model, and for a profile that is not a cpu profile.
source "$(dirname "$0")/lib_e2e.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# A copy of the shipped profiles whose cpu.json says it was fitted on CPU model $1 ("" : no cpu_model).
profiles() {
  rm -rf "$T/profiles" && cp -r "$ROOT/latency_model/profiles" "$T/profiles" &&
    python3 - "$T/profiles/cpu.json" "$1" <<'PY'
import json, sys
p, model = sys.argv[1], sys.argv[2]
d = json.load(open(p))
cal = d.setdefault("calibration", {})
if model:
    cal["cpu_model"] = model
else:
    cal.pop("cpu_model", None)
json.dump(d, open(p, "w"), indent=1)
PY
}
warnings() { grep -c "was fitted on" "$1"; }

echo '{"format": "pinas-net/1", "backbone": "resnet", "depth": 8, "width": 4, "input": [3, 8, 8], "act": ["relu"], "pool": ["maxpool"]}' > "$T/net.json"
profiles "Imaginary CPU 9999 @ 1 Hz"
check "predict with a profile fitted on another CPU" expect_rc 0 env PINAS_PROFILE_DIR="$T/profiles" "$PINAS" predict "$T/net.json" --hw cpu --net lan --json
n=$(warnings "$T/err")
check "  ... warns once (got $n)" test "$n" -eq 1
check "  ... naming the profile's CPU model" has 'hardware profile cpu was fitted on "Imaginary CPU 9999 @ 1 Hz"' "$T/err"
check "  ... and asking for a calibration here" has 'run `pinas calibrate` here' "$T/err"
check "  ... and still predicts" py "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if d['total']['online_ms'] > 0 else 1)"
here=$(sed -n 's/.*this machine is "\(.*\)": its latency.*/\1/p' "$T/err" | head -1)
check "  ... naming this machine's CPU model (\"$here\")" test -n "$here"

profiles "$here"
check "predict with a profile fitted on this CPU model" expect_rc 0 env PINAS_PROFILE_DIR="$T/profiles" "$PINAS" predict "$T/net.json" --hw cpu --net lan
check "  ... does not warn" test "$(warnings "$T/err")" -eq 0
profiles ""
check "predict with a profile that records no CPU model" expect_rc 0 env PINAS_PROFILE_DIR="$T/profiles" "$PINAS" predict "$T/net.json" --hw cpu --net lan
check "  ... does not warn" test "$(warnings "$T/err")" -eq 0
profiles "Imaginary CPU 9999 @ 1 Hz"
check "predict under an fpga profile" expect_rc 0 env PINAS_PROFILE_DIR="$T/profiles" "$PINAS" predict "$T/net.json" --hw fpga-zcu104 --net lan
check "  ... does not warn" test "$(warnings "$T/err")" -eq 0
check "predict with the profile given by path" expect_rc 0 "$PINAS" predict "$T/net.json" --hw "$T/profiles/cpu.json" --net lan
check "  ... warns once" test "$(warnings "$T/err")" -eq 1

# The search: the warning when it builds its latency table, once, whatever else prices under cpu.
SETS=(--set name=w --set threads=1 --set seed=1 --set data.synthetic_train=40 --set data.synthetic_test=20 --set data.synthetic_size=16
      --set train.batch_size=20 --set search.warmup_epochs=0 --set search.epochs=1 --set 'search.lambdas=[0]' --set search.hw=cpu
      --set finetune.epochs=0 --set search.baselines=false --set 'latency.hw=["cpu"]' --set 'latency.net=["lan"]')
check "search with a profile fitted on another CPU" expect_rc 0 env PINAS_PROFILE_DIR="$T/profiles" "$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/s1"
n=$(warnings "$T/err")
check "  ... warns once (got $n)" test "$n" -eq 1
check "  ... naming the profile's CPU model" has 'fitted on "Imaginary CPU 9999 @ 1 Hz"' "$T/err"
profiles "$here"
check "search with a profile fitted on this CPU model" expect_rc 0 env PINAS_PROFILE_DIR="$T/profiles" "$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/s2"
check "  ... does not warn" test "$(warnings "$T/err")" -eq 0
e2e_done e2e_latency_model_machine
