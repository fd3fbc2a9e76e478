#!/usr/bin/env bash
# `yourouter --version`: our version, the configured commit, and each
# library's version as the library reports it at run time, which on the
# build machine must be the version pkg-config found at configure time.
# usage: version.sh BIN VERSION COMMIT NAME=VERSION...
set -euo pipefail
bin=$1 version=$2 commit=$3
shift 3
out=$("$bin" --version)
printf '%s\n' "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
line() { printf '%s\n' "$out" | grep -m1 "^$1 " || fail "no '$1' line"; }
[ "$(printf '%s\n' "$out" | head -n1)" = "yourouter $version" ] || fail "first line is not 'yourouter $version'"
[ "$(line commit)" = "commit $commit" ] || fail "commit line is not 'commit $commit'"
[ "$commit" != "" ] || fail "empty commit"
for kv in "$@"; do
  name=${kv%%=*} want=${kv#*=}
  got=$(line "$name" | cut -d' ' -f2)
  [ "$got" = "$want" ] || fail "$name: --version says '$got', pkg-config found '$want'"
done
# Extra arguments are a usage error, not silently ignored.
if "$bin" --version extra 2>/dev/null; then fail "--version extra succeeded"; fi
echo "ok"
