#!/usr/bin/env bash
# `cmake --install` lays out FHS paths (GNUInstallDirs): the binary in
# BINDIR, the config in SYSCONFDIR/yourouter, the man page in MANDIR/man1,
# nothing else (the simulator is not installed). The installed binary must
# accept the installed config. The paths come from the build's own
# configuration (prefix /usr/local here; the Debian package's /usr, /etc is
# checked by scripts/test).
# usage: install.sh CMAKE BUILD_DIR BINDIR SYSCONFDIR MANDIR   (all absolute)
set -euo pipefail
cmake=$1 build=$2 bindir=$3 sysconfdir=$4 mandir=$5
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
DESTDIR=$dest "$cmake" --install "$build" >/dev/null
(cd "$dest" && find . -type f | sort)
[ -x "$dest$bindir/yourouter" ] || fail "no $bindir/yourouter"
[ -f "$dest$sysconfdir/yourouter/yourouter.yaml" ] || fail "no $sysconfdir/yourouter/yourouter.yaml"
[ -f "$dest$mandir/man1/yourouter.1" ] || fail "no $mandir/man1/yourouter.1"
if find "$dest" -name 'yourouter-sim*' | grep -q .; then fail "yourouter-sim installed"; fi
[ "$(find "$dest" -type f | wc -l)" -eq 3 ] || fail "unexpected files installed"
# The packaged config must load with no keys in the environment.
env -u YOUROUTER_MASTER_KEY -u OPENAI_API_KEY -u ANTHROPIC_API_KEY \
  "$dest$bindir/yourouter" check --config "$dest$sysconfdir/yourouter/yourouter.yaml"
echo ok
