#!/usr/bin/env bash
# What TLS costs the parties: ResNet-18 CIFAR all-ReLU (random weights, the `pinas bench net` net), batch 1,
# one dealer run + two `pinas party` processes (one core each) per run, TLS 1.3 (PSK) and --insecure
# interleaved, RUNS each (default 3); prints medians of online seconds, payload and wire bytes.
#   scripts/bench-tls.sh [PINAS] [RUNS]
set -euo pipefail
P=${1:-build/pinas}
RUNS=${2:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cat > "$W/r18.json" <<'J'
{"format": "pinas-net/1", "name": "resnet18-cifar", "backbone": "resnet", "depth": 18, "stem": "cifar",
 "input": [3, 32, 32], "num_classes": 10, "act": ["relu"], "pool": ["maxpool"]}
J
"$P" model random "$W/r18.json" --arch all-relu --seed 0 --out "$W/m" >/dev/null
"$P" keygen --psk "$W/k.psk" >/dev/null
"$P" dealer "$W/m" --batch 1 --out "$W/p0" --new-dealer-key "$W/dk" >/dev/null
python3 - "$W/x.safetensors" <<'PY'
import json, struct, sys
n = 3 * 32 * 32
data = struct.pack("<%df" % n, *[((i * 37) % 101 - 50) / 25.0 for i in range(n)])
h = json.dumps({"x": {"dtype": "F32", "shape": [1, 3, 32, 32], "data_offsets": [0, len(data)]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
for r in $(seq "$RUNS"); do
  for mode in tls insecure; do
    rm -rf "$W/p"
    "$P" dealer "$W/m" --batch 1 --out "$W/p" --dealer-key "$W/dk" >/dev/null
    auth=(--psk "$W/k.psk"); [ $mode = insecure ] && auth=(--insecure)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    pin 0 "$P" party --role server --model "$W/m" --prep "$W/p/server.prep" --dealer-key "$W/dk" --listen 127.0.0.1:$port \
      "${auth[@]}" --timeout 120 --json >"$W/s-$mode-$r.json" 2>"$W/s.err" &
    S=$!
    pin 1 "$P" party --role client --model "$W/m" --prep "$W/p/client.prep" --dealer-key "$W/dk" --connect 127.0.0.1:$port \
      "${auth[@]}" --input "$W/x.safetensors" --timeout 120 --json >"$W/c-$mode-$r.json" 2>"$W/c.err" || { cat "$W/c.err"; exit 1; }
    wait $S || { cat "$W/s.err"; exit 1; }
  done
done
python3 - "$W" "$RUNS" <<'PY'
import json, sys, statistics as st
W, runs = sys.argv[1], int(sys.argv[2])
for mode in ("tls", "insecure"):
    on, pay, wire, sec = [], [], [], ""
    for r in range(1, runs + 1):
        c = json.load(open(f"{W}/c-{mode}-{r}.json"))
        t = c["totals"]
        on.append(t["online_s"])
        pay.append(t["online"]["bytes"][0] + t["online"]["bytes"][1] + t["setup"]["bytes"][0] + t["setup"]["bytes"][1])
        wire.append(c["channel"]["wire_bytes_sent"] + c["channel"]["wire_bytes_received"])
        sec = c["channel"]["security"]
    print(f"{mode:9s} online {st.median(on):.3f} s (runs {', '.join('%.3f' % x for x in on)}); "
          f"payload (setup + online, both ways) {st.median(pay) / 1e6:.2f} MB; wire {st.median(wire) / 1e6:.2f} MB; {sec}")
PY
