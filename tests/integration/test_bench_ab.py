"""The A/B tool of tests/bench must not rot: one short round produces every server's figures
and the three ratios. Never how large they are (speed lives in tests/bench)."""
import math
import re
import subprocess
import sys

from conftest import REPO


def test_ab_round_produces_figures_and_ratios():
    p = subprocess.run([sys.executable, str(REPO / "tests" / "bench" / "ab.py"),
                        "--job", "4k randwrite", "--rounds", "1", "--runtime", "1",
                        "--size", "64M", "--b-arg=--io-threads=1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    for server in ("A", "B", "nbdkit"):
        line = next(l for l in p.stdout.splitlines() if l.startswith(server + " "))
        iops = float(line.split()[1])
        assert math.isfinite(iops) and iops > 0, line
    ratios = re.search(r"B / A ([\d.]+)\s+A / nbdkit ([\d.]+)\s+B / nbdkit ([\d.]+)", p.stdout)
    assert ratios, p.stdout
    assert all(math.isfinite(float(r)) and float(r) > 0 for r in ratios.groups())


def test_ab_refuses_an_unknown_job():
    p = subprocess.run([sys.executable, str(REPO / "tests" / "bench" / "ab.py"),
                        "--job", "no such job"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--job must name one of" in p.stderr and "1M seqread" in p.stderr
