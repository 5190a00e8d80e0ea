#!/usr/bin/env bash
# End to end: files cannot be turned against the user (umask respected, planted temp names not followed,
# stale temp files cleaned), a file size limit (ulimit -f) ends in a message with the old files intact,
# `pinas infer` in chunks gives the unchunked results and leaves no temp dir on SIGTERM.
# Usage: e2e_common_files.sh PATH/TO/pinas
source "$(dirname "$0")/lib_e2e.sh"
SPACE=tests/golden/tiny_space.json
mode() { stat -c %a "$1"; }
no_tmp() { ! ls -a "$1" | grep -q '\.tmp\.'; }

# ---- modes follow the umask (no forced 0644); prep files stay 0600
(umask 077 && "$PINAS" model random $SPACE --seed 4 --out "$T/m077" >/dev/null)
check "umask 077: model files 0600" test "$(mode "$T/m077/weights.safetensors")$(mode "$T/m077/net.json")$(mode "$T/m077/meta.json")" = 600600600
(umask 002 && "$PINAS" model random $SPACE --seed 4 --out "$T/m002" >/dev/null)
check "umask 002: model files 0664" test "$(mode "$T/m002/weights.safetensors")$(mode "$T/m002/meta.json")" = 664664
(umask 022 && "$PINAS" model random $SPACE --seed 4 --out "$T/m" >/dev/null)
check "umask 022: model files 0644" test "$(mode "$T/m/weights.safetensors")" = 644

# ---- stale temp files of a target (dead pid) are removed on its next write; a planted symlink there
# is removed, never followed; other names stay
echo precious >"$T/victim"
ln -s "$T/victim" "$T/m/weights.safetensors.tmp.999999999"
echo junk >"$T/m/meta.json.tmp.999999999.0123456789abcdef"
echo mine >"$T/m/notes.tmp.999999999"
(umask 022 && "$PINAS" model random $SPACE --seed 4 --out "$T/m" >/dev/null)
check "stale temp files of the written targets are cleaned" bash -c "! ls '$T/m' | grep -q 'weights.safetensors.tmp\|meta.json.tmp'"
check "the symlink's target is untouched" test "$(cat "$T/victim")" = precious
check "an unrelated file is kept" test -f "$T/m/notes.tmp.999999999"
rm -f "$T/m/notes.tmp.999999999"

# ---- ulimit -f: a message naming the file, non-zero exit, the previous model intact, no temp file
cp -r "$T/m" "$T/m.before"
(ulimit -f 1 && "$PINAS" model random $SPACE --seed 5 --out "$T/m") >"$T/out" 2>"$T/err"
rc=$?
check "ulimit -f: model random exits non-zero (not killed by SIGXFSZ)" test "$rc" -ne 0 -a "$rc" -lt 128
check "ulimit -f: the message names the file and the limit" bash -c "grep -q 'weights.safetensors' '$T/err' && grep -q 'ulimit -f' '$T/err'"
check "ulimit -f: the previous files are unchanged" diff -r "$T/m" "$T/m.before"
check "ulimit -f: no temp file left" no_tmp "$T/m"
mkdir -p "$T/keep"
(ulimit -f 2 && "$PINAS" infer "$T/m" --random 2 --keep "$T/keep") >"$T/out" 2>"$T/err"
rc=$?
check "ulimit -f: infer exits non-zero with a message naming a file" \
  bash -c "[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q '$T/keep/' '$T/err' && grep -qi 'too large\|ulimit' '$T/err'"
check "ulimit -f: infer leaves no temp file in --keep DIR" no_tmp "$T/keep"

# ---- chunked = unchunked (the plaintext logits exactly, the classes, the private logits within the
# fixed-point error); --keep names the chunks' files
"$PINAS" infer "$T/m" --random 3 --seed 2 --json >"$T/u.json" 2>"$T/u.err"
check "infer unchunked exits 0" test $? -eq 0
"$PINAS" infer "$T/m" --random 3 --seed 2 --chunk 2 --json --keep "$T/k2" >"$T/c.json" 2>"$T/c.err"
check "infer --chunk 2 exits 0" test $? -eq 0
check "chunked = unchunked" py "
import json
u = json.load(open('$T/u.json')); c = json.load(open('$T/c.json'))
assert u['plaintext_logits'] == c['plaintext_logits']
assert u['classes'] == c['classes'] and len(c['logits']) == 3
d = max(abs(a - b) for ru, rc in zip(u['logits'], c['logits']) for a, b in zip(ru, rc))
assert d < 4 * max(u['max_abs_error'], c['max_abs_error'], 1e-4), d
assert c['totals']['online']['bytes'] == u['totals']['online']['bytes'], (c['totals'], u['totals'])
"
check "--keep with 2 chunks keeps both chunks' files" test -f "$T/k2/chunk0-server.prep" -a -f "$T/k2/chunk1-logits.safetensors"
check "--chunk 0 is a usage error" expect_rc 2 "$PINAS" infer "$T/m" --random 3 --chunk 0

# ---- SIGTERM: the parties stop, the temp dir goes (TMPDIR places it)
mkdir -p "$T/tmp"
TMPDIR="$T/tmp" "$PINAS" infer "$T/m" --random 40 --chunk 1 >/dev/null 2>"$T/sig.err" &
pid=$!
for _ in $(seq 100); do ls "$T/tmp"/pinas-infer-*/*.prep >/dev/null 2>&1 && break; sleep 0.1; done
check "infer made its temp dir under TMPDIR" bash -c "ls -d '$T/tmp'/pinas-infer-* >/dev/null 2>&1"
sleep 0.5
parties=$(pgrep -P $pid | tr '\n' ' ')
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM: infer dies of the signal" test "$rc" -eq 143
check "SIGTERM: no temp dir left" test -z "$(ls -A "$T/tmp")"
check "SIGTERM: no party left" bash -c "for p in $parties; do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"

e2e_done e2e_common_files
