#!/usr/bin/env bash
# Data-parallel search benchmark (issue 15): ResNet-20 supernet bi-level search steps per second with
# 2 local ranks x 1 thread (pinas search --nproc 2, Gloo over loopback) against 1 process x 1 thread at
# the same global batch, and the all-reduce share of rank 0's step time (the shim times every
# collective; it includes waiting for the slower rank). JSON on stdout; medians over the epochs.
# Run it on a quiet machine: the figure means nothing while other jobs share the cores.
#   scripts/bench-dist.sh [PINAS]      env: PINAS_BENCH_DIST_BATCH (64), _IMAGES (1280 per split), _EPOCHS (3)
set -euo pipefail
PINAS=${1:-build/pinas}
B=${PINAS_BENCH_DIST_BATCH:-64}
N=${PINAS_BENCH_DIST_IMAGES:-1280}
E=${PINAS_BENCH_DIST_EPOCHS:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
SETS=(--set threads=1 --set seed=1 --set space=search_spaces/spaces/fmnist-resnet20.json --set data.dataset=synthetic
      --set data.synthetic_size=28 --set data.channels=1 --set data.synthetic_train=$((2 * N)) --set data.synthetic_test=20
      --set data.val_fraction=0.5 --set data.augment=false --set train.batch_size="$B" --set search.warmup_epochs=0
      --set search.epochs="$E" --set 'search.lambdas=[0.1]' --set finetune.epochs=0 --set search.baselines=false
      --set search.naive_first_k=false --set search.naive_random=0 --set name=bench)
run() { # run DIR [ARGS...]: one search into DIR; its epoch lines are in DIR/bench/log.jsonl
  local d=$1; shift
  "$PINAS" -q search configs/synthetic.json "${SETS[@]}" --set out_dir="$d" "$@" >"$d.out" 2>"$d.err" ||
    { echo "bench-dist: pinas search $* failed:" >&2; tail -5 "$d.err" >&2; exit 1; }
}
run "$W/one"
run "$W/two" --nproc 2 --dist-timeout 600
python3 - "$W/one/bench/log.jsonl" "$W/two/bench/log.jsonl" "$B" "$N" "$E" <<'PY'
import json, math, statistics, sys
def epochs(p):
    return [j for j in map(json.loads, open(p)) if j.get('phase') == 'search-0']
one, two = epochs(sys.argv[1]), epochs(sys.argv[2])
B, N, E = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
steps = math.ceil(N / B)
sps1 = statistics.median(steps / j['seconds'] for j in one)
sps2 = statistics.median(steps / j['seconds'] for j in two)
share = statistics.median(j['allreduce_seconds'] / j['seconds'] for j in two)
print(json.dumps({
    'bench': 'dist', 'model': 'ResNet-20 supernet (fmnist-resnet20, 1x28x28, synthetic data)',
    'global_batch': B, 'steps_per_epoch': steps, 'epochs': E, 'threads_per_process': 1,
    'one_process': {'steps_per_s': round(sps1, 3)},
    'two_ranks': {'steps_per_s': round(sps2, 3), 'allreduce_share': round(share, 4), 'backend': 'gloo'},
    'speedup': round(sps2 / sps1, 3), 'target_speedup': 1.6}, indent=1))
PY
