#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs the unit tests (GoogleTest via
# meson test) and the integration tests (pytest against real daemons and real clients), and
# ends with "N passed, N failed" counted from the test reports.
#   tests/run.sh [pytest args...]     e.g. tests/run.sh -k nbd
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${BLOCKSNAP_BUILD:-$repo/build}
export BLOCKSNAP_BUILD=$build

scripts/install-deps.sh test || exit 1
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" "$repo" || exit 1
else
  meson configure "$build" -Dtests=true >/dev/null || exit 1
fi
ninja -C "$build" || { echo "0 passed, 1 failed"; exit 1; }

results=$build/test-results
rm -rf "$results" && mkdir -p "$results/gtest"

echo "== unit tests"
GTEST_OUTPUT="xml:$results/gtest/" meson test -C "$build" --suite unit --print-errorlogs \
  --num-processes 2
echo "== integration tests"
# /usr/bin/python3: Debian's interpreter has the libnbd bindings (the pyenv one on PATH has not).
/usr/bin/python3 -m pytest "$repo/tests/integration" -p no:cacheprovider -q -rfE \
  --timeout=600 --junitxml="$results/pytest.xml" "$@"

/usr/bin/python3 "$repo/tests/summarize.py" "$results" "$build/meson-logs/testlog.json"
