"""fio over its nbd engine (libnbd in-process, no kernel): the jobs of the benchmark and the
figures taken from fio's JSON output."""
import json
import subprocess
from dataclasses import dataclass


# Seconds of each run that fio leaves out of its figures (connection set-up, first requests).
RAMP_S = 0.25


@dataclass(frozen=True)
class Job:
    name: str
    rw: str
    bs: str
    iodepth: int
    mix_read: int = 0  # percent reads for rw=randrw


JOBS = [
    Job("4k randread QD32", "randread", "4k", 32),
    Job("4k randwrite QD32", "randwrite", "4k", 32),
    Job("64k randrw 70/30 QD16", "randrw", "64k", 16, 70),
    Job("1M seqread QD8", "read", "1M", 8),
    Job("1M seqwrite QD8", "write", "1M", 8),
]


@dataclass
class Figures:
    iops: float
    mbps: float
    p99_us: float
    client_cpu: float = 0.0  # fio's own CPU, usr + sys, in % of one core
    server_cpu_us: float = 0.0  # the server's CPU per I/O (filled in by the caller)


def run_fio(uri, job, size, runtime, conns=1):
    """Runs one fio job against uri with `conns` connections (one libnbd handle per fio job)."""
    cmd = ["fio", "--name=bench", "--ioengine=nbd", f"--uri={uri}", f"--rw={job.rw}",
           f"--bs={job.bs}", f"--iodepth={job.iodepth}", f"--size={size}", "--time_based",
           f"--runtime={round(runtime * 1000)}ms", f"--ramp_time={RAMP_S}", f"--numjobs={conns}",
           "--group_reporting", "--output-format=json", "--randrepeat=0", "--norandommap"]
    if job.mix_read:
        cmd.append(f"--rwmixread={job.mix_read}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=runtime * 10 + 60)
    if p.returncode != 0:
        raise RuntimeError(f"fio failed: {p.stderr.strip()[-500:]}")
    out = json.loads(p.stdout[p.stdout.index("{"):])
    j = out["jobs"][0]
    iops = mbps = 0.0
    p99 = 0.0
    for side in ("read", "write"):
        s = j[side]
        if s["io_bytes"] == 0:
            continue
        iops += s["iops"]
        mbps += s["bw_bytes"] / 1e6
        pct = s.get("clat_ns", {}).get("percentile", {})
        p99 = max(p99, pct.get("99.000000", 0) / 1000.0)
    return Figures(iops, mbps, p99, j.get("usr_cpu", 0.0) + j.get("sys_cpu", 0.0))
