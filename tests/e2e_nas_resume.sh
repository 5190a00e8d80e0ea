#!/usr/bin/env bash
# `pinas search --resume` after a SIGKILL ends with the same candidates, bit for bit, as an uninterrupted run with the same seed.
source "$(dirname "$0")/lib_e2e.sh"
same() { cmp -s "$1" "$2" || { echo "  $1 and $2 differ"; return 1; }; }

# Tiny settings on the synthetic space: 2 sweep values x 3 search epochs, 1 fine-tuning epoch, augmentation
# on (the loaders' per-epoch order and crops must be reproduced too), Gumbel noise on (the net's generator
# state must be restored too), one thread (so libtorch's reductions run in one order).
SETS=(--set threads=1 --set seed=5 --set data.synthetic_train=240 --set data.synthetic_test=60 --set data.augment=true
      --set train.batch_size=40 --set search.warmup_epochs=1 --set search.epochs=3 --set 'search.lambdas=[0,0.5]'
      --set search.gumbel=true --set search.baselines=false --set finetune.epochs=1 --set 'latency.hw=["pasnet"]'
      --set 'latency.net=["lan"]')

"$PINAS" --quiet search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/a" >"$T/a.out" 2>"$T/a.err"
check "uninterrupted run succeeds" test $? -eq 0
check "uninterrupted run has both candidates" test -f "$T/a/synthetic/candidates/1/metrics.json"

# Killed (SIGKILL, as by the OOM killer or a power cut) right after the 2nd search epoch of candidate 0,
# and in a second run after the 1st search epoch of candidate 1 (candidate 0 finished by then).
for kill_after in 2 4; do
  d="$T/k$kill_after"
  PINAS_SEARCH_KILL_AFTER=$kill_after "$PINAS" --quiet search configs/synthetic.json "${SETS[@]}" --set out_dir="$d" >"$d.out" 2>"$d.err"
  rc=$?
  check "run killed after search epoch $kill_after (rc $rc)" test "$rc" -eq 137
  check "killed run left no candidate 1" test ! -e "$d/synthetic/candidates/1/metrics.json"
  check "killed run left a checkpoint" test -n "$(ls "$d/synthetic/checkpoint/" 2>/dev/null)"
  if [ "$kill_after" = 4 ]; then
    check "candidate 0 finished before the second kill" test -f "$d/synthetic/candidates/0/metrics.json"
  fi
  "$PINAS" search --resume "$d/synthetic" >"$d.resume.out" 2>"$d.resume.err"
  rc=$?
  check "resume after kill $kill_after succeeds" test "$rc" -eq 0
  [ "$rc" -eq 0 ] || cat "$d.resume.err"
  for k in 0 1; do
    for f in weights.safetensors net.json metrics.json; do
      check "kill $kill_after: candidates/$k/$f equals the uninterrupted run's" same "$T/a/synthetic/candidates/$k/$f" "$d/synthetic/candidates/$k/$f"
    done
  done
  check "kill $kill_after: pareto.csv equal" same "$T/a/synthetic/pareto.csv" "$d/synthetic/pareto.csv"
  # It continued from the checkpoint rather than starting over (a restart would also end equal: same seed).
  if [ "$kill_after" = 2 ]; then
    check "kill 2: resumed search-0 after epoch 2" grep -q "search-0: resuming after epoch 2 of 3" "$d.resume.err"
  else
    check "kill 4: candidate 0 not redone" grep -q "candidate 0 (lambda=0) already finished" "$d.resume.err"
    check "kill 4: resumed search-1 after epoch 1" grep -q "search-1: resuming after epoch 1 of 3" "$d.resume.err"
  fi
  # The resumed log continues: every search epoch of both candidates appears.
  for k in 0 1; do
    n=$(grep -c "\"phase\":\"search-$k\"" "$d/synthetic/log.jsonl")
    check "kill $kill_after: log.jsonl has the 3 epochs of search-$k (got $n)" test "$n" -eq 3
  done
done

# --resume refuses a config or --set (the run's own config is used), and a dir that is not a run.
"$PINAS" search --resume "$T/a/synthetic" --set seed=1 >/dev/null 2>"$T/err"
check "--resume with --set is a usage error" test $? -eq 2
"$PINAS" search --resume "$T" >/dev/null 2>"$T/err"
check "--resume of a non-run dir fails" test $? -eq 1
check "... saying so" grep -q "not a search run dir" "$T/err"
# Starting a new search over an existing run dir is refused (no silent overwrite).
"$PINAS" --quiet search configs/synthetic.json "${SETS[@]}" --set out_dir="$T/a" >/dev/null 2>"$T/err"
check "a second search into the same run dir is refused" test $? -eq 1
check "... pointing at --resume" grep -q -- "--resume" "$T/err"

e2e_done e2e_nas_resume
