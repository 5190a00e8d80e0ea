#!/usr/bin/env bash
# End-to-end checks of the dealer's authenticated files and the runtime's value checks: dealer key required
# and 0600, a file under another key or with a forged field refused by the party naming the file, a file of
# format 3 refused naming the version, a tampered or cut node section refused naming the file and node, frac_bits
# above the ring's bound refused, NaN/Inf/huge inputs and NaN weights refused naming the tensor.
# Usage: e2e_crypto_prep.sh PINAS
source "$(dirname "$0")/lib_e2e.sh"

"$PINAS" model random tests/golden/tiny_space.json --arch all-relu --seed 4 --out "$T/m" >/dev/null || { echo "model random failed"; exit 1; }

"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" >/dev/null 2> "$T/e"
[ $? = 2 ] && grep -q -- "--dealer-key" "$T/e" && ok "dealer without a key refused" || bad "dealer without key: $(cat "$T/e")"
"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --new-dealer-key "$T/k" >/dev/null 2> "$T/e" || bad "dealer --new-dealer-key: $(cat "$T/e")"
[ "$(stat -c %a "$T/k")" = 600 ] && [ "$(tr -d '\n' < "$T/k" | wc -c)" = 64 ] && ok "dealer key: 64 hex digits, 0600" || bad "key file"
"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --new-dealer-key "$T/k" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "exists" "$T/e" && ok "--new-dealer-key does not overwrite a key" || bad "key overwrite: $(cat "$T/e")"
"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --dealer-key "$T/k" --frac-bits 19 >/dev/null 2> "$T/e"
[ $? = 2 ] && grep -q "18" "$T/e" && ok "frac_bits above the ring's bound refused with the bound" || bad "frac 19: $(cat "$T/e")"

python3 - "$T" <<'PY'
import json, struct, sys
t = sys.argv[1]
def save(path, vals):
    data = struct.pack("<%df" % len(vals), *vals)
    h = json.dumps({"x": {"dtype": "F32", "shape": [1, 3, 8, 8], "data_offsets": [0, len(data)]}}).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
base = [((i * 37) % 101 - 50) / 25.0 for i in range(192)]
save(t + "/x.st", base)
v = list(base); v[70] = float("nan"); save(t + "/nan.st", v)
v = list(base); v[5] = 3e4; save(t + "/big.st", v)
PY

# runs both parties on $1 (client prep) with dealer key $2 and input $3; sets C, SS and $T/c.err
pair() {
    local P; P=$(port)
    "$PINAS" party --role server --model "$T/m" --prep "$T/p/server.prep" --dealer-key "$T/k" --listen 127.0.0.1:$P \
        --insecure --timeout 4 > /dev/null 2> "$T/s.err" &
    local S=$!
    "$PINAS" party --role client --model "$T/m" --prep "$1" --dealer-key "$2" --connect 127.0.0.1:$P --insecure \
        --input "$3" --timeout 4 ${CX:-} > "$T/c.out" 2> "$T/c.err"
    C=$?
    wait $S; SS=$?
}
pair "$T/p/client.prep" "$T/k" "$T/x.st"
[ $C = 0 ] && [ $SS = 0 ] && ok "parties accept the dealer's files under its key" || bad "run (server $SS, client $C): $(cat "$T/c.err" "$T/s.err")"
"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --dealer-key "$T/k" >/dev/null || bad "dealer --dealer-key"
"$PINAS" dealer "$T/m" --batch 1 --out "$T/q" --new-dealer-key "$T/k2" >/dev/null || bad "dealer second key"
"$PINAS" party --role client --model "$T/m" --prep "$T/p/client.prep" --dealer-key "$T/k2" --connect 127.0.0.1:1 \
    --insecure --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "client.prep: authentication failed" "$T/e" && ok "file under another dealer key refused naming it" || bad "wrong key: $(cat "$T/e")"
"$PINAS" party --role client --model "$T/m" --prep "$T/p/client.prep" --connect 127.0.0.1:1 --insecure --input "$T/x.st" \
    >/dev/null 2> "$T/e"
[ $? = 2 ] && grep -q -- "--dealer-key" "$T/e" && ok "party without a dealer key refused" || bad "party without key: $(cat "$T/e")"
chmod 644 "$T/k2"
"$PINAS" party --role client --model "$T/m" --prep "$T/q/client.prep" --dealer-key "$T/k2" --connect 127.0.0.1:1 \
    --insecure --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "readable by group or others" "$T/e" && ok "world-readable dealer key refused" || bad "key mode: $(cat "$T/e")"
# a forged field: 65 comparison bits on a node, tag stripped of meaning (no key): rejected before use
python3 -c "import sys; b=bytearray(open('$T/p/client.prep','rb').read()); b[48:52]=(65).to_bytes(4,'little'); open('$T/forged.prep','wb').write(b)"
"$PINAS" party --role client --model "$T/m" --prep "$T/forged.prep" --dealer-key "$T/k" --connect 127.0.0.1:1 --insecure \
    --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "forged.prep: authentication failed" "$T/e" && ok "forged header refused" || bad "forged: $(cat "$T/e")"

# format 5 (per-node sections): files of formats 3 and 4 are refused naming the version; a tampered node section
# is refused when the party reaches it, naming the file and the node; a cut file at load, naming the node
"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --dealer-key "$T/k" --threads 2 >/dev/null || bad "dealer --threads 2"
python3 - "$T" <<'PY2'
import struct, sys
t = sys.argv[1]
b = bytearray(open(t + "/p/client.prep", "rb").read())
v3 = bytearray(b); v3[8:12] = struct.pack("<I", 3); open(t + "/v3.prep", "wb").write(v3)
v4 = bytearray(b); v4[8:12] = struct.pack("<I", 4); open(t + "/v4.prep", "wb").write(v4)
n = struct.unpack_from("<I", b, 52)[0]
recs = [struct.unpack_from("<IIQQQ", b, 96 + 32 * i) for i in range(n)]
i = max(range(n), key=lambda k: recs[k][2])                      # the node with the most material
ln, off = recs[i][2], recs[i][3]
tb = bytearray(b); tb[off + ln // 2] ^= 0x40; open(t + "/tampered.prep", "wb").write(tb)
open(t + "/tampered.node", "w").write(str(i))
cut = recs[i][3] + 100                                           # inside node i's section
open(t + "/cut.prep", "wb").write(b[:cut])
PY2
I=$(cat "$T/tampered.node")
"$PINAS" party --role client --model "$T/m" --prep "$T/v3.prep" --dealer-key "$T/k" --connect 127.0.0.1:1 --insecure \
    --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "v3.prep: preprocessing format version 3; this pinas reads 5: re-run pinas dealer" "$T/e" && ok "format 3 file refused naming the version" || bad "v3: $(cat "$T/e")"
"$PINAS" party --role client --model "$T/m" --prep "$T/v4.prep" --dealer-key "$T/k" --connect 127.0.0.1:1 --insecure \
    --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "v4.prep: preprocessing format version 4; this pinas reads 5: re-run pinas dealer" "$T/e" && ok "format 4 file (HMAC-SHA256 sections) refused naming the version" || bad "v4: $(cat "$T/e")"
"$PINAS" party --role client --model "$T/m" --prep "$T/cut.prep" --dealer-key "$T/k" --connect 127.0.0.1:1 --insecure \
    --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "cut.prep: truncated: node $I's section ends at byte" "$T/e" && ok "truncated file refused naming the file and node $I" || bad "cut: $(cat "$T/e")"
"$PINAS" party --role client --model "$T/m" --prep "$T/tampered.prep" --dealer-key "$T/k" --connect 127.0.0.1:1 --insecure \
    --input "$T/x.st" >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "tampered.prep: node $I: authentication failed" "$T/e" && ok "tampered section of node $I refused before connecting" || bad "tampered at load: $(cat "$T/e")"
CX=--no-preverify pair "$T/tampered.prep" "$T/k" "$T/x.st"
[ $C = 1 ] && [ $SS != 0 ] && grep -q "client: node [A-Za-z0-9_.]*: .*tampered.prep: node $I: authentication failed" "$T/c.err" \
    && ok "--no-preverify: tampered section of node $I refused when reached, naming the file and the node" || bad "tampered (server $SS, client $C): $(cat "$T/c.err")"
pair "$T/p/client.prep" "$T/k" "$T/x.st"
[ $C = 0 ] && [ $SS = 0 ] && ok "the untouched pair (dealt with 2 threads) still runs" || bad "run after tamper (server $SS, client $C): $(cat "$T/c.err" "$T/s.err")"

"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --dealer-key "$T/k" >/dev/null
pair "$T/p/client.prep" "$T/k" "$T/nan.st"
[ $C = 1 ] && [ $SS != 0 ] && grep -q "input x\[0, 1, 0, 6\] is NaN" "$T/c.err" && ok "NaN input refused naming the element" || bad "NaN input (server $SS, client $C): $(cat "$T/c.err")"
"$PINAS" dealer "$T/m" --batch 1 --out "$T/p" --dealer-key "$T/k" >/dev/null
pair "$T/p/client.prep" "$T/k" "$T/big.st"
[ $C = 1 ] && grep -q "input x\[0, 0, 0, 5\] = 30000 is outside the range" "$T/c.err" && ok "input of 3e4 at frac_bits 16 refused" || bad "big input (client $C): $(cat "$T/c.err")"

# NaN weight and negative running_var: the server refuses its model naming the tensor
cp -r "$T/m" "$T/mw"
python3 - "$T/mw/weights.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
name = next(k for k in h if k.endswith(".weight"))
o = 8 + n + h[name]["data_offsets"][0]
b[o:o + 4] = struct.pack("<f", float("inf"))
open(p, "wb").write(b)
print(name, file=open(p + ".name", "w"))
PY
"$PINAS" party --role server --model "$T/mw" --prep "$T/p/server.prep" --dealer-key "$T/k" --listen 127.0.0.1:1 --insecure \
    >/dev/null 2> "$T/e"
[ $? = 1 ] && grep -q "tensor $(cat "$T/mw/weights.safetensors.name"): element 0 is +Inf" "$T/e" && ok "Inf weight refused naming the tensor" || bad "Inf weight: $(cat "$T/e")"

e2e_done e2e_crypto_prep
