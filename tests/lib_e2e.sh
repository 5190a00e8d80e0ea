# Shared by the end-to-end scripts (source it after setting nothing): PINAS (the binary, $1 or
# build/pinas), T (a temporary directory removed on exit), and the checks below. End with e2e_done.
set -u
PINAS=${1:-build/pinas}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT   # background parties too
fails=0; passes=0
check() { # check NAME COMMAND...: runs the command, counts and prints ok/FAIL
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passes=$((passes + 1)); else echo "FAIL $name"; fails=$((fails + 1)); fi
}
# expect_rc RC COMMAND...: the command's exit status is RC (its output in $T/out and $T/err)
expect_rc() { local want=$1; shift; "$@" >"$T/out" 2>"$T/err"; local rc=$?; [ "$rc" -eq "$want" ] || { echo "  rc $rc, wanted $want: $*"; tail -20 "$T/err"; return 1; }; }
# has TEXT FILE: the file contains the text
has() { grep -qF -- "$1" "$2" || { echo "  '$1' not in $2:"; head -5 "$2"; return 1; }; }
# py CODE: a Python check exits 0
py() { python3 -c "$1" || { echo "  python check failed: $1"; return 1; }; }
# ok TEXT / bad TEXT: count a check made inline (`cond && ok "..." || bad "..."`)
ok() { echo "ok   $*"; passes=$((passes + 1)); }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# port: a free TCP port on 127.0.0.1
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# e2e_done NAME: prints the tally; the script's status is 0 when nothing failed
e2e_done() { echo "$1: $passes passed, $fails failed"; [ "$fails" -eq 0 ]; }
