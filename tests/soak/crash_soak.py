#!/usr/bin/python3
"""Crash soak: the crash rounds of tests/integration/test_snapshot_crash.py, many more of them.

    BLOCKSNAP_BUILD=build /usr/bin/python3 tests/soak/crash_soak.py [--rounds N] [--seed S]

Each round: a random-write load over libnbd, kill -9 of blocksnapd after a random number of
acknowledged writes, restart on the same data dir, snapshot, dump: the dump must equal the
volume file. Every 10th round also kills while a snapshot is pending. Exit 0 when every
round passed; the failing round's seed and the daemon log otherwise.
"""
import argparse
import os
import pathlib
import random
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE.parent / "integration"))

from harness import Daemon  # noqa: E402
from test_snapshot_common import MiB, create_volume, snapshot, write  # noqa: E402
from test_snapshot_crash import SIZE, crash_round  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-soak-") as tmp:
        tmp = pathlib.Path(tmp)
        d = Daemon(tmp / "d")
        d.tmp.mkdir(parents=True)
        d.start()
        try:
            create_volume(d, "v", SIZE)
            write(d, "v", [(0, os.urandom(SIZE))])
            snapshot(d, "v")
            kept = []
            for i in range(args.rounds):
                if i % 10 == 9:
                    write(d, "v", [(0, os.urandom(4 * MiB))])
                    sid = d.ctl("snapshot", "create", "v").stdout.strip()
                    d.kill9()
                    d.start()
                    rec = d.ctl_json("snapshot", "show", sid)
                    assert rec["state"] in ("error", "completed"), rec
                rec = crash_round(d, rng, tmp)
                kept.append(rec["id"])
                if len(kept) > 5:
                    d.ctl("snapshot", "delete", kept.pop(0))
                print(f"round {i + 1}/{args.rounds} ok ({rec['id']})", flush=True)
        except BaseException:
            print(f"FAILED (seed {args.seed}); daemon log tail:\n{d.log_text()[-8000:]}",
                  file=sys.stderr)
            raise
        finally:
            if d.proc is not None:
                d.stop()
    print(f"all {args.rounds} rounds passed (seed {args.seed})")


if __name__ == "__main__":
    main()
