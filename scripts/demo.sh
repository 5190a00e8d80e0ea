#!/usr/bin/env bash
# `make demo`: the main job on the built-in quickstart, with whatever pipeline stages this build has.
set -euo pipefail
PINAS=${1:-build/pinas}
RUN=results/demo
mkdir -p "$RUN"
has() { "$PINAS" --help | grep -q "^  $1 "; }
SPACE=search_spaces/spaces/quickstart.json
echo "== 1. the quickstart search space ($SPACE)"
"$PINAS" space show "$SPACE"
echo
echo "== 2. a random all-ReLU model of it -> $RUN/model"
"$PINAS" model random "$SPACE" --arch all-relu --seed 1 --out "$RUN/model"
if has predict; then
  echo; echo "== 3. predicted 2PC latency (cpu, lan)"
  "$PINAS" predict "$RUN/model" --hw cpu --net lan
fi
if has infer; then
  echo; echo "== 4. private inference of 8 random inputs (dealer + two processes over loopback TCP)"
  "$PINAS" infer "$RUN/model" --random 8
fi
echo
echo "demo: done (stages this build has: space, model$(has predict && echo ', predict')$(has infer && echo ', infer'))."
