#!/usr/bin/env bash
# End-to-end test of the parties' channel: TLS 1.3 by default (PSK, certificates from `pinas keygen`), refused
# without authentication, a wrong PSK, a man in the middle flipping one byte, a peer dripping bytes, a forged
# handshake (role 0xFFFFFFFF), a stray connection before the real client, --insecure. Usage: e2e_crypto_tls.sh PINAS
source "$(dirname "$0")/lib_e2e.sh"

"$PINAS" model random tests/golden/tiny_space.json --arch all-relu --seed 4 --out "$T/m" >/dev/null || { echo "model random failed"; exit 1; }
python3 - "$T/x.safetensors" <<'PY'
import json, struct, sys
n = 1 * 3 * 8 * 8
data = struct.pack("<%df" % n, *[((i * 37) % 101 - 50) / 25.0 for i in range(n)])
h = json.dumps({"x": {"dtype": "F32", "shape": [1, 3, 8, 8], "data_offsets": [0, len(data)]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
"$PINAS" dealer "$T/m" --batch 1 --out "$T/d0" --new-dealer-key "$T/dk" >/dev/null || { echo "dealer failed"; exit 1; }
deal() { "$PINAS" dealer "$T/m" --batch 1 --out "$T/$1" --dealer-key "$T/dk" >/dev/null || bad "dealer $1"; }

# keygen: a PSK (64 hex digits, 0600), certificates (keys 0600); no overwrite without --force
"$PINAS" keygen --psk "$T/k.psk" >/dev/null && "$PINAS" keygen --psk "$T/other.psk" >/dev/null \
    && [ "$(stat -c %a "$T/k.psk")" = 600 ] && grep -Eq '^[0-9a-f]{64}$' "$T/k.psk" && ok "keygen --psk: 64 hex digits, 0600" || bad "keygen --psk"
"$PINAS" keygen --psk "$T/k.psk" >/dev/null 2>&1; [ $? = 2 ] && ok "keygen refuses to overwrite" || bad "keygen overwrite"
"$PINAS" keygen --certs "$T/pki" >/dev/null && [ "$(stat -c %a "$T/pki/server.key")" = 600 ] && [ "$(stat -c %a "$T/pki/ca.key")" = 600 ] \
    && [ -s "$T/pki/client.crt" ] && ok "keygen --certs: CA + party pairs, keys 0600" || bad "keygen --certs"

# runs a server and a client; $1 name, then "--" separated extra args: SERVER_ARGS -- CLIENT_ARGS
pair() {
    local name=$1; shift
    local sargs=() cargs=() side=s
    for a in "$@"; do if [ "$a" = "--" ]; then side=c; elif [ $side = s ]; then sargs+=("$a"); else cargs+=("$a"); fi; done
    deal "$name"
    P=$(port)
    "$PINAS" party --dealer-key "$T/dk" --role server --model "$T/m" --prep "$T/$name/server.prep" --listen 127.0.0.1:$P "${sargs[@]}" > "$T/$name.s.out" 2> "$T/$name.s.err" &
    local S=$!
    "$PINAS" party --dealer-key "$T/dk" --role client --model "$T/m" --prep "$T/$name/client.prep" --connect 127.0.0.1:$P --input "$T/x.safetensors" "${cargs[@]}" > "$T/$name.c.out" 2> "$T/$name.c.err"
    CRC=$?
    wait $S; SRC=$?
}

# no authentication: refused with a message saying what to pass
"$PINAS" party --dealer-key "$T/dk" --role server --model "$T/m" --prep /nonexistent --listen 127.0.0.1:1 2> "$T/noauth.err"
[ $? = 2 ] && grep -q -- "--psk FILE" "$T/noauth.err" && grep -q -- "--insecure" "$T/noauth.err" && ok "no authentication: refused (exit 2) naming --psk/--cert/--insecure" || bad "no auth: $(cat "$T/noauth.err")"

# PSK, certificates, insecure: all run; JSON names the channel
pair psk --psk "$T/k.psk" --timeout 20 -- --psk "$T/k.psk" --timeout 20 --json
[ $CRC = 0 ] && [ $SRC = 0 ] && python3 -c "
import json; d=json.load(open('$T/psk.c.out')); c=d['channel']
assert 'TLSv1.3' in c['security'] and 'pre-shared key' in c['security'], c
assert c['wire_bytes_sent'] > 0 and len(d['logits']) == 1" && ok "PSK: both exit 0, TLSv1.3" || bad "PSK run (server $SRC, client $CRC): $(cat "$T/psk.s.err" "$T/psk.c.err")"
K="$T/pki"
pair crt --cert $K/server.crt --key $K/server.key --peer-ca $K/ca.crt --timeout 20 -- --cert $K/client.crt --key $K/client.key --peer-ca $K/ca.crt --timeout 20 --json
[ $CRC = 0 ] && [ $SRC = 0 ] && grep -q certificates "$T/crt.c.out" && ok "certificates: both exit 0" || bad "cert run (server $SRC, client $CRC): $(cat "$T/crt.s.err" "$T/crt.c.err")"
pair ins --insecure --timeout 20 -- --insecure --timeout 20 --json
[ $CRC = 0 ] && [ $SRC = 0 ] && grep -q "plain TCP" "$T/ins.c.out" && python3 -c "
import json; a=json.load(open('$T/psk.c.out'))['logits']; b=json.load(open('$T/ins.c.out'))['logits']
assert max(abs(x - y) for x, y in zip(a[0], b[0])) < 0.05, (a, b)" && ok "--insecure: both exit 0, same logits as over TLS" || bad "insecure run (server $SRC, client $CRC): $(cat "$T/ins.s.err" "$T/ins.c.err")"

# a wrong PSK: both exit 1 naming the peer (the server after its timeout: it keeps the slot for the right peer)
pair wrong --psk "$T/k.psk" --timeout 2 -- --psk "$T/other.psk" --timeout 2
[ $CRC = 1 ] && [ $SRC = 1 ] && grep -q "peer server" "$T/wrong.c.err" && grep -q "peer client" "$T/wrong.s.err" && grep -q "another PSK" "$T/wrong.s.err" \
    && ok "wrong PSK: both exit 1: $(tail -1 "$T/wrong.c.err") / $(tail -1 "$T/wrong.s.err")" || bad "wrong PSK (server $SRC, client $CRC): $(cat "$T/wrong.s.err" "$T/wrong.c.err")"

# a man in the middle flips one byte of the server's first application data (after the TLS handshake)
cat > "$T/mitm.py" <<'PY'
import select, socket, sys, time
lport, dport = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", lport)); l.listen(1)
open(sys.argv[3], "w").close()  # ready
c, _ = l.accept()
for _ in range(400):  # the server may still be starting
    try:
        s = socket.create_connection(("127.0.0.1", dport)); break
    except OSError:
        time.sleep(0.05)
seen_s2c = client_spoke_after = flipped = False
while True:
    r, _, _ = select.select([c, s], [], [], 30)
    if not r: break
    for src in r:
        d = src.recv(65536)
        if not d: sys.exit(0)
        if src is s:
            # the server's handshake flight comes before the client's Finished; after that, application data
            if client_spoke_after and not flipped:
                d = d[:-1] + bytes([d[-1] ^ 1]); flipped = True
            seen_s2c = True; c.sendall(d)
        else:
            client_spoke_after = client_spoke_after or seen_s2c; s.sendall(d)
PY
deal mitm
P=$(port); Q=$(port)
"$PINAS" party --dealer-key "$T/dk" --role server --model "$T/m" --prep "$T/mitm/server.prep" --listen 127.0.0.1:$P --psk "$T/k.psk" --timeout 5 >/dev/null 2> "$T/mitm.s.err" &
S=$!
python3 "$T/mitm.py" $Q $P "$T/mitm.ready" &
M=$!
for _ in $(seq 200); do [ -e "$T/mitm.ready" ] && break; sleep 0.05; done
"$PINAS" party --dealer-key "$T/dk" --role client --model "$T/m" --prep "$T/mitm/client.prep" --connect 127.0.0.1:$Q --input "$T/x.safetensors" --psk "$T/k.psk" --timeout 5 >/dev/null 2> "$T/mitm.c.err"
CRC=$?
wait $S; SRC=$?
kill $M 2>/dev/null; wait $M 2>/dev/null
# (the server streams its setup messages without waiting: it sees the client's TLS alert, or, when the
# client has already closed, a lost connection)
[ $CRC = 1 ] && [ $SRC = 1 ] && grep -q "peer server" "$T/mitm.c.err" && grep -q "peer client" "$T/mitm.s.err" && grep -qi "TLS" "$T/mitm.c.err" && grep -qiE "TLS|connection lost" "$T/mitm.s.err" \
    && ok "byte flipped in transit: both exit 1: $(tail -1 "$T/mitm.c.err") / $(tail -1 "$T/mitm.s.err")" || bad "MITM (server $SRC, client $CRC): $(cat "$T/mitm.s.err" "$T/mitm.c.err")"

# a peer dripping one byte every 0.8 s against --timeout 1: cut off by the total deadline, naming the peer (the
# dripper listens and the party connects: either role may)
cat > "$T/drip.py" <<'PY'
import socket, struct, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(1)
open(sys.argv[3], "w").close()  # ready
s, _ = l.accept()
# plain: a valid frame header of the handshake; TLS: the start of a ServerHello record
data = struct.pack("<IIQQ", 0x31534E50, 0xFFFF0001, 64, 0) if sys.argv[2] == "plain" else bytes([22, 3, 3, 0, 200]) + bytes(200)
try:
    for b in data:
        s.send(bytes([b])); time.sleep(0.8)
except OSError:
    pass
PY
for mode in plain tls; do
    deal drip$mode
    P=$(port)
    auth="--psk $T/k.psk"; [ $mode = plain ] && auth=--insecure
    python3 "$T/drip.py" $P $mode "$T/drip$mode.ready" &
    D=$!
    for _ in $(seq 200); do [ -e "$T/drip$mode.ready" ] && break; sleep 0.05; done
    start=$(date +%s.%N)
    "$PINAS" party --dealer-key "$T/dk" --role server --model "$T/m" --prep "$T/drip$mode/server.prep" --connect 127.0.0.1:$P $auth --timeout 1 >/dev/null 2> "$T/drip.err"
    SRC=$?
    el=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
    kill $D 2>/dev/null; wait $D 2>/dev/null
    [ $SRC = 1 ] && grep -q "peer client" "$T/drip.err" && grep -q "deadline" "$T/drip.err" && python3 -c "import sys; sys.exit(0 if $el < 4 else 1)" \
        && ok "dripping peer ($mode) cut off after $el s: $(tail -1 "$T/drip.err")" || bad "drip $mode: status $SRC after $el s: $(cat "$T/drip.err")"
done

# a forged handshake (role 0xFFFFFFFF) over --insecure: refused before the server sends anything of its own
deal forge
P=$(port)
"$PINAS" party --dealer-key "$T/dk" --role server --model "$T/m" --prep "$T/forge/server.prep" --listen 127.0.0.1:$P --insecure --timeout 5 >/dev/null 2> "$T/forge.err" &
S=$!
python3 - $P <<'PY' > "$T/forge.py.out"
import socket, struct, sys, time
for _ in range(400):  # the server may still be starting
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); break
    except OSError:
        time.sleep(0.05)
hello = b"PINASHS1" + struct.pack("<IIII", 1, 0xFFFFFFFF, 1, 0) + bytes(40)
s.sendall(struct.pack("<IIQQ", 0x31534E50, 0xFFFF0001, 64, 0) + hello)
got = b""
while True:
    d = s.recv(4096)
    if not d: break
    got += d
print("reply", got[24:32].decode(errors="replace"), got[32:88].rstrip(b"\0").decode(errors="replace"))
PY
wait $S; SRC=$?
[ $SRC = 1 ] && grep -q "0xffffffff" "$T/forge.err" && grep -q "reply PINASREJ role" "$T/forge.py.out" && ! grep -q PINASHS1 "$T/forge.py.out" \
    && ok "role 0xFFFFFFFF refused, nothing of the server's sent: $(tail -1 "$T/forge.err")" || bad "forged role (server $SRC): $(cat "$T/forge.err" "$T/forge.py.out")"

# a stray connection first does not take the server's slot: it is refused, the real client runs
deal stray
P=$(port)
"$PINAS" party --dealer-key "$T/dk" --role server --model "$T/m" --prep "$T/stray/server.prep" --listen 127.0.0.1:$P --psk "$T/k.psk" --timeout 10 >/dev/null 2> "$T/stray.s.err" &
S=$!
python3 -c "
import socket, time
for _ in range(400):  # the server may still be starting
    try:
        s = socket.create_connection(('127.0.0.1', $P)); break
    except OSError:
        time.sleep(0.05)
s.sendall(b'GET / HTTP/1.0\r\n\r\n')
try:
    s.recv(100)
except OSError:
    pass"
"$PINAS" party --dealer-key "$T/dk" --role client --model "$T/m" --prep "$T/stray/client.prep" --connect 127.0.0.1:$P --input "$T/x.safetensors" --psk "$T/k.psk" --timeout 10 >/dev/null 2> "$T/stray.c.err"
CRC=$?
wait $S; SRC=$?
[ $CRC = 0 ] && [ $SRC = 0 ] && grep -q "refused a connection" "$T/stray.s.err" && ok "stray connection refused, the real client served: $(head -1 "$T/stray.s.err")" \
    || bad "stray connection (server $SRC, client $CRC): $(cat "$T/stray.s.err" "$T/stray.c.err")"

e2e_done e2e_crypto_tls
