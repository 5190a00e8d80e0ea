#!/usr/bin/env bash
# End-to-end: `pinas train` on an image folder (ROOT/train/<class>/, ROOT/val/<class>/) of PNG files written
# here, resized and cropped to the space's input; a corrupt file and an empty class folder are errors naming them.
source "$(dirname "$0")/lib_e2e.sh" "$@"

# Two classes of 40x30 RGB PNGs (Python's zlib, no imaging library): reddish "a_red", bluish "b_blue", with noise.
py "
import os, random, struct, zlib
random.seed(1)
def png(path, w, h, rgb):
    raw = b''.join(b'\x00' + bytes(v for x in range(w) for v in [min(255, max(0, c + random.randint(-40, 40))) for c in rgb]) for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
for split, n in (('train', 24), ('val', 8)):
    for cls, rgb in (('a_red', (200, 60, 60)), ('b_blue', (60, 60, 200))):
        os.makedirs('$T/imgs/%s/%s' % (split, cls), exist_ok=True)
        for i in range(n): png('$T/imgs/%s/%s/%03d.png' % (split, cls, i), 40, 30, rgb)
"
cat >"$T/space.json" <<JSON
{"format": "pinas-net/1", "backbone": "resnet", "depth": 8, "width": 8, "stem": "cifar", "input": [3, 16, 16],
 "num_classes": 2, "act": ["relu"], "pool": ["maxpool"]}
JSON
cat >"$T/cfg.json" <<JSON
{"format": "pinas-config/1", "name": "if", "seed": 1, "threads": 2, "out_dir": "$T/runs", "space": "$T/space.json",
 "data": {"dataset": "imagefolder", "path": "$T/imgs", "resize": 16, "val_fraction": 0.25},
 "train": {"epochs": 3, "batch_size": 8, "lr": 0.05}}
JSON
check "pinas train on an image folder exits 0" expect_rc 0 "$PINAS" train "$T/cfg.json" --json
cp "$T/out" "$T/train.json"
check "it separates red from blue (val accuracy >= 0.9)" py "
import json; a = json.load(open('$T/train.json'))['accuracy']; print('  val accuracy', a); assert a >= 0.9, a"
check "meta.json: ImageNet normalisation, 2 classes, 3x16x16" py "
import json; m = json.load(open('$T/runs/if/model/meta.json'))
assert m['num_classes'] == 2 and m['input'] == [3, 16, 16], m
assert abs(m['normalize']['mean'][0] - 0.485) < 1e-6 and abs(m['normalize']['std'][2] - 0.225) < 1e-6, m['normalize']"

head -c 200 "$T/imgs/train/b_blue/005.png" >"$T/cut.png" && mv "$T/cut.png" "$T/imgs/train/b_blue/005.png"
check "a truncated PNG: exit 1" expect_rc 1 "$PINAS" train "$T/cfg.json" --set name=if2
check "  ... naming the file" has "b_blue/005.png" "$T/err"
rm -f "$T/imgs/train/b_blue/"*.png
check "an empty class folder: exit 1" expect_rc 1 "$PINAS" train "$T/cfg.json" --set name=if3
check "  ... naming the folder" has "train/b_blue: empty class folder" "$T/err"
e2e_done e2e_train_imagefolder
