"""The benchmark harness must not rot: --quick runs every section and produces every figure.
It asserts that numbers were measured, never how large they are (speed lives in tests/bench)."""
import math
import re
import subprocess
import sys

from conftest import REPO


def test_bench_quick_produces_every_figure(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    p = subprocess.run([sys.executable, str(REPO / "tests" / "bench" / "bench.py"), "--quick",
                        "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    report = out.read_text()
    assert "| CPU |" in report and "| kernel |" in report
    rows = [line for line in report.splitlines()
            if line.startswith("| ") and re.search(r"\| \d+ \|", line)]
    assert rows, report
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # Every measured cell is a number (a ratio ends in ×): no blanks, no NaN. Sizes are
        # never checked; a figure may be 0 (e.g. the bytes added by a 0% change).
        for cell in cells[2:]:
            value = float(cell.rstrip("×"))
            assert math.isfinite(value) and value >= 0, row
    for section in ("## NBD I/O", "## Dirty tracking overhead", "## Snapshot pause",
                    "## Snapshot throughput", "## Incremental cost", "## Storage efficiency",
                    "## Writes during a pending snapshot", "## Restore", "## Delete"):
        assert section in report, section
