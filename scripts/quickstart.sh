#!/usr/bin/env bash
# Builds blocksnapd and runs it in the foreground on an embedded default: a data directory
# under ./demo-data, a 1 GiB volume "demo" served over NBD on 127.0.0.1:10809, and a default
# snapshot policy. Ctrl-C stops it; running it again reuses the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scripts/install-deps.sh build
# Its own build dir: the test suite's build/ has tests on (and needs GoogleTest).
build=$repo/build-quickstart
[[ -f $build/build.ninja ]] || meson setup "$build" -Dtests=false
ninja -C "$build" daemon/blocksnapd daemon/ctl/blocksnapctl

demo=$repo/demo-data
mkdir -p "$demo/policies.d"
cat >"$demo/blocksnapd.yaml" <<YAML
# The quick start's embedded default. See README.md for every setting.
data_dir: $demo/data
runtime_dir: $demo/run
policy_dir: $demo/policies.d
listen: ["127.0.0.1:10809"]
bus: none
volumes:
  - name: demo
    size: 1G
    tags: {backup: hourly}
YAML
cat >"$demo/policies.d/demo-hourly.yaml" <<YAML
name: demo-hourly
description: Hourly snapshots of volumes tagged backup=hourly, kept for a day
enabled: true
target:
  tags: {backup: hourly}
schedules:
  - name: hourly
    create: {every: 1h}
    retain: {age: 1d, count: 24}
YAML

ctl="$build/daemon/ctl/blocksnapctl --control $demo/run/control.sock"
cat <<TXT

blocksnapd is starting with $demo/blocksnapd.yaml (Ctrl-C to stop).
  NBD:     nbd://127.0.0.1:10809/demo   (unix: nbd+unix:///demo?socket=$demo/run/nbd.sock)
           e.g.  nbdinfo nbd://127.0.0.1:10809/demo
                 nbd-client 127.0.0.1 10809 /dev/nbd0 -N demo
  Control: $ctl volume list

TXT
exec "$build/daemon/blocksnapd" --config "$demo/blocksnapd.yaml"
