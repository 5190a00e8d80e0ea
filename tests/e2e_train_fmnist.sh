#!/usr/bin/env bash
# End-to-end on real data: a small ResNet trained by `pinas train` on a Fashion-MNIST slice (Debian's
# dataset-fashion-mnist, installed by scripts/install-deps.sh) reaches >= 80 % test accuracy.
source "$(dirname "$0")/lib_e2e.sh" "$@"

DIR=/usr/share/datasets/fashion-mnist
check "dataset-fashion-mnist is installed ($DIR)" test -r "$DIR/train-images-idx3-ubyte.gz"
"$PINAS" model random search_spaces/spaces/fmnist-resnet8.json --arch all-relu --out "$T/arch" >/dev/null 2>"$T/err"
check "all-ReLU ResNet-8 architecture written" test -f "$T/arch/net.json"
cat >"$T/cfg.json" <<JSON
{"format": "pinas-config/1", "name": "fm", "seed": 1, "threads": 2, "out_dir": "$T/runs",
 "data": {"dataset": "fashion-mnist", "train_images": 3000, "test_images": 1000, "augment": false},
 "train": {"epochs": 4, "batch_size": 50, "lr": 0.05}}
JSON
check "pinas train on 3,000 Fashion-MNIST images exits 0" expect_rc 0 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --json
cp "$T/out" "$T/train.json"
check "test accuracy >= 80 % on 1,000 test images" py "
import json; r = json.load(open('$T/train.json')); a = r['accuracy']
print('  test accuracy %.2f %%' % (100 * a)); assert a >= 0.80, a"
check "meta.json records the dataset's normalisation (1 channel)" py "
import json; m = json.load(open('$T/runs/fm/model/meta.json')); n = m['normalize']
assert len(n['mean']) == 1 and abs(n['mean'][0] - 0.286) < 0.02, n"

# Data errors name the file or field and exit 1.
mkdir -p "$T/bad"
check "missing IDX files: error names the file" expect_rc 1 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --set data.path="$T/bad"
check "  ... train-images-idx3-ubyte" has "train-images-idx3-ubyte" "$T/err"
head -c 5000 "$DIR/t10k-images-idx3-ubyte.gz" >"$T/bad/t10k-images-idx3-ubyte.gz"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-labels-idx1-ubyte; do cp "$DIR/$f.gz" "$T/bad/"; done
check "truncated gzip: error names the file" expect_rc 1 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --set data.path="$T/bad" --set data.test_images=0
check "  ... t10k-images-idx3-ubyte.gz" has "t10k-images-idx3-ubyte.gz" "$T/err"
check "a 3-channel space on 1-channel data says how to fix it" expect_rc 1 "$PINAS" train "$T/cfg.json" --arch "$T/arch/net.json" --set data.channels=3
check "  ... names the shapes" has "[3, 28, 28]" "$T/err"
e2e_done e2e_train_fmnist
