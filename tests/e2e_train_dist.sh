#!/usr/bin/env bash
# End-to-end: data-parallel search over c10d Gloo on loopback. 2 ranks with global batch B against 1
# process with batch B (same seed): equal weights and alphas (1e-5) and the same derived architecture;
# a rank killed (SIGKILL) or stalled (SIGSTOP) makes the survivor fail within the timeout naming it;
# --sweep-index runs one sweep value into <name>-sweep<I> and pinas pareto merges the sweep runs.
source "$(dirname "$0")/lib_e2e.sh"

# A tiny space without batch norm: with DDP's per-rank BN statistics, 2 x (B/2) differs from 1 x B by
# design, so the equivalence is checked where no BN is involved (see docs/scaling.md).
cat >"$T/space.json" <<'JSON'
{"format": "pinas-net/1", "name": "tiny-nobn", "input": [3, 16, 16], "num_classes": 10, "nodes": [
 {"id": "c1", "op": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1},
 {"id": "a1", "op": "act", "candidates": ["relu", "poly", "patch_relu:2x2"]},
 {"id": "p1", "op": "pool", "kernel": 2, "stride": 2, "candidates": ["maxpool", "avgpool"]},
 {"id": "c2", "op": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1},
 {"id": "a2", "op": "act", "candidates": ["relu", "poly", "patch_relu:2x2"]},
 {"id": "gap", "op": "global_avgpool"},
 {"id": "fc", "op": "linear", "out_features": 10}]}
JSON
SETS=(--set threads=1 --set seed=5 --set space="$T/space.json" --set data.synthetic_train=240 --set data.synthetic_test=40
      --set train.batch_size=24 --set search.warmup_epochs=1 --set search.epochs=2 --set search.arch_lr=0.05
      --set 'search.lambdas=[0.5]' --set finetune.epochs=0 --set search.baselines=false --set search.naive_first_k=false
      --set search.naive_random=0 --set name=eq)

# ---- equivalence: 1 x B against 2 x B/2
"$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/one" >"$T/one.out" 2>"$T/one.err"
check "1-process search exits 0" test $? -eq 0 || tail -5 "$T/one.err"
t0=$(date +%s)
"$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/two" --nproc 2 --dist-timeout 30 >"$T/two.out" 2>"$T/two.err"
check "2-rank search (--nproc 2) exits 0" test $? -eq 0 || tail -5 "$T/two.err"
echo "     2-rank search: $(( $(date +%s) - t0 )) s"
check "rank 0 says it is rank 0 of 2" has "rank 0 of 2 (gloo rendezvous at 127.0.0.1" "$T/two.err"
check "config.json records the world size" py "import json; assert json.load(open('$T/two/eq/config.json'))['dist']['world_size'] == 2"
cmpst() { # cmpst A B: every F32 tensor of two safetensors files equal within 1e-5; prints the largest difference
python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: struct.unpack('<%df' % ((v['data_offsets'][1] - v['data_offsets'][0]) // 4), d[v['data_offsets'][0]:v['data_offsets'][1]])
            for k, v in h.items() if k != '__metadata__' and v['dtype'] == 'F32'}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), 'different tensors'
nw = sum(1 for k in a if 'alpha' not in k); na = len(a) - nw
worst = max((abs(x - y), k) for k in a for x, y in zip(a[k], b[k]))
print('     %d tensors (%d alpha), largest difference %.3g in %s' % (len(a), na, worst[0], worst[1]))
sys.exit(0 if worst[0] <= 1e-5 and nw > 0 and (na > 0 or 'model' in sys.argv[1]) else 1)
PY
}
check "warm-up weights equal within 1e-5" cmpst "$T/one/eq/checkpoint/warmup-final.safetensors" "$T/two/eq/checkpoint/warmup-final.safetensors"
check "searched weights and alphas equal within 1e-5" cmpst "$T/one/eq/checkpoint/search-0.safetensors" "$T/two/eq/checkpoint/search-0.safetensors"
check "derived architectures identical" cmp "$T/one/eq/candidates/0/net.json" "$T/two/eq/candidates/0/net.json"
check "only rank 0 wrote (no rank-1 files in the run dir)" test -z "$(ls "$T/two/eq" | grep -i rank)"
check "the search log has one line per epoch (not one per rank)" \
  test "$(grep -c '"phase":"search-0"' "$T/two/eq/log.jsonl")" -eq "$(grep -c '"phase":"search-0"' "$T/one/eq/log.jsonl")"

# ---- pinas train: the derived (decided) architecture, 1 x B against 2 x B/2
TS=(--set threads=1 --set seed=5 --set data.synthetic_train=240 --set data.synthetic_test=40 --set train.batch_size=24 --set train.epochs=1
    --set name=tr --arch "$T/one/eq/candidates/0/net.json")
"$PINAS" train configs/synthetic.json "${TS[@]}" --set out_dir="$T/tone" >"$T/tone.out" 2>"$T/tone.err"
check "1-process train exits 0" test $? -eq 0 || tail -3 "$T/tone.err"
"$PINAS" train configs/synthetic.json "${TS[@]}" --set out_dir="$T/ttwo" --nproc 2 --dist-timeout 30 >"$T/ttwo.out" 2>"$T/ttwo.err"
check "2-rank train (--nproc 2) exits 0" test $? -eq 0 || tail -3 "$T/ttwo.err"
check "trained weights equal within 1e-5" cmpst "$T/tone/tr/model/weights.safetensors" "$T/ttwo/tr/model/weights.safetensors"
check "rank 0 alone prints the result" test "$(grep -c '^trained' "$T/ttwo.out")" -eq 1

# ---- a rank that dies: SIGKILL rank 1 of a --nproc 2 run mid-search; rank 0 names it, so does the launcher
BIG=(--set search.epochs=200 --dist-timeout 4)
wait_log() { for _ in $(seq 300); do grep -q '"phase":"search-0"' "$1" 2>/dev/null && return; sleep 0.1; done; }
wait_exit() { # wait_exit PID LIMIT_S: RC = the pid's exit status, or 124 when it was still running after LIMIT_S
  local t=0; while kill -0 "$1" 2>/dev/null && [ $t -lt $(( $2 * 10 )) ]; do sleep 0.1; t=$((t + 1)); done
  if kill -0 "$1" 2>/dev/null; then kill -9 "$1"; wait "$1" 2>/dev/null; RC=124; return; fi
  wait "$1"; RC=$?
}
rank_pid() { # rank_pid PARENT RANK: the child of PARENT launched with RANK=<rank>
  for c in $(pgrep -P "$1"); do tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "RANK=$2" && { echo "$c"; return; }; done
}
"$PINAS" search configs/synthetic.json "${SETS[@]}" "${BIG[@]}" --set out_dir="$T/kill" --nproc 2 >"$T/kill.out" 2>"$T/kill.err" &
L=$!
wait_log "$T/kill/eq/log.jsonl"
R1=$(rank_pid "$L" 1)
check "rank 1 is running the search" test -n "$R1"
t0=$(date +%s)
kill -9 "$R1"
wait_exit "$L" 12
echo "     launcher exited $RC after $(( $(date +%s) - t0 )) s"
grep -E "died|rank 1 of 2" "$T/kill.err" | sed 's/^/     /'
check "the survivor exits non-zero within the timeout (+ diagnosis), so does the launcher" test "$RC" -ne 0 -a "$RC" -ne 124
check "... rank 0 names the dead rank" grep -qE "rank 0: all-reduce of [a-z]+ failed: rank 1 died or froze" "$T/kill.err"
check "... the launcher names it too" grep -q "rank 1 of 2 was killed by signal 9" "$T/kill.err"

# ---- a rank that stalls (SIGSTOP), ranks launched torchrun-style: the survivor fails at the timeout, naming it
p=$(port)
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$p "$PINAS" search configs/synthetic.json "${SETS[@]}" "${BIG[@]}" \
    --set out_dir="$T/stop" >"$T/stop.r$r.out" 2>"$T/stop.r$r.err" &
  eval "R$r=\$!"
done
wait_log "$T/stop/eq/log.jsonl"
t0=$(date +%s)
kill -STOP "$R1"
wait_exit "$R0" 20
kill -9 "$R1" 2>/dev/null; wait "$R1" 2>/dev/null
echo "     rank 0 exited $RC after $(( $(date +%s) - t0 )) s: $(grep -m1 'rank 1' "$T/stop.r0.err")"
check "a stalled rank fails the survivor within the timeout" test "$RC" -ne 0 -a "$RC" -ne 124
check "... naming the stalled rank" grep -q "rank 1 died or froze" "$T/stop.r0.err"

# ---- resume: a 2-rank run stopped after its first search epoch, resumed by 1 process, says so
PINAS_SEARCH_KILL_AFTER=1 "$PINAS" search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/res" --nproc 2 --dist-timeout 5 \
  >"$T/res.out" 2>"$T/res.err"
check "the killed 2-rank run fails" test $? -ne 0
"$PINAS" search --resume "$T/res/eq" >"$T/res2.out" 2>"$T/res2.err"
check "a 1-process resume of a 2-rank run finishes" test $? -eq 0 || tail -3 "$T/res2.err"
check "... saying the process count differs" has "was started with 2 processes and resumes with 1" "$T/res2.err"
check "... resuming the search where it stopped" has "search-0: resuming after epoch 1 of 2" "$T/res2.err"

# ---- sweeps across machines: one sweep value per run dir, merged by pinas pareto
t0=$(date +%s)
SW=("${SETS[@]}" --set 'search.lambdas=[0,2]' --set search.epochs=1 --set search.warmup_epochs=0 --set name=sw --set out_dir="$T/sw")
"$PINAS" search configs/synthetic.json "${SW[@]}" --sweep-index 0 >"$T/s0.out" 2>"$T/s0.err"
check "--sweep-index 0 exits 0" test $? -eq 0 || tail -3 "$T/s0.err"
"$PINAS" search configs/synthetic.json "${SW[@]}" --sweep-index 1 >"$T/s1.out" 2>"$T/s1.err"
check "--sweep-index 1 exits 0" test $? -eq 0 || tail -3 "$T/s1.err"
check "sweep 1 has its own run dir with its one value" \
  py "import json; c = json.load(open('$T/sw/sw-sweep1/config.json')); assert c['search']['lambdas'] == [2] and c['name'] == 'sw-sweep1'"
expect_rc 1 "$PINAS" search configs/synthetic.json "${SW[@]}" --sweep-index 2
check "--sweep-index out of range is an error naming the range" has "the index runs from 0 to 1" "$T/err"
"$PINAS" pareto "$T/sw/sw-sweep0" "$T/sw/sw-sweep1" --out "$T/merged" >"$T/p.out" 2>"$T/p.err"
check "pinas pareto merges the sweep runs" test $? -eq 0
check "... with both candidates" py "import json; j = json.load(open('$T/merged/pareto.json')); s = json.dumps(j); assert 'sw-sweep0' in s and 'sw-sweep1' in s"

echo "     sweeps + pareto: $(( $(date +%s) - t0 )) s"
e2e_done e2e_train_dist
