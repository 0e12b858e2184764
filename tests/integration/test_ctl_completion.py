"""The bash completion offers exactly blocksnapctl's subcommands, so the two cannot drift
apart (it once lacked snapshot tag, dump and verify)."""
import pathlib
import subprocess

import pytest

from conftest import CTL

SCRIPT = (pathlib.Path(__file__).resolve().parents[2] / "packaging" / "completion" /
          "blocksnapctl.bash")


def subcommands(group):
    out = subprocess.run([str(CTL), group, "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    section = out.split("Subcommands:", 1)[1]
    return sorted(line.split()[0] for line in section.splitlines() if line.strip())


def complete(*words):
    """What completing an empty word after `blocksnapctl WORDS...` offers."""
    line = "blocksnapctl " + " ".join(words) + " "
    script = ('source /usr/share/bash-completion/bash_completion; source "$1"; '
              f"COMP_WORDS=(blocksnapctl {' '.join(words)} ''); COMP_CWORD={len(words) + 1}; "
              f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _blocksnapctl; "
              'echo "${COMPREPLY[*]}"')
    p = subprocess.run(["bash", "-c", script, "bash", str(SCRIPT)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return sorted(p.stdout.split())


@pytest.mark.parametrize("group", ["volume", "snapshot", "policy"])
def test_completion_offers_every_subcommand(group):
    assert complete(group) == subcommands(group)
