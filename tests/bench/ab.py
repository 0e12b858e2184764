#!/usr/bin/env python3
"""A/B of two blocksnapd variants, with nbdkit beside them: the before/after figures of
docs/BENCHMARKS.md. One fio job (tests/bench/fio_jobs.py), many short alternating rounds,
because a single run of a 1 MiB cell on a small VM can be 30% off its neighbours.

  tests/bench/ab.py --job "1M seqread" [--conns 4] [--rounds 6] [--dir /var/tmp]
                    [--b-build DIR] [--b-arg=--io-threads=2] [--b-env NAME=VALUE]

A is the build in $BLOCKSNAP_BUILD (or build/). B is the same binary unless --b-build names
another build directory, started with the --b-arg arguments and --b-env variables on top.
With no B option at all B is identical to A: a null test that shows the spread.

The three servers run at once, each on its own image that it writes through its own export
(as the bench does). Every round runs each server once, back to back, in alternating order
(A B nbdkit, then nbdkit B A). Prints every run, then each server's mean IOPS with the
range of its rounds, its CPU per I/O, and the ratios B / A, A / nbdkit and B / nbdkit.
"""
import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench  # noqa: E402
import fio_jobs  # noqa: E402
import peers  # noqa: E402
import snapshot_bench  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", required=True,
                    help="a fio job of tests/bench/fio_jobs.py, by the start of its name")
    ap.add_argument("--conns", type=int, default=1, help="NBD connections (fio jobs)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runtime", type=int, default=2,
                    help=f"seconds per run, after a {fio_jobs.RAMP_S}s ramp")
    ap.add_argument("--size", default="1G", help="image size (K/M/G suffix)")
    ap.add_argument("--dir", default="/dev/shm", help="where the images live")
    ap.add_argument("--b-build", type=pathlib.Path, help="build directory of B (default: A's)")
    ap.add_argument("--b-arg", action="append", default=[], help="a blocksnapd argument for B")
    ap.add_argument("--b-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for B")
    args = ap.parse_args()
    jobs = [j for j in fio_jobs.JOBS if j.name.startswith(args.job)]
    if len(jobs) != 1:
        ap.error(f"--job must name one of: {', '.join(j.name for j in fio_jobs.JOBS)}")
    args.fio_job = jobs[0]
    shift = {"K": 10, "M": 20, "G": 30}.get(args.size[-1:].upper())
    if shift is None or not args.size[:-1].isdigit():
        ap.error(f"--size takes a number with K, M or G, such as 1G, not {args.size!r}")
    args.size_bytes = int(args.size[:-1]) << shift
    for kv in args.b_env:
        if "=" not in kv:
            ap.error(f"--b-env takes NAME=VALUE, not {kv!r}")
    return args


def summary(results, servers, job, conns):
    """Lines of the means and ratios; results as bench.measure_cells returns them."""
    means = {s.name: bench.mean_figures(results[(s.name, job.name, conns)]) for s in servers}
    lines = []
    for s in servers:
        m = means[s.name]
        iops = [r.iops for r in m.rounds]
        spread = statistics.pstdev(iops) / m.iops * 100 if m.iops else 0.0
        lines.append(f"{s.name:8} {m.iops:10.0f} IOPS ({min(iops):.0f}-{max(iops):.0f}, "
                     f"sd {spread:.1f}%)  server {m.server_cpu_us:7.1f} us/IO  "
                     f"fio cpu {m.client_cpu:3.0f}%")

    def ratio(x, y):
        return means[x].iops / means[y].iops if means[y].iops else float("nan")

    lines.append(f"B / A {ratio('B', 'A'):.3f}   A / nbdkit {ratio('A', 'nbdkit'):.3f}   "
                 f"B / nbdkit {ratio('B', 'nbdkit'):.3f}")
    return lines


def main():
    args = parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bsab-", dir=args.dir))
    servers = []
    try:
        image = work / "fill.img"
        snapshot_bench.write_file(image, args.size_bytes, "random")
        a = peers.Blocksnapd(work / "a", args.size)
        b_binary = (args.b_build / "daemon" / "blocksnapd") if args.b_build else peers.DAEMON
        b = peers.Blocksnapd(work / "b", args.size, args.b_arg,
                             env=dict(kv.split("=", 1) for kv in args.b_env), binary=b_binary)
        a.name, b.name = "A", "B"
        peer_image = work / "nbdkit.img"
        with open(peer_image, "wb") as f:
            f.truncate(args.size_bytes)
        servers = [a, b, peers.Peer("nbdkit", peers.nbdkit_file, peer_image)]
        for server in servers:
            server.start()
        for server in servers:
            bench.fill_volume(server.uri(), image)
        image.unlink()
        results = bench.measure_cells(args, "ab", servers, [args.fio_job], [args.conns])
        for line in summary(results, servers, args.fio_job, args.conns):
            print(line)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
