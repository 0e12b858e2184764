#!/usr/bin/python3
"""blocksnap benchmarks: blocksnapd against qemu-nbd and nbdkit, measured side by side in one
run, reported as ratios in a Markdown file (docs/BENCHMARKS.md by default).

    tests/bench/bench.py                 # the whole benchmark (< 10 minutes on 2 cores)
    tests/bench/bench.py --quick         # < 1 minute: proves the harness works
    tests/bench/bench.py --out FILE --disk-dir DIR

Figures are measurements, never assertions: the suite runs --quick and checks only that every
figure was produced.
"""
import argparse
import datetime
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fio_jobs  # noqa: E402
import peers  # noqa: E402
import snapshot_bench  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


def machine_info(disk_dir):
    cpu = "unknown"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    src = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", str(disk_dir)],
                         capture_output=True, text=True).stdout.strip()
    return {"CPU": cpu, "cores": str(os.cpu_count()), "kernel": platform.release(),
            "disk (data dir)": f"{src} at {disk_dir}", "tmpfs": "/dev/shm"}


def fill_volume(uri, image):
    subprocess.run(["nbdcopy", "--flush", str(image), uri], check=True, timeout=600)


def io_section(args, storages, report):
    """NBD I/O: every job, every server, every storage, 1 and 4 connections."""
    jobs = fio_jobs.JOBS[:2] if args.quick else fio_jobs.JOBS
    conn_counts = [1] if args.quick else [1, 4]
    rows = []
    for storage_name, base in storages:
        work = pathlib.Path(tempfile.mkdtemp(prefix="bsbench-", dir=base))
        servers = []
        try:
            image = work / "peer.img"
            # Random bytes, so that reads hit data, not holes.
            snapshot_bench.write_file(image, args.size_bytes, "random")
            servers = [peers.Blocksnapd(work / "bsd", args.size)]
            peer_kinds = [("qemu-nbd writeback", peers.qemu_nbd("writeback"))]
            if storage_name != "tmpfs" and not args.quick:  # O_DIRECT is not possible on tmpfs
                peer_kinds.append(("qemu-nbd none", peers.qemu_nbd("none")))
            peer_kinds.append(("nbdkit file", peers.nbdkit_file))
            for i, (name, argv) in enumerate(peer_kinds):
                # One image each (the servers run side by side, and qemu-nbd locks its
                # image), created empty like blocksnapd's volume.
                own = work / f"peer{i}.img"
                with open(own, "wb") as f:
                    f.truncate(args.size_bytes)
                servers.append(peers.Peer(name, argv, own))
            for server in servers:
                server.start()
            # Every server writes its own copy of the same bytes, so each image's page cache
            # is laid out by the server that reads it back (a file made by copy_file_range
            # read ~10% faster through the same nbdkit than one made by write()).
            for server in servers:
                fill_volume(server.uri(), image)
            image.unlink()
            results = measure_cells(args, storage_name, servers, jobs, conn_counts)
            rows.append((storage_name, servers, jobs, conn_counts, results))
        finally:
            for server in servers:
                server.stop()
            shutil.rmtree(work, ignore_errors=True)
    return io_report(args, rows, report)


def measure_cells(args, storage_name, servers, jobs, conn_counts):
    """Runs every (job, conns) cell on every server, the servers of one cell back to back, in
    args.rounds rounds whose server order alternates (A B C, then C B A): a drift of the
    machine during the run then weighs alike on every server. Returns
    {(server name, job name, conns): [Figures of each round]}."""
    results = {}
    for rnd in range(args.rounds):
        order = servers if rnd % 2 == 0 else servers[::-1]
        for job in jobs:
            for conns in conn_counts:
                for server in order:
                    pid = server_pid(server)
                    cpu0, t0 = process_cpu_seconds(pid), time.monotonic()
                    fig = fio_jobs.run_fio(server.uri(), job, args.size, args.runtime, conns)
                    # The server's CPU over the whole fio run (ramp included) per I/O, the
                    # I/Os estimated at the measured rate over that time.
                    ios = fig.iops * (time.monotonic() - t0)
                    fig.server_cpu_us = ((process_cpu_seconds(pid) - cpu0) * 1e6 / ios
                                         if ios else float("nan"))
                    results.setdefault((server.name, job.name, conns), []).append(fig)
                    print(f"  {storage_name:5} r{rnd + 1} {server.name:20} {job.name:24} "
                          f"x{conns}: {fig.iops:9.0f} IOPS {fig.mbps:8.1f} MB/s "
                          f"p99 {fig.p99_us:8.0f} us fio cpu {fig.client_cpu:4.0f}% "
                          f"server {fig.server_cpu_us:6.1f} us/IO", flush=True)
    return results


def io_report(args, rows, report):
    report.append("## NBD I/O (fio, nbd engine)\n")
    rounds = (f"the mean of {args.rounds} runs, the servers of a cell run back to back in "
              "alternating order (A B C, then C B A)" if args.rounds > 1 else "one run")
    report.append(f"Image {args.size}, every server on its own copy on the same storage, all "
                  f"running at once and measured one at a time. Each figure is {rounds} of "
                  f"{args.runtime}s after a {fio_jobs.RAMP_S}s ramp. IOPS, MB/s and p99 "
                  "completion latency; "
                  "ratio = blocksnapd IOPS / peer IOPS"
                  + (", with the lowest and highest ratio of the rounds (round by round) in "
                     "brackets" if args.rounds > 1 else "")
                  + ". fio CPU = the client's own CPU time during blocksnapd's runs (usr + "
                  "sys, % of one core): near 100% with one connection means fio, not the "
                  "server, sets the pace (one client thread on a 2-core machine), and every "
                  "server ends up near the same figure.\n")
    for storage_name, servers, jobs, conn_counts, results in rows:
        peer_names = [s.name for s in servers if s.name != "blocksnapd"]
        cells = [(job, conns) for job in jobs for conns in conn_counts]

        def fig(name, cell):
            return mean_figures(results[(name, cell[0].name, cell[1])])

        def iops_peer(b, f):
            text = f"{f.iops:.0f} | {f.p99_us:.0f} | {ratio(b.iops, f.iops):.2f}×"
            if len(b.rounds) > 1:
                per_round = [ratio(x.iops, y.iops) for x, y in zip(b.rounds, f.rounds)]
                text += f" ({min(per_round):.2f}–{max(per_round):.2f})"
            return text

        report.append(f"### on {storage_name}\n")
        report += peer_table(cells, peer_names, fig,
                             "blocksnapd IOPS | MB/s | p99 µs | fio CPU %",
                             lambda b: f"{b.iops:.0f} | {b.mbps:.1f} | {b.p99_us:.0f} "
                                       f"| {b.client_cpu:.0f}",
                             "IOPS | p99 µs | ratio", iops_peer)
        report.append("")
        # When fio is the bottleneck every server lands near the same IOPS; the CPU each
        # server spent per request still tells them apart.
        report.append(f"Server CPU per I/O on {storage_name}, same runs: µs of user + system "
                      "time of the server process, as the kernel accounts it (on loopback part "
                      "of each side's TCP work runs in the other's context, alike for every "
                      "server). Ratio = blocksnapd / peer: below 1, blocksnapd spent less.\n")

        def cpu_peer(b, f):
            b, f = b.server_cpu_us, f.server_cpu_us
            return f"{f:.1f} | {ratio(b, f):.2f}"

        report += peer_table(cells, peer_names, fig, "blocksnapd µs",
                             lambda b: f"{b.server_cpu_us:.1f}", "µs | ratio", cpu_peer)
        report.append("")
    return sum(len(r[4]) for r in rows)


def ratio(a, b):
    return a / b if b else float("nan")


def mean_figures(runs):
    """The mean of each figure over the rounds; .rounds keeps the runs themselves."""
    mean = fio_jobs.Figures(*(sum(getattr(r, k) for r in runs) / len(runs)
                              for k in ("iops", "mbps", "p99_us", "client_cpu",
                                        "server_cpu_us")))
    mean.rounds = runs
    return mean


def peer_table(cells, peer_names, fig, own_head, own, peer_head, peer):
    """Markdown rows: one per (job, conns) cell; blocksnapd's columns, then each peer's.
    own(b) and peer(b, f) return " | "-joined cells for blocksnapd's figures b and a peer's f."""
    width = lambda head: head.count("|") + 1  # noqa: E731
    header = f"| job | conns | {own_head} |" + "".join(
        f" {p} {peer_head} |" for p in peer_names)
    sep = "|---|---|" + "---|" * width(own_head) + "---|" * width(peer_head) * len(peer_names)
    lines = [header, sep]
    for cell in cells:
        b = fig("blocksnapd", cell)
        line = f"| {cell[0].name} | {cell[1]} | {own(b)} |"
        line += "".join(f" {peer(b, fig(p, cell))} |" for p in peer_names)
        lines.append(line)
    return lines


def server_pid(server):
    return server.daemon.proc.pid if isinstance(server, peers.Blocksnapd) else server.proc.pid


def process_cpu_seconds(pid):
    """User + system CPU of every thread of the process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SECTIONS = [io_section] + snapshot_bench.SECTIONS


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a sub-minute run of every section")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"))
    ap.add_argument("--disk-dir", default="/var/tmp", help="directory on the data disk")
    ap.add_argument("--only", action="append", metavar="SECTION",
                    help="run only the sections whose function name starts with SECTION "
                         "(io, tracking, pause, throughput, cbw, restore, delete); "
                         "repeatable; for profiling, the report then holds just those")
    args = ap.parse_args()
    args.size = "256M" if args.quick else "1G"
    args.size_bytes = (256 if args.quick else 1024) << 20
    args.runtime = 1 if args.quick else 1.75
    args.rounds = 1 if args.quick else 2

    storages = [("tmpfs", "/dev/shm")]
    if not args.quick:
        storages.append(("disk", args.disk_dir))

    info = machine_info(args.disk_dir)
    report = ["# blocksnap benchmarks\n",
              f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} with "
              f"`tests/bench/bench.py{' --quick' if args.quick else ''}`.\n",
              "| machine | |", "|---|---|"]
    report += [f"| {k} | {v} |" for k, v in info.items()]
    report.append("")
    figures = 0
    started = time.monotonic()
    for section in SECTIONS:
        if args.only and not any(section.__name__.startswith(o) for o in args.only):
            continue
        print(f"== {section.__doc__.splitlines()[0]}", flush=True)
        t = time.monotonic()
        figures += section(args, storages, report)
        print(f"   ({section.__name__}: {time.monotonic() - t:.0f} s)", flush=True)
    took = time.monotonic() - started
    report.append(f"The whole run took {took / 60:.1f} minutes.")
    report.append("")
    pathlib.Path(args.out).write_text("\n".join(report) + "\n")
    print(f"wrote {args.out}: {figures} measurements in {took:.0f} s")
    return 0 if figures else 1


if __name__ == "__main__":
    sys.exit(main())
