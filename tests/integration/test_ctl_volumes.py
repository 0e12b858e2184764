"""blocksnapctl volume commands against a real blocksnapd over its private control socket.

Covers issue 2's volume contract: create, list (text and --json), show, tag/untag, delete;
the sparse image file; persistence across a restart; every error case exits 1 with its
one-line message and changes nothing; usage errors exit 2; the not-running message.
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import CTL

ID_RE = re.compile(r"^vol-[0-9a-f]{16}$")
VOLUME_KEYS = {"id", "name", "size", "chunk_size", "tags", "state", "uri", "clients"}


def ctl_raw(*args, env=None, control=None):
    """Runs blocksnapctl without a daemon fixture (explicit --control when given)."""
    cmd = [str(CTL)] + (["--control", str(control)] if control else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def one_error_line(p):
    """The single stderr line of a failed blocksnapctl, checked to be the only one."""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {p.stderr!r}"
    assert lines[0].startswith("blocksnapctl: "), lines[0]
    return lines[0]


def images(daemon):
    d = daemon.data_dir / "volumes"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def state_of(daemon):
    """Everything a failed command must leave alone: the volume list and the image files."""
    return daemon.ctl_json("volume", "list"), images(daemon)


# -- create, list, show -------------------------------------------------------------------

def test_create_prints_id_and_makes_a_sparse_image(daemon):
    p = daemon.ctl("volume", "create", "demo", "--size", "1G")
    vol_id = p.stdout.strip()
    assert ID_RE.match(vol_id), p.stdout
    img = daemon.data_dir / "volumes" / f"{vol_id}.img"
    st = img.stat()
    assert st.st_size == 1 << 30
    assert st.st_blocks == 0, "a new volume must allocate nothing"


def test_create_with_chunk_size_and_tags(daemon):
    v = daemon.ctl_json("volume", "create", "db", "--size", "64M", "--chunk-size", "1M",
                        "--tag", "env=prod", "--tag", "tier=gold")
    assert VOLUME_KEYS <= set(v)
    assert ID_RE.match(v["id"])
    assert v["name"] == "db"
    assert v["size"] == 64 << 20
    assert v["chunk_size"] == 1 << 20
    assert v["tags"] == {"env": "prod", "tier": "gold"}
    assert v["state"] == "available"
    assert v["uri"] == daemon.uri("db")
    assert v["clients"] == []


def test_default_chunk_size_is_64k(daemon):
    v = daemon.ctl_json("volume", "create", "d", "--size", "4M")
    assert v["chunk_size"] == 64 << 10


def test_list_text_is_an_aligned_table(daemon):
    daemon.ctl("volume", "create", "alpha", "--size", "1G", "--tag", "env=prod")
    daemon.ctl("volume", "create", "a-much-longer-name", "--size", "4M", "--chunk-size", "4K")
    lines = daemon.ctl("volume", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "CHUNK", "STATE", "TAGS"]
    assert len(lines) == 3
    # Every column starts at the same offset on every line.
    for header in ["ID", "SIZE", "CHUNK", "STATE", "TAGS"]:
        col = lines[0].index(header)
        for line in lines[1:]:
            assert line[col - 2:col] == "  " and line[col] != " ", (header, lines)
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["alpha"][2:4] == ["1", "GiB"] and rows["alpha"][-1] == "env=prod"
    assert rows["a-much-longer-name"][-1] == "-"
    assert all(ID_RE.match(r[1]) for r in rows.values())


def test_list_json_is_an_array_of_volume_objects(daemon):
    assert daemon.ctl_json("volume", "list") == []
    daemon.ctl("volume", "create", "b", "--size", "8M")
    daemon.ctl("volume", "create", "a", "--size", "4M", "--tag", "k=v")
    vols = daemon.ctl_json("volume", "list")
    assert [v["name"] for v in vols] == ["a", "b"]
    for v in vols:
        assert VOLUME_KEYS <= set(v)
    assert vols[0]["size"] == 4 << 20 and vols[0]["tags"] == {"k": "v"}
    assert vols[1]["size"] == 8 << 20 and vols[1]["tags"] == {}


def test_show_text_and_json(daemon):
    vol_id = daemon.ctl("volume", "create", "demo", "--size", "1G", "--tag", "env=prod")
    vol_id = vol_id.stdout.strip()
    text = daemon.ctl("volume", "show", "demo").stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["Name"] == "demo"
    assert fields["ID"] == vol_id
    assert fields["Size"] == "1 GiB (1073741824 bytes)"
    assert fields["Chunk size"] == "64 KiB"
    assert fields["State"] == "available"
    assert fields["Tags"] == "env=prod"
    assert fields["URI"] == daemon.uri("demo")
    assert fields["Clients"] == "none"

    v = daemon.ctl_json("volume", "show", "demo")
    assert v["id"] == vol_id and v["name"] == "demo" and v["size"] == 1 << 30
    # By id too.
    assert daemon.ctl_json("volume", "show", vol_id) == v
    # The same object as in the list.
    assert daemon.ctl_json("volume", "list") == [v]


def test_json_flag_after_the_subcommand(daemon):
    daemon.ctl("volume", "create", "demo", "--size", "4M")
    p = daemon.ctl("volume", "list", "--json")
    assert p.stdout.lstrip().startswith("[")


# -- tag, untag, delete -------------------------------------------------------------------

def test_tag_and_untag(daemon):
    daemon.ctl("volume", "create", "demo", "--size", "4M", "--tag", "a=1", "--tag", "b=2")
    daemon.ctl("volume", "tag", "demo", "c=3", "a=9")
    assert daemon.ctl_json("volume", "show", "demo")["tags"] == {"a": "9", "b": "2", "c": "3"}
    daemon.ctl("volume", "tag", "demo", "d=4", "--untag", "a", "--untag", "b")
    assert daemon.ctl_json("volume", "show", "demo")["tags"] == {"c": "3", "d": "4"}
    daemon.ctl("volume", "untag", "demo", "c")
    assert daemon.ctl_json("volume", "show", "demo")["tags"] == {"d": "4"}
    # Removing a key that is not there is not an error.
    daemon.ctl("volume", "untag", "demo", "nope")
    v = daemon.ctl_json("volume", "tag", "demo", "e=")
    assert v["tags"] == {"d": "4", "e": ""}
    assert "d=4,e=" in daemon.ctl("volume", "list").stdout


def test_delete_removes_record_and_image(daemon):
    keep = daemon.ctl("volume", "create", "keep", "--size", "4M").stdout.strip()
    gone = daemon.ctl("volume", "create", "gone", "--size", "4M").stdout.strip()
    assert images(daemon) == sorted([f"{keep}.img", f"{gone}.img"])
    p = daemon.ctl("volume", "delete", "gone")
    assert p.stdout == ""
    assert [v["name"] for v in daemon.ctl_json("volume", "list")] == ["keep"]
    assert images(daemon) == [f"{keep}.img"]
    # --json prints what was deleted; --force is accepted without clients.
    v = daemon.ctl_json("volume", "delete", "keep", "--force")
    assert v["id"] == keep
    assert daemon.ctl_json("volume", "list") == []
    assert images(daemon) == []


def test_a_deleted_name_can_be_reused(daemon):
    first = daemon.ctl("volume", "create", "demo", "--size", "4M").stdout.strip()
    daemon.ctl("volume", "delete", "demo")
    second = daemon.ctl("volume", "create", "demo", "--size", "8M").stdout.strip()
    assert second != first
    assert daemon.ctl_json("volume", "show", "demo")["size"] == 8 << 20


def test_volumes_survive_a_restart(daemon):
    daemon.ctl("volume", "create", "demo", "--size", "1G", "--tag", "env=prod")
    daemon.ctl("volume", "create", "db", "--size", "64M", "--chunk-size", "128K")
    daemon.ctl("volume", "tag", "db", "owner=me")
    before = daemon.ctl_json("volume", "list")
    daemon.restart()
    assert daemon.ctl_json("volume", "list") == before
    # And they stay usable: a new volume gets a fresh id.
    new_id = daemon.ctl("volume", "create", "after", "--size", "4M").stdout.strip()
    assert new_id not in {v["id"] for v in before}


# -- errors: exit 1, one line, nothing changed --------------------------------------------

ERROR_CASES = [
    ("duplicate name", ["volume", "create", "existing", "--size", "4M"],
     "volume 'existing' already exists"),
    ("size not a multiple of 4096", ["volume", "create", "x", "--size", "1000"],
     "invalid size 1000"),
    ("size with a bad suffix", ["volume", "create", "x", "--size", "10X"], "'10X'"),
    ("size zero", ["volume", "create", "x", "--size", "0"], "invalid size 0"),
    ("chunk size not a power of two", ["volume", "create", "x", "--size", "4M",
                                       "--chunk-size", "3000"], "invalid chunk size 3000"),
    ("chunk size too large", ["volume", "create", "x", "--size", "64M", "--chunk-size", "8M"],
     "invalid chunk size"),
    ("empty name", ["volume", "create", "", "--size", "4M"], "invalid volume name ''"),
    ("65-character name", ["volume", "create", "a" * 65, "--size", "4M"],
     "must be 1 to 64 characters"),
    ("name with a slash", ["volume", "create", "a/b", "--size", "4M"],
     "invalid volume name 'a/b'"),
    ("bad tag", ["volume", "create", "x", "--size", "4M", "--tag", "novalue"], "novalue"),
    ("reserved tag", ["volume", "create", "x", "--size", "4M", "--tag", "blocksnap:x=1"],
     "blocksnap:"),
    ("show unknown", ["volume", "show", "nope"], "volume 'nope' not found"),
    ("delete unknown", ["volume", "delete", "nope"], "volume 'nope' not found"),
    ("delete unknown --force", ["volume", "delete", "nope", "--force"],
     "volume 'nope' not found"),
    ("tag unknown", ["volume", "tag", "nope", "a=b"], "volume 'nope' not found"),
    ("untag unknown", ["volume", "untag", "nope", "a"], "volume 'nope' not found"),
    ("tag with a bad key", ["volume", "tag", "existing", "a b=c"], "invalid tag key"),
]


@pytest.mark.parametrize("args,message", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_error_exits_1_with_its_message_and_changes_nothing(daemon, args, message):
    daemon.ctl("volume", "create", "existing", "--size", "4M", "--tag", "k=v")
    before = state_of(daemon)
    for json_flag in (False, True):
        p = daemon.ctl(*args, check=False, json_out=json_flag)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert message in one_error_line(p), p.stderr
        assert p.stdout == ""
        assert state_of(daemon) == before


USAGE_CASES = [
    ["volume"],
    ["volume", "create", "x"],                       # --size is required
    ["volume", "create", "--size", "4M"],            # NAME is required
    ["volume", "frobnicate"],
    ["volume", "list", "--bogus"],
    ["volume", "tag", "x"],                          # nothing to set or unset
    ["volume", "untag", "x"],                        # no key
    ["volume", "create", "x", "--size", "4M", "--tag", "a=1", "b=2"],  # one value per --tag
]


@pytest.mark.parametrize("args", USAGE_CASES, ids=[" ".join(a) for a in USAGE_CASES])
def test_usage_errors_exit_2(daemon, args):
    before = state_of(daemon)
    p = daemon.ctl(*args, check=False)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.startswith("blocksnapctl: ")
    assert state_of(daemon) == before


def test_help_exits_0():
    p = ctl_raw("--help")
    assert p.returncode == 0 and "volume" in p.stdout
    p = ctl_raw("volume", "create", "--help")
    assert p.returncode == 0 and "--chunk-size" in p.stdout


# -- reaching the daemon ------------------------------------------------------------------

def test_not_running_message(tmp_path):
    path = tmp_path / "control.sock"
    p = ctl_raw("volume", "list", control=path)
    assert p.returncode == 1
    assert one_error_line(p) == (f"blocksnapctl: cannot connect to blocksnapd at {path}: "
                                 "No such file or directory")


def test_stale_socket_is_connection_refused(tmp_path):
    path = tmp_path / "control.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # bound, never listening: what a crashed daemon leaves
    try:
        p = ctl_raw("volume", "list", control=path)
    finally:
        s.close()
    assert p.returncode == 1
    assert one_error_line(p) == (f"blocksnapctl: cannot connect to blocksnapd at {path}: "
                                 "Connection refused")


def test_after_the_daemon_stops(daemon):
    daemon.stop()
    p = daemon.ctl("volume", "list", check=False)
    assert p.returncode == 1
    assert f"cannot connect to blocksnapd at {daemon.control_path}: " in one_error_line(p)


def test_control_path_from_environment(daemon):
    daemon.ctl("volume", "create", "demo", "--size", "4M")
    p = ctl_raw("--json", "volume", "list", env={"BLOCKSNAP_CONTROL": str(daemon.control_path)})
    assert p.returncode == 0, p.stderr
    assert '"demo"' in p.stdout
    # --control wins over the environment.
    p = ctl_raw("volume", "list", control=daemon.control_path,
                env={"BLOCKSNAP_CONTROL": "/nonexistent/control.sock"})
    assert p.returncode == 0, p.stderr


def test_default_control_path_follows_xdg_runtime_dir(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "BLOCKSNAP_CONTROL": ""}
    # A copy any user may run: the build tree may sit where "nobody" cannot enter.
    bindir = tempfile.mkdtemp(prefix="blocksnap-bin-")
    try:
        os.chmod(bindir, 0o755)
        ctl = shutil.copy2(CTL, bindir)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            ctl, "volume", "list"], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, **env))
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
    assert p.returncode == 1
    assert f"cannot connect to blocksnapd at {tmp_path}/blocksnap/control.sock: " in p.stderr


def test_default_control_path_without_environment(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "BLOCKSNAP_CONTROL": ""}
    expected = ("/run/blocksnap/control.sock" if os.geteuid() == 0
                else f"{tmp_path}/blocksnap/control.sock")
    p = ctl_raw("volume", "list", env=env)
    # A system daemon may answer as root; otherwise the message names the default path.
    if p.returncode != 0:
        assert f"cannot connect to blocksnapd at {expected}: " in one_error_line(p)


# -- attached NBD clients -----------------------------------------------------------------

def test_clients_are_shown_and_delete_needs_force(daemon):
    import nbd  # Debian's python3-libnbd, in /usr/bin/python3

    vol_id = daemon.ctl("volume", "create", "demo", "--size", "4M").stdout.strip()
    h = nbd.NBD()
    try:
        h.connect_uri(daemon.uri("demo"))
        # The loop registers a client before it handles its first request: once a reply came
        # back, the client is listed.
        h.pread(512, 0)
        clients = daemon.ctl_json("volume", "show", "demo")["clients"]
        assert len(clients) == 1 and clients[0]["export"] == "demo"
        assert clients[0]["address"].startswith("127.0.0.1:")
        text = daemon.ctl("volume", "show", "demo").stdout
        assert re.search(r"^Clients:\s+1$", text, re.M), text
        assert "export demo since " in text

        before = state_of(daemon)
        p = daemon.ctl("volume", "delete", "demo", check=False)
        assert p.returncode == 1
        assert "connected client" in one_error_line(p)
        assert state_of(daemon) == before

        daemon.ctl("volume", "delete", "demo", "--force")
        assert daemon.ctl_json("volume", "list") == []
        assert not (daemon.data_dir / "volumes" / f"{vol_id}.img").exists()
        with pytest.raises(nbd.Error):
            h.pread(4096, 0)
    finally:
        del h  # closes the handle (the binding has no explicit close)


def test_concurrent_clients(daemon):
    """Many blocksnapctl processes at once, each on its own control connection: distinct
    names all succeed, one contested name is won exactly once."""
    def spawn(*args):
        return subprocess.Popen([str(CTL), "--control", str(daemon.control_path), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [spawn("volume", "create", f"v{i}", "--size", "4M") for i in range(12)]
    procs += [spawn("volume", "create", "contested", "--size", "4M") for _ in range(12)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in results[:12]), results[:12]
    contested = results[12:]
    assert sum(code == 0 for code, _, _ in contested) == 1, contested
    for code, _, err in contested:
        assert code == 0 or err == "blocksnapctl: volume 'contested' already exists\n", err
    vols = daemon.ctl_json("volume", "list")
    assert sorted(v["name"] for v in vols) == sorted([f"v{i}" for i in range(12)] + ["contested"])
    assert len(images(daemon)) == 13
