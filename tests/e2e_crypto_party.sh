#!/usr/bin/env bash
# End-to-end test of the 2PC CLI: model random -> dealer -> two `pinas party` processes -> infer; a peer killed
# mid-protocol, a silent peer, corrupt and mismatched preprocessing files. Usage: e2e_crypto_party.sh PINAS
source "$(dirname "$0")/lib_e2e.sh"
# waits (up to 30 s) until the parties are connected on port $1, then lets them reach the delayed layer
connected() {
    for _ in $(seq 300); do
        ss -tn state established "( sport = :$1 )" 2>/dev/null | grep -q "127.0.0.1:$1" && { sleep 1; return 0; }
        sleep 0.1
    done
    return 1
}

# every party: the dealer's key and a PSK for the TLS channel (tests/e2e_crypto_tls.sh covers certificates,
# --insecure and the attacks on the channel)
"$PINAS" keygen --psk "$T/k.psk" >/dev/null || { echo "keygen failed"; exit 1; }
AUTH="--psk $T/k.psk --dealer-key $T/dk"
"$PINAS" model random tests/golden/tiny_space.json --arch all-relu --seed 4 --out "$T/m" >/dev/null || { echo "model random failed"; exit 1; }
"$PINAS" model random tests/golden/tiny_space.json --arch all-poly --seed 4 --out "$T/m2" >/dev/null || exit 1

# dealer: two files, mode 0600, per-layer sizes
"$PINAS" dealer "$T/m" --batch 2 --out "$T/p" --new-dealer-key "$T/dk" --json > "$T/dealer.json" || bad "dealer exit status"
[ "$(stat -c %a "$T/p/server.prep")" = 600 ] && [ "$(stat -c %a "$T/p/client.prep")" = 600 ] && ok "prep files are 0600" || bad "prep file mode"
python3 - "$T/dealer.json" <<'PY' && ok "dealer reports per-layer sizes" || bad "dealer JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert any(l["id"] == "a1" and l["server_bytes"] > 0 and l["client_bytes"] > 0 for l in d["layers"])
assert d["totals"]["server_bytes"] == sum(l["server_bytes"] for l in d["layers"])
PY

# an input file: x [2, 3, 8, 8]
python3 - "$T/x.safetensors" <<'PY'
import json, struct, sys
n = 2 * 3 * 8 * 8
data = struct.pack("<%df" % n, *[((i * 37) % 101 - 50) / 25.0 for i in range(n)])
h = json.dumps({"x": {"dtype": "F32", "shape": [2, 3, 8, 8], "data_offsets": [0, len(data)]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY

# two processes
P=$(port)
"$PINAS" party $AUTH --role server --model "$T/m" --prep "$T/p/server.prep" --listen 127.0.0.1:$P --timeout 20 > "$T/s.out" 2>&1 &
S=$!
"$PINAS" party $AUTH --role client --model "$T/m" --prep "$T/p/client.prep" --connect 127.0.0.1:$P --input "$T/x.safetensors" --json --timeout 20 > "$T/c.json" 2> "$T/c.err"
C=$?
wait $S; SS=$?
[ $C = 0 ] && [ $SS = 0 ] && ok "server and client exit 0" || bad "party exit status (server $SS, client $C): $(cat "$T/c.err" "$T/s.out")"
python3 -c "import json,sys; d=json.load(open('$T/c.json')); assert len(d['logits'])==2 and len(d['classes'])==2" && ok "client JSON has logits and classes" || bad "client JSON"

# a pair serves one inference only in the sense of one session id; reusing the server file with another dealer run's client file fails
"$PINAS" dealer "$T/m" --batch 2 --out "$T/q" --dealer-key "$T/dk" >/dev/null
P=$(port)
"$PINAS" party $AUTH --role server --model "$T/m" --prep "$T/p/server.prep" --listen 127.0.0.1:$P --timeout 10 >/dev/null 2> "$T/s.err" &
S=$!
"$PINAS" party $AUTH --role client --model "$T/m" --prep "$T/q/client.prep" --connect 127.0.0.1:$P --input "$T/x.safetensors" --timeout 10 >/dev/null 2> "$T/c.err"
C=$?
wait $S; SS=$?
[ $C = 1 ] && [ $SS = 1 ] && grep -q "session id" "$T/c.err" && ok "mismatched dealer sessions refused" || bad "session mismatch (server $SS, client $C)"

# preprocessing for another model
"$PINAS" dealer "$T/m2" --batch 2 --out "$T/r" --dealer-key "$T/dk" >/dev/null
P=$(port)
"$PINAS" party $AUTH --role server --model "$T/m" --prep "$T/r/server.prep" --listen 127.0.0.1:$P --timeout 5 >/dev/null 2> "$T/s.err"
[ $? = 1 ] && grep -q "another model" "$T/s.err" && ok "preprocessing for another model rejected" || bad "model mismatch: $(cat "$T/s.err")"

# a corrupted file
cp "$T/p/client.prep" "$T/bad.prep"
python3 -c "import sys; b=bytearray(open('$T/bad.prep','rb').read()); b[len(b)//2]^=1; open('$T/bad.prep','wb').write(b)"
"$PINAS" party $AUTH --role client --model "$T/m" --prep "$T/bad.prep" --connect 127.0.0.1:1 --input "$T/x.safetensors" >/dev/null 2> "$T/c.err"
[ $? = 1 ] && grep -Eq "checksum|authentication failed" "$T/c.err" && ok "corrupted preprocessing rejected" || bad "corrupt file: $(cat "$T/c.err")"

# peer killed mid-protocol: the client stalls at layer a1, we kill it, the server must exit 1 within its timeout
for victim in client server; do
    "$PINAS" dealer "$T/m" --batch 2 --out "$T/k" --dealer-key "$T/dk" >/dev/null
    P=$(port)
    sd=""; cd=""
    [ $victim = client ] && cd="--debug-delay a1:20000" || sd="--debug-delay a1:20000"
    "$PINAS" party $AUTH --role server --model "$T/m" --prep "$T/k/server.prep" --listen 127.0.0.1:$P --timeout 8 $sd >/dev/null 2> "$T/s.err" &
    S=$!
    "$PINAS" party $AUTH --role client --model "$T/m" --prep "$T/k/client.prep" --connect 127.0.0.1:$P --input "$T/x.safetensors" --timeout 8 $cd >/dev/null 2> "$T/c.err" &
    C=$!
    connected $P || bad "$victim test: the parties never connected"
    start=$(date +%s.%N)
    if [ $victim = client ]; then kill -9 $C; wait $S; rc=$?; err="$T/s.err"; peer=client; else kill -9 $S; wait $C; rc=$?; err="$T/c.err"; peer=server; fi 2>/dev/null
    wait 2>/dev/null
    el=$(python3 -c "print($(date +%s.%N) - $start)")
    if [ $rc = 1 ] && grep -q "peer $peer" "$err" && grep -q "a1" "$err" && python3 -c "import sys; sys.exit(0 if $el < 8 else 1)"; then
        ok "$victim killed mid-protocol: the other exits 1 after $el s naming the peer and the layer: $(tail -1 "$err")"
    else
        bad "$victim killed: status $rc after $el s: $(cat "$err")"
    fi
done

# a silent peer: the client (listening here: either role may) stalls 4 s at a1; the server's 1.5 s timeout
# fires there; then the client finds the server gone. Both exit 1.
"$PINAS" dealer "$T/m" --batch 2 --out "$T/t" --dealer-key "$T/dk" >/dev/null
P=$(port)
"$PINAS" party $AUTH --role client --model "$T/m" --prep "$T/t/client.prep" --listen 127.0.0.1:$P --input "$T/x.safetensors" --timeout 20 --debug-delay a1:4000 >/dev/null 2> "$T/c.err" &
C=$!
for _ in $(seq 300); do ss -tln 2>/dev/null | grep -q "127.0.0.1:$P " && break; sleep 0.1; done
"$PINAS" party $AUTH --role server --model "$T/m" --prep "$T/t/server.prep" --connect 127.0.0.1:$P --timeout 1.5 >/dev/null 2> "$T/s.err"
SS=$?
wait $C; CC=$?
[ $SS = 1 ] && grep -q "timed out" "$T/s.err" && grep -q "a1" "$T/s.err" && [ $CC = 1 ] && grep -q "peer server" "$T/c.err" \
    && ok "silent peer: timeout, both exit 1: $(tail -1 "$T/s.err")" || bad "silent peer (server $SS, client $CC): $(cat "$T/s.err" "$T/c.err")"

# the weight mask is per model: two dealer runs into one DIR share the mask id; with --mask-cache the
# server's masked weights cross the network in the first session only
"$PINAS" dealer "$T/m" --batch 2 --out "$T/w" --dealer-key "$T/dk" --json > "$T/w1.json" && cp "$T/w/server.prep" "$T/w/s1.prep" && cp "$T/w/client.prep" "$T/w/c1.prep"
"$PINAS" dealer "$T/m" --batch 2 --out "$T/w" --dealer-key "$T/dk" --json > "$T/w2.json"
[ "$(stat -c %a "$T"/w/*.mask)" = 600 ] && python3 -c "
import json; a=json.load(open('$T/w1.json')); b=json.load(open('$T/w2.json')); assert a['weight_mask_id']==b['weight_mask_id']" \
    && ok "weight mask kept per model (0600)" || bad "weight mask file"
for k in 1 2; do
    sp="$T/w/s1.prep"; cp_="$T/w/c1.prep"; [ $k = 2 ] && { sp="$T/w/server.prep"; cp_="$T/w/client.prep"; }
    P=$(port)
    "$PINAS" party $AUTH --role server --model "$T/m" --prep "$sp" --listen 127.0.0.1:$P --timeout 20 >/dev/null 2> "$T/s.err" &
    S=$!
    "$PINAS" party $AUTH --role client --model "$T/m" --prep "$cp_" --connect 127.0.0.1:$P --input "$T/x.safetensors" --timeout 20 \
        --mask-cache "$T/cache" --report "$T/cache$k.json" >/dev/null 2> "$T/c.err" || bad "mask cache session $k: $(cat "$T/c.err")"
    wait $S || bad "mask cache session $k (server): $(cat "$T/s.err")"
done
python3 - "$T/cache1.json" "$T/cache2.json" <<'PY' && ok "masked weights sent once per model (mask cache)" || bad "mask cache"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
sa, sb = a["totals"]["setup"]["bytes"][0], b["totals"]["setup"]["bytes"][0]
assert sb < sa, (sa, sb)
conv = {"c1", "c2", "fc"}  # the tiny net's conv/linear nodes
assert all(l["measured"]["setup"]["bytes"][0] == 0 for l in b["layers"] if l["id"] in conv), "conv rows still send W - A"
assert all(l["measured"]["setup"]["bytes"][0] > 0 for l in a["layers"] if l["id"] in conv)
# the cached masked weights give the same result (fresh preprocessing: equal up to truncation's ulps)
la, lb = (sum(l, []) if l and isinstance(l[0], list) else l for l in (a["logits"], b["logits"]))
assert len(la) == len(lb) > 0 and len(b["logits"]) == 2
assert max(abs(x - y) for x, y in zip(la, lb)) < 0.05, (la, lb)
PY
[ "$(stat -c %a "$T"/cache/*.masked)" = 600 ] && ok "mask cache files are 0600" || bad "mask cache mode"

# infer: processes over loopback, compared with plaintext
"$PINAS" infer "$T/m" --random 3 --json > "$T/i.json" || bad "infer exit status"
python3 - "$T/i.json" <<'PY' && ok "infer: private = plaintext, per-layer table" || bad "infer JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["max_abs_error"] < 0.01, d["max_abs_error"]
assert d["classes"] == d["plaintext_classes"]
assert len(d["logits"]) == 3 and len(d["plaintext_logits"]) == 3
assert {"id", "online_ms", "prep_bytes_server", "prep_bytes_client", "sent_bytes_server", "sent_bytes_client", "rounds"} <= set(d["layers"][0])
assert d["totals"]["online"]["rounds"] == sum(l["rounds"] for l in d["layers"])
PY
"$PINAS" infer "$T/m" --input "$T/x.safetensors" | grep -q "max abs logit error" && ok "infer table output" || bad "infer table"
"$PINAS" infer "$T/m" >/dev/null 2>&1; [ $? = 2 ] && ok "infer usage error exits 2" || bad "infer usage exit status"
for c in dealer party infer; do "$PINAS" $c --help | grep -q "usage: pinas $c" || bad "$c --help"; done

e2e_done e2e_crypto_party
