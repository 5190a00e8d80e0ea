#!/usr/bin/env bash
# The tree's structural rules (issue 11), checked on every `make test`: typed config and meta reads
# only, no nets as JSON strings in library code, one seeded generator, short functions, PINAS_WUR on
# every status-returning public function, a cost model and a pinas that link without libtorch.
source "$(dirname "$0")/lib_e2e.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$(dirname "$PINAS")" && pwd)
cd "$ROOT" || exit 1
LIB_DIRS="common search_spaces train latency_model crypto nas"
lib_sources() { find $LIB_DIRS -name '*.c' -o -name '*.cpp' | sort; }
all_sources() { { lib_sources; find cli -name '*.c'; } | sort; }

# 1. Config fields are read through the typed records (common/pinas_config.h), never by dotted key.
keys=$(sed -n 's/^ *{"\([a-z_]*\.[a-z_.]*\)", T_.*/\1/p' common/config.c)
string_key_reads() {
  local bad=0
  for k in $keys; do
    # a read passes the key to a JSON lookup; naming the field in a message is fine
    hits=$(all_sources | grep -v '^common/config.c$' | xargs grep -nF "\"$k\"" 2>/dev/null | grep -E 'cJSON_|pinas_json_|pinas_config_')
    [ -n "$hits" ] && { echo "  config key \"$k\" read by string: $hits"; bad=1; }
  done
  hits=$(all_sources | xargs grep -nE 'pinas_config_(int|num|bool|str|get)\(' 2>/dev/null)
  [ -n "$hits" ] && { echo "  string-keyed config getters: $hits"; bad=1; }
  [ "$bad" -eq 0 ]
}
check "no config field read by string key outside common/config.c ($(echo $keys | wc -w) keys)" string_key_reads

# 2. meta.json is read and written by search_spaces/model.c alone.
meta_reads() {
  local hits
  # (train/checkpoint.c reads its own checkpoint metadata, not meta.json)
  hits=$(all_sources | grep -vE '^(search_spaces/model|train/checkpoint).c$' | xargs grep -nE '(GetObjectItem[A-Za-z]*|pinas_json_at|pinas_json_get_[a-z_]+)\([^;]*meta' 2>/dev/null)
  [ -z "$hits" ] || { echo "  meta read by key: $hits"; return 1; }
}
check "no meta.json field read by key outside search_spaces/model.c" meta_reads

# 3. Nets are built with the IR's builder, not written as JSON strings.
json_nets() {
  local hits
  hits=$(all_sources | xargs grep -nE '\\"op\\"[[:space:]]*:[[:space:]]*\\"' 2>/dev/null)
  [ -z "$hits" ] || { echo "  a net as a JSON string: $hits"; return 1; }
}
check "no net described as a JSON string in library or cli code" json_nets

# 4. One seeded non-cryptographic generator (common's pinas_rng).
one_rng() {
  local n
  n=$(all_sources | xargs grep -l '0xbf58476d1ce4e5b9\|6364136223846793005' 2>/dev/null | wc -l)
  [ "$n" -eq 0 ] || { echo "  a generator of its own (splitmix64 or an LCG) in: $(all_sources | xargs grep -l '0xbf58476d1ce4e5b9\|6364136223846793005')"; return 1; }
  grep -q '0xbf58476d1ce4e5b9' common/pinas_common.h
}
check "one seeded generator: splitmix64 in common/pinas_common.h, no other in library or cli code" one_rng

# 5. No library or cli function over 120 lines (a function starts at a column-0 signature and ends at
#    the next column-0 closing brace).
long_functions() {
  awk 'FNR == 1 { start = 0 }
       /^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ && !/^(typedef|struct|enum|static const|const)[^(]*=/ && !/^#/ { if (!start) { start = FNR; name = $0 } }
       /^}/ { if (start) { n = FNR - start + 1; if (n > 120) { printf "  %s:%d: %d lines: %s\n", FILENAME, start, n, name; bad = 1 } start = 0 } }
       END { exit bad }' $(all_sources)
}
check "no function over 120 lines" long_functions

# 6. Every status-returning public function carries PINAS_WUR (except the error setters pinas_error,
#    pinas_error_prefix, pinas_torch_error, which return the code they are given so that callers can
#    `return pinas_error(...)`).
wur() {
  awk '/^pinas_status [a-z_0-9]+\(/ && !/^pinas_status [a-z_]*_error(_prefix)?\(/ { decl = $0; file = FILENAME; line = FNR; while (decl !~ /;/ && (getline more) > 0) decl = decl " " more;
                                   if (decl !~ /PINAS_WUR/) { sub(/\(.*/, "", decl); printf "  %s:%d: %s lacks PINAS_WUR\n", file, line, decl; bad = 1 } }
       END { exit bad }' $(find $LIB_DIRS -name 'pinas_*.h' | sort)
}
check "PINAS_WUR on every status-returning public function" wur

# 7. The cost model and its tests link without libtorch.
no_torch() {
  local t=$BUILD/test_latency_model_lut
  [ -x "$t" ] || { echo "  $t not built"; return 1; }
  ! ldd "$t" | grep -q torch || { echo "  $t links libtorch"; return 1; }
}
check "test_latency_model_lut links without libtorch" no_torch

# 8. The pinas users and parties run links no libtorch (a party starts at a few MB); the commands that
#    need it run in pinas-torch next to it (the light pinas execs it), with a clear error without it.
light_pinas() {
  ldd "$PINAS" >"$T/ldd" || { echo "  ldd $PINAS failed"; return 1; }
  [ "$(grep -c torch "$T/ldd")" -eq 0 ] || { echo "  $PINAS links: $(grep torch "$T/ldd" | head -3)"; return 1; }
  "$PINAS" --help | grep -q '^  search ' || { echo "  pinas --help does not list search"; return 1; }
  "$PINAS" train --help >"$T/out" 2>&1 && grep -q 'usage: pinas train' "$T/out" || { echo "  pinas train --help (through pinas-torch):"; head -3 "$T/out"; return 1; }
  "$PINAS" bench train --help >"$T/out" 2>&1 && grep -q 'usage: pinas bench train' "$T/out" || { echo "  pinas bench train --help:"; head -3 "$T/out"; return 1; }
  cp "$PINAS" "$T/pinas" && expect_rc 1 "$T/pinas" search --help && has "pinas-torch, which is missing" "$T/err" &&
    has "$T/pinas-torch" "$T/err" && expect_rc 0 "$T/pinas" space --help
}
check "pinas links no libtorch; search/train/bench train run through pinas-torch, a clear error without it" light_pinas

e2e_done e2e_structure
