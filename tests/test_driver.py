"""The driver process (``nutlite driver -a <ups>``): pid file, socket file, -c, -x, ups.conf settings,
dropping root, -k, the core instant commands, and Debian's upsd reading a nutlite driver."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import DATA_DIR, dummy_ups
from test_sockproto import read_dump, user_args

from nutlite.drivers.framework.sockproto import ping_socket

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = (DATA_DIR / "conformance.dev").read_text()


class Setup:
    """A private confpath/statepath with a ups.conf, and driver processes started in it."""

    def __init__(self, base: Path, section: str = "driver = dummy-ups\nport = x.dev\n",
                 files: dict[str, str] | None = None, ups: str = "u") -> None:
        self.base = base
        self.conf, self.state = base / "conf", base / "state"
        self.conf.mkdir(parents=True)
        self.state.mkdir(parents=True)
        self.ups = ups
        for name, text in (files if files is not None else {"x.dev": CONFORMANCE}).items():
            (self.conf / name).write_text(text)
        self.write_conf(section)
        self.procs: list[subprocess.Popen[bytes]] = []

    def write_conf(self, section: str) -> None:
        (self.conf / "ups.conf").write_text(f"[{self.ups}]\n{section}")

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, NUT_CONFPATH=str(self.conf), NUT_STATEPATH=str(self.state),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        env.pop("NUT_ALTPIDPATH", None)
        env.pop("NOTIFY_SOCKET", None)
        return env

    @property
    def sock(self) -> Path:
        return self.state / f"dummy-ups-{self.ups}"

    @property
    def pidfile(self) -> Path:
        return self.state / f"dummy-ups-{self.ups}.pid"

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nutlite", "driver", *args], env=self.env, text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, *args: str, wait: bool = True) -> subprocess.Popen[bytes]:
        log = open(self.base / f"driver{len(self.procs)}.log", "wb")  # noqa: SIM115
        p = subprocess.Popen([sys.executable, "-m", "nutlite", "driver", "-a", self.ups, *args], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(p)
        if wait:
            self.wait_ready(p)
        return p

    def log(self, i: int = -1) -> str:
        n = len(self.procs) - 1 if i < 0 else i
        return (self.base / f"driver{n}.log").read_text(errors="replace")

    def wait_ready(self, p: subprocess.Popen[bytes] | None = None, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not (self.sock.exists() and ping_socket(self.sock, 1.0)):
            if p is not None and p.poll() is not None:
                raise AssertionError(f"driver exited with {p.returncode}:\n{self.log()}")
            assert time.monotonic() < deadline, f"driver not ready:\n{self.log()}"
            time.sleep(0.05)

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.sock))
        s.settimeout(5)
        return s

    def dump(self) -> dict[str, str]:
        from nutlite.parseconf import split_line

        with self.connect() as s:
            s.sendall(b"DUMPALL\n")
            lines = read_dump(s)
        return {w[1]: w[2] for w in (split_line(ln) for ln in lines) if w[0] == "SETINFO"}

    def request(self, line: str, expect: str, timeout: float = 10) -> str:
        with self.connect() as s:
            s.sendall(b"NOBROADCAST\n" + line.encode() + b"\n")
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                for ln in buf.decode().splitlines():
                    if re.match(expect, ln):
                        return ln
                assert time.monotonic() < deadline, f"no {expect!r} in {buf!r}"
                buf += s.recv(4096)

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        pid = None
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def setup(tmp_path: Path):  # noqa: ANN201
    made: list[Setup] = []

    def make(*args: object, **kwargs: object) -> Setup:
        s = Setup(tmp_path / f"s{len(made)}", *args, **kwargs)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rpartition(")")[2].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------------------------------


def test_foreground_pidfile_socket_and_stop(setup) -> None:  # noqa: ANN001
    s = setup()
    p = s.start("-F", *user_args())
    assert int(s.pidfile.read_text()) == p.pid
    st = os.stat(s.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    if os.geteuid() == 0:
        assert grp.getgrgid(st.st_gid).gr_name == "nut"  # as Debian: the socket is for group nut
    assert s.dump()["ups.mfr"] == "ACME"
    r = s.run("-a", "u", "-c", "stop")
    assert r.returncode == 0, r.stderr
    assert p.wait(10) == 0
    assert not s.sock.exists() and not s.pidfile.exists()
    r = s.run("-a", "u", "-c", "stop")
    assert r.returncode == 1 and "pid file" in r.stderr


def test_background_start(setup) -> None:  # noqa: ANN001
    s = setup()
    t0 = time.monotonic()
    r = s.run("-a", "u", *user_args())
    assert r.returncode == 0, r.stderr
    # the parent exits only when the daemon serves its socket
    assert ping_socket(s.sock) and time.monotonic() - t0 < 15
    pid = int(s.pidfile.read_text())
    assert os.getsid(pid) != os.getsid(0)  # detached into its own session
    assert s.dump()["ups.status"] == "OL CHRG"
    assert s.run("-a", "u", "-c", "stop").returncode == 0
    assert gone(pid)
    deadline = time.monotonic() + 5
    while s.sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not s.sock.exists()


def test_background_start_failure(setup) -> None:  # noqa: ANN001
    s = setup("driver = dummy-ups\nport = missing.dev\n")
    r = s.run("-a", "u", *user_args())
    assert r.returncode == 1
    assert "cannot open the dummy-ups definition file" in r.stderr and "missing.dev" in r.stderr
    assert not s.sock.exists()


@pytest.mark.parametrize(
    ("section", "args", "message"),
    [
        ("driver = dummy-ups\nport = x.dev\nfoo = bar\n", [], "'foo' is not a setting of the dummy-ups driver"),
        ("driver = dummy-ups\nport = x.dev\nbogusflag\n", [], "'bogusflag' is not a flag of the dummy-ups driver"),
        ("driver = dummy-ups\nport = x.dev\n", ["-x", "nope=1"], "'nope' is not a setting"),
        ("driver = dummy-ups\nport = x.dev\npollinterval = 0\n", [], "pollinterval"),
        ("driver = usbhid-ups\nport = auto\n", ["--driver-name", "dummy-ups"],
         "configured for driver usbhid-ups"),
        ("driver = no-such-driver\nport = x\n", [], "nutlite has no driver named 'no-such-driver'"),
        ("driver = dummy-ups\nport = x.dev\n", ["-a", "other"], "section [other] not found"),
    ],
)
def test_config_errors(setup, section: str, args: list[str], message: str) -> None:  # noqa: ANN001
    s = setup(section)
    argv = args if "-a" in args else ["-a", "u", *args]
    r = s.run(*argv, "-F")
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_settings_published(setup) -> None:  # noqa: ANN001
    s = setup("driver = dummy-ups\nport = x.dev\ndesc = \"my ups\"\nsdorder = 2\nmaxretry = 3\n"
              "default.battery.runtime.low = 120\ndefault.battery.charge = 1\noverride.ups.load = 55\n"
              "override.ups.beeper.status = disabled\nnolock\nuser = root\n")
    s.start("-F", *user_args(), "-x", "pollinterval=5", "-x", "mode=dummy-loop", "-x", "ignorelb")
    d = s.dump()
    assert d["driver.parameter.pollinterval"] == "5" and d["driver.parameter.mode"] == "dummy-loop"
    assert d["driver.flag.nolock"] == "enabled" and d["driver.flag.ignorelb"] == "enabled"
    assert d["driver.parameter.port"] == "x.dev" and d["driver.parameter.synchronous"] == "auto"
    assert d["battery.runtime.low"] == "120" and d["battery.charge"] == "87"  # default only if absent
    assert d["ups.load"] == "55" and d["ups.beeper.status"] == "disabled"  # override wins
    assert not any(k in d for k in ("driver.parameter.desc", "driver.parameter.sdorder", "driver.parameter.user",
                                    "driver.parameter.maxretry"))
    # an override cannot be changed by SET either
    assert s.request('SET ups.load "1" TRACKING a', r"TRACKING a ") == "TRACKING a 0"
    assert s.dump()["ups.load"] == "55"


def test_reload_signal(setup) -> None:  # noqa: ANN001
    s = setup()
    s.start("-F", *user_args())
    with s.connect() as c:
        s.write_conf("driver = dummy-ups\nport = x.dev\npollinterval = 7\noverride.ups.load = 99\n")
        assert s.run("-a", "u", "-c", "reload").returncode == 0
        buf = b""
        deadline = time.monotonic() + 10
        while b'driver.parameter.pollinterval "7"' not in buf or b'ups.load "99"' not in buf:
            assert time.monotonic() < deadline, buf
            buf += c.recv(4096)
    assert s.procs[0].poll() is None


def test_reload_needing_restart(setup) -> None:  # noqa: ANN001
    s = setup(files={"x.dev": CONFORMANCE, "y.dev": "ups.mfr: Other\n"})
    p = s.start("-F", *user_args())
    s.write_conf("driver = dummy-ups\nport = y.dev\npollinterval = 3\n")
    assert s.request("INSTCMD driver.reload-or-error TRACKING r1", r"TRACKING r1 ") == "TRACKING r1 3"
    assert s.dump()["driver.parameter.pollinterval"] == "2"  # nothing applied
    assert s.request("INSTCMD driver.reload TRACKING r2", r"TRACKING r2 ") == "TRACKING r2 0"
    d = s.dump()
    assert d["driver.parameter.pollinterval"] == "3" and d["driver.parameter.port"] == "x.dev"
    assert "need a driver restart: port" in s.log()
    assert s.request("INSTCMD driver.reload-or-exit TRACKING r3", r"TRACKING r3 ") == "TRACKING r3 0"
    assert p.wait(10) == 0


def test_core_commands(setup) -> None:  # noqa: ANN001
    s = setup()
    p = s.start("-F", *user_args())
    assert s.request("GETPID", r"PID ") == f"PID {p.pid}"
    assert s.request("INSTCMD driver.killpower TRACKING k1", r"TRACKING k1 ") == "TRACKING k1 2"  # not allowed
    assert s.request('SET driver.flag.allow_killpower "1" TRACKING k2', r"TRACKING k2 ") == "TRACKING k2 0"
    assert s.request("INSTCMD driver.killpower TRACKING k3", r"TRACKING k3 ") == "TRACKING k3 0"
    assert "simulated UPS shutdown" in s.log()
    assert s.request("INSTCMD driver.reload TRACKING k4", r"TRACKING k4 ") == "TRACKING k4 0"
    assert s.request("INSTCMD load.off TRACKING k5", r"TRACKING k5 ") == "TRACKING k5 1"  # as 2.8.0
    assert s.request("INSTCMD load.on TRACKING k6", r"TRACKING k6 ") == "TRACKING k6 1"
    assert s.request("INSTCMD driver.exit TRACKING k7", r"TRACKING k7 ") == "TRACKING k7 0"
    assert p.wait(10) == 0 and not s.sock.exists()


def test_killpower_entry_point(setup) -> None:  # noqa: ANN001
    s = setup()
    r = s.run("-a", "u", "-k", *user_args())  # no driver running: the device directly
    assert r.returncode == 0 and "simulated UPS shutdown" in r.stderr, r.stderr
    s.start("-F", *user_args())
    r = s.run("-a", "u", "-k", *user_args())  # the running driver does it
    assert r.returncode == 0 and "running dummy-ups driver ran its shutdown" in r.stderr, r.stderr
    assert "simulated UPS shutdown" in s.log()


def test_killpower_failure(setup, tmp_path: Path) -> None:  # noqa: ANN001
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    s = setup(f"driver = dummy-ups\nport = ups@127.0.0.1:{port}\n")
    r = s.run("-a", "u", "-k", *user_args())
    assert r.returncode == 1 and "cannot read ups@127.0.0.1" in r.stderr


def test_dump_option(setup) -> None:  # noqa: ANN001
    s = setup()
    r = s.run("-a", "u", "-d", "1", *user_args())
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    names = [ln.split(":", 1)[0] for ln in lines]
    assert "ups.mfr: ACME" in lines and "device.mfr: ACME" in lines and names == sorted(names, key=str.lower)


def test_duplicate_instance_replaces_the_old_one(setup) -> None:  # noqa: ANN001
    s = setup()
    first = s.start("-F", *user_args())
    second = s.start("-F", *user_args(), wait=False)
    assert first.wait(15) == 0
    s.wait_ready(second)
    assert int(s.pidfile.read_text()) == second.pid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_drops_root() -> None:
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="nutlite-drop-"))  # pytest's tmp dirs are root-only (0700)
    s = Setup(base / "s")
    try:
        for d in (base, s.base, s.conf):
            os.chmod(d, 0o755)
        os.chmod(s.conf / "x.dev", 0o644)
        os.chmod(s.state, 0o777)
        p = s.start("-F", "-u", "nobody")
        nobody = pwd.getpwnam("nobody")
        with open(f"/proc/{p.pid}/status") as fh:
            uids = next(line for line in fh if line.startswith("Uid:")).split()[1:]
        assert all(int(u) == nobody.pw_uid for u in uids)
        st = os.stat(s.sock)
        assert st.st_uid == nobody.pw_uid and stat.S_IMODE(st.st_mode) == 0o660
        assert s.dump()["ups.mfr"] == "ACME"  # the socket is still reachable (by root and its group)
        assert os.stat(s.pidfile).st_uid == nobody.pw_uid
        assert s.run("-a", "u", "-c", "stop").returncode == 0
        assert p.wait(10) == 0 and not s.sock.exists()
    finally:
        s.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def world_readable_setup(section: str = "driver = dummy-ups\nport = x.dev\n") -> Iterator[Setup]:
    """A Setup another account can use: pytest's tmp dirs are root-only (0700)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="nutlite-user-"))
    s = Setup(base / "s", section)
    try:
        for d in (base, s.base, s.conf):
            os.chmod(d, 0o755)
        os.chmod(s.conf / "x.dev", 0o644)
        os.chmod(s.state, 0o777)
        yield s
    finally:
        s.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return int(next(line for line in fh if line.startswith("Uid:")).split()[2])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
@pytest.mark.parametrize(
    ("conf_global", "section_user", "flag", "expected"),
    [
        ("", None, None, "nut"),  # NUT's run-as account when started as root and nothing says otherwise
        ("", "nobody", None, "nobody"),  # the section's user setting
        ("user = nobody\n", None, None, "nobody"),  # the global one
        ("", "nobody", "nut", "nut"),  # -u wins
    ],
)
def test_run_as_user(conf_global: str, section_user: str | None, flag: str | None, expected: str) -> None:
    with world_readable_setup() as s:
        text = conf_global + "[u]\ndriver = dummy-ups\nport = x.dev\n"
        if section_user:
            text += f"user = {section_user}\n"
        (s.conf / "ups.conf").write_text(text)
        p = s.start("-F", *(["-u", flag] if flag else []))
        assert uid_of(p.pid) == pwd.getpwnam(expected).pw_uid, s.log()
        assert os.stat(s.sock).st_uid == pwd.getpwnam(expected).pw_uid
        assert s.run("-a", "u", "-c", "stop").returncode == 0
        assert p.wait(10) == 0

def test_started_by_driver_name(setup, tmp_path: Path) -> None:  # noqa: ANN001
    """``dummy-ups -a u`` through a link named like NUT's driver program."""
    s = setup()
    link = tmp_path / "dummy-ups"
    link.write_text(f"#!{sys.executable}\nimport sys\nfrom nutlite.cli import main\nsys.argv[0] = 'dummy-ups'\n"
                    "raise SystemExit(main())\n")
    link.chmod(0o755)
    r = subprocess.run([str(link), "-a", "u", "-d", "1", *user_args()], env=s.env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "driver.name: dummy-ups" in r.stdout, r.stderr
    r = subprocess.run([str(link), "-L"], env=s.env, capture_output=True, text=True, timeout=30)
    assert 'VALUE mode "' in r.stdout


# ------------------------------------------------------------------------------------------------
# Debian's upsd reading a nutlite driver


def listing(env, ups: str = "dummy") -> dict[str, object]:  # noqa: ANN001
    with env.connect() as c:
        out: dict[str, object] = {}
        out["vars"] = [ln for ln in c.request_list(f"LIST VAR {ups}") if not ln.startswith(f"VAR {ups} driver.version")]
        out["rw"] = c.request_list(f"LIST RW {ups}")
        out["cmd"] = c.request_list(f"LIST CMD {ups}")
        names = [ln.split()[2] for ln in out["vars"][1:-1]]  # type: ignore[index]
        out["types"] = [c.request(f"GET TYPE {ups} {n}") for n in names]
        out["desc"] = c.request(f"GET UPSDESC {ups}")
        return out


@pytest.mark.interop
def test_debian_upsd_reads_nutlite_driver(nut_env_factory) -> None:  # noqa: ANN001
    files = {"conformance.dev": DATA_DIR / "conformance.dev"}
    theirs = nut_env_factory([dummy_ups(desc="Test UPS")], files=files, driver_flavour="debian",
                             upsd_flavour="debian")
    expected = listing(theirs)
    theirs.stop()
    env = nut_env_factory([dummy_ups(desc="Test UPS")], files=files, driver_flavour="nutlite",
                          upsd_flavour="debian")
    assert listing(env) == expected
    with env.connect() as c:
        assert c.request("USERNAME admin") == "OK" and c.request("PASSWORD adminpw") == "OK"
        assert c.request("SET TRACKING ON") == "OK"
        reply = c.request('SET VAR dummy ups.id "via upsd"')
        assert reply.startswith("OK TRACKING ")
        tid = reply.split()[2]
        deadline = time.monotonic() + 10
        while (status := c.request(f"GET TRACKING {tid}")) == "PENDING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status == "SUCCESS"
        assert c.request("GET VAR dummy ups.id") == 'VAR dummy ups.id "via upsd"'
        reply = c.request("INSTCMD dummy load.off")
        tid = reply.split()[2]
        deadline = time.monotonic() + 10
        while (status := c.request(f"GET TRACKING {tid}")) == "PENDING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status == "ERR UNKNOWN"  # dummy-ups (2.8.0 too) carries out no command, not even load.off
    # the driver restarts: upsd reconnects and reads it again
    env.restart_driver("dummy")
    env.wait_ready()
    with env.connect() as c:
        assert c.request("GET VAR dummy ups.mfr") == 'VAR dummy ups.mfr "ACME"'


def test_every_driver_setting_is_described_in_the_help_style() -> None:
    """-L (NUT's parseable list) and -h show each setting's meaning as written: lowercase first (an
    acronym stays), no trailing period."""
    from nutlite.drivers.main import available_drivers

    for name in available_drivers():
        r = subprocess.run([sys.executable, "-m", "nutlite", name, "-L"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        for line in r.stdout.splitlines():
            meaning = line.split('"', 1)[1].rstrip('"')
            first = meaning.split(" ", 1)[0]
            assert meaning[0].islower() or first[:2].isupper(), (name, line)
            assert not meaning.endswith("."), (name, line)


@pytest.mark.parametrize("clients", [1, 3])
def test_sigterm_with_upsd_connected_exits_cleanly(nut_env_factory, clients: int) -> None:  # noqa: ANN001
    """A driver stopped while upsd (and other clients) are connected to its socket says nothing but its
    usual lines: no asyncio traceback about the connections, exit status 0."""
    env = nut_env_factory([dummy_ups(desc="Test UPS")], files={"conformance.dev": DATA_DIR / "conformance.dev"})
    env.wait_ready()
    extra = []
    for _ in range(clients - 1):  # more clients, one of them in the middle of a line
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(env.socket_path("dummy")))
        s.sendall(b"PING\nDUMPA")
        extra.append(s)
    time.sleep(0.5)
    proc = env._drivers["dummy"].popen
    env.kill_driver("dummy", signal.SIGTERM)
    for s in extra:
        s.close()
    output = (env.logpath / "driver-dummy.log").read_text(errors="replace")
    assert "Traceback" not in output and "Exception in callback" not in output, output
    assert "CancelledError" not in output, output
    assert proc.returncode == 0, output
    assert not env.socket_path("dummy").exists()


@pytest.mark.parametrize("name", ["nutdrv_qx", "blazer_ser", "genericups", "apcsmart"])
def test_every_serial_driver_answers_to_its_nut_name(name: str, tmp_path: Path) -> None:
    """A link named like NUT's driver program runs that driver (``-h`` shows its own options)."""
    link = tmp_path / name
    link.write_text(f"#!{sys.executable}\nimport sys\nfrom nutlite.cli import main\nsys.argv[0] = {name!r}\n"
                    "raise SystemExit(main())\n")
    link.chmod(0o755)
    r = subprocess.run([str(link), "-h"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and f"Settings of the {name} driver" in r.stdout, r.stdout + r.stderr
