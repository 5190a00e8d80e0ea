#!/usr/bin/env bash
# End-to-end checks of `pinas train` and `pinas bench train`: a model dir from a config, resume, errors, benchmark JSON.
source "$(dirname "$0")/lib_e2e.sh"

# A small open space, its all-ReLU architecture, and a config for a quick synthetic run.
cat > "$T/space.json" <<'J'
{"format": "pinas-net/1", "name": "e2e", "input": [3, 8, 8], "num_classes": 4, "nodes": [
 {"id": "c1", "op": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1}, {"id": "b1", "op": "batchnorm"},
 {"id": "a1", "op": "act", "candidates": ["relu", "poly"]},
 {"id": "p", "op": "pool", "candidates": ["maxpool", "avgpool"], "kernel": 2, "stride": 2},
 {"id": "c2", "op": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1}, {"id": "b2", "op": "batchnorm"},
 {"id": "a2", "op": "act", "candidates": ["relu", "poly"]},
 {"id": "g", "op": "global_avgpool"}, {"id": "fc", "op": "linear", "out_features": 4, "bias": true}]}
J
cat > "$T/cfg.json" <<J
{"name": "e2e", "seed": 3, "threads": 1, "out_dir": "$T/results", "space": "space.json",
 "data": {"dataset": "synthetic", "synthetic_train": 800, "synthetic_test": 200, "synthetic_classes": 4, "synthetic_size": 8},
 "train": {"epochs": 4, "batch_size": 32, "lr": 0.1}}
J

check "train --help" expect_rc 0 "$PINAS" train --help
check "  ... documents --arch and --resume" bash -c "grep -q -- '--arch NET.json' '$T/out' && grep -q -- '--resume' '$T/out'"
check "train without a config exits 2" expect_rc 2 "$PINAS" train
check "train with an unknown option exits 2" expect_rc 2 "$PINAS" train "$T/cfg.json" --epochs 3
check "an open space needs --arch" expect_rc 1 "$PINAS" train "$T/cfg.json"
check "  ... message" has "e2e has 3 open slots; pinas train needs a decided architecture" "$T/err"

check "model random all-relu" expect_rc 0 "$PINAS" model random "$T/space.json" --out "$T/arch" --arch all-relu
check "train --arch --json" expect_rc 0 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --json
check "  ... model dir files" bash -c "for f in net.json weights.safetensors meta.json; do [ -s '$T/results/e2e/model/'\$f ] || exit 1; done"
check "  ... run dir files" bash -c "[ -s '$T/results/e2e/config.json' ] && [ -s '$T/results/e2e/checkpoint/train.safetensors' ] && [ \$(wc -l < '$T/results/e2e/log.jsonl') -eq 4 ]"
check "  ... accuracy above chance, meta has normalisation and the config" python3 - "$T" <<'P'
import json, sys
t = sys.argv[1]
out = json.load(open(t + "/out"))
m = json.load(open(t + "/results/e2e/model/meta.json"))
log = [json.loads(l) for l in open(t + "/results/e2e/log.jsonl")]
ok = (out["accuracy"] == m["accuracy"] > 0.5 and len(m["normalize"]["mean"]) == 3 and m["config"]["train"]["epochs"] == 4
      and m["train"]["epochs"] == 4 and log[-1]["epoch"] == 4 and log[-1]["eval_acc"] == m["accuracy"]
      and json.load(open(t + "/results/e2e/config.json"))["git_rev"])
sys.exit(0 if ok else 1)
P
check "  ... the model runs in the plaintext reference (pinas space show reads net.json)" expect_rc 0 "$PINAS" space show "$T/results/e2e/model/net.json"
cp "$T/results/e2e/model/weights.safetensors" "$T/w1"
check "--resume of a finished run trains nothing" expect_rc 0 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --resume --out "$T/m2"
check "  ... same weights, no new log line" bash -c "cmp -s '$T/w1' '$T/m2/weights.safetensors' && [ \$(wc -l < '$T/results/e2e/log.jsonl') -eq 4 ]"
check "--resume with more epochs continues" expect_rc 0 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --resume --set train.epochs=5 --out "$T/m3"
check "  ... one more log line" bash -c "[ \$(wc -l < '$T/results/e2e/log.jsonl') -eq 5 ] && tail -1 '$T/results/e2e/log.jsonl' | grep -q '\"epoch\":5'"
check "missing CIFAR files name the file" expect_rc 1 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --set data.dataset=cifar10 --set "data.path=$T/nocifar"
check "  ... message" has "nocifar/data_batch_1.bin: cannot open" "$T/err"
check "a bad config field names it" expect_rc 1 "$PINAS" train "$T/cfg.json" --set train.lr=-1
check "  ... message" has "train.lr" "$T/err"
check "cuda without a GPU is a clear error" bash -c "'$PINAS' train '$T/cfg.json' --arch '$T/arch/net.json' --set device=cuda >/dev/null 2>'$T/err'; rc=\$?; [ \$rc -eq 0 ] || grep -q 'no CUDA support or no GPU' '$T/err'"

check "bench train --help" expect_rc 0 "$PINAS" bench train --help
check "bench train --json" expect_rc 0 "$PINAS" bench train --space "$T/space.json" --batch 8 --steps 3 --warmup 1 --json
check "  ... medians for the supernet and the decided net" python3 - "$T" <<'P'
import json, sys
d = json.load(open(sys.argv[1] + "/out"))
ok = d["batch"] == 8 and d["supernet"]["median_ms"] > 0 and d["decided"]["median_ms"] > 0 and d["supernet"]["open_slots"] == 3 and d["decided"]["open_slots"] == 0
sys.exit(0 if ok else 1)
P

e2e_done e2e_train_cli
