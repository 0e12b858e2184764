#!/usr/bin/env bash
# The test suite against an AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
# build: unit tests and integration tests, the daemons those start included. Fails if any
# test fails or if any sanitizer wrote a report, and prints the reports.
#   scripts/sanitize.sh [pytest args...]      e.g. scripts/sanitize.sh -k dbus
# Not part of tests/run.sh: a second full build takes longer than the rest of the suite.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BLOCKSNAP_SANITIZE_BUILD:-$PWD/build-sanitize}

scripts/install-deps.sh test || exit 1
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false || exit 1
fi
ninja -C "$build" || exit 1

# Reports go to files, so that a daemon's report is not lost in its captured stderr. Some
# tests run the daemon as "nobody": the directory must be writable by everyone.
logs=$(mktemp -d /tmp/blocksnap-sanitize-XXXXXX)
chmod 1777 "$logs"
export ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$logs/ubsan"

meson test -C "$build" --suite unit --num-processes 2 --print-errorlogs
unit=$?
# LeakSanitizer stops the world with ptrace, which the unit's syscall filter forbids: the
# tests that run the daemon under that filter cannot run here.
BLOCKSNAP_BUILD=$build /usr/bin/python3 -m pytest tests/integration -p no:cacheprovider -q -rfE \
  --timeout=600 --ignore tests/integration/test_systemd_sandbox.py "$@"
integration=$?

status=0
if compgen -G "$logs/*" >/dev/null; then
  echo "== sanitizer reports ($logs):"
  cat "$logs"/*
  status=1
else
  rm -rf "$logs"
  echo "== no sanitizer reports"
fi
((unit == 0 && integration == 0)) || status=1
exit $status
