"""``nutlite upsdrvctl``: start/stop/shutdown of the ups.conf drivers, retries, test mode, -F."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nutenv import DATA_DIR
from test_sockproto import user_args

from nutlite.drivers.framework.sockproto import ping_socket

REPO = Path(__file__).resolve().parent.parent


class Ctl:
    def __init__(self, base: Path, ups_conf: str, files: dict[str, str] | None = None) -> None:
        self.conf, self.state = base / "conf", base / "state"
        self.conf.mkdir(parents=True)
        self.state.mkdir(parents=True)
        for name, text in (files or {"x.dev": (DATA_DIR / "conformance.dev").read_text()}).items():
            (self.conf / name).write_text(text)
        (self.conf / "ups.conf").write_text(ups_conf)
        self.env = dict(os.environ, NUT_CONFPATH=str(self.conf), NUT_STATEPATH=str(self.state),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.env.pop("NUT_ALTPIDPATH", None)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nutlite", "upsdrvctl", *args], env=self.env, text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def sock(self, ups: str) -> Path:
        return self.state / f"dummy-ups-{ups}"

    def pid(self, ups: str) -> int | None:
        try:
            return int((self.state / f"dummy-ups-{ups}.pid").read_text())
        except (OSError, ValueError):
            return None

    def kill_all(self) -> None:
        for f in self.state.glob("*.pid"):
            try:
                os.kill(int(f.read_text()), signal.SIGKILL)
            except (ValueError, OSError):
                pass


@pytest.fixture
def ctl(tmp_path: Path):  # noqa: ANN201
    made: list[Ctl] = []

    def make(ups_conf: str, files: dict[str, str] | None = None) -> Ctl:
        c = Ctl(tmp_path / f"c{len(made)}", ups_conf, files)
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill_all()


TWO = "[a]\n driver = dummy-ups\n port = x.dev\n sdorder = 2\n[b]\n driver = dummy-ups\n port = x.dev\n"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_start_stop(ctl) -> None:  # noqa: ANN001
    c = ctl(TWO)
    r = c.run(*user_args(), "start")
    assert r.returncode == 0, r.stderr
    assert "UPS driver controller" in r.stdout
    pids = [c.pid("a"), c.pid("b")]
    assert all(pids) and ping_socket(c.sock("a")) and ping_socket(c.sock("b"))
    r = c.run("stop", "a")
    assert r.returncode == 0, r.stderr
    assert not alive(pids[0]) and alive(pids[1]) and not c.sock("a").exists()  # stop waits for the exit
    r = c.run("stop")
    assert r.returncode == 1 and "dummy-ups-a.pid" in r.stderr  # a is already stopped
    assert not alive(pids[1]) and not c.sock("b").exists()


def test_start_one_and_unknown(ctl) -> None:  # noqa: ANN001
    c = ctl(TWO)
    assert c.run(*user_args(), "start", "b").returncode == 0
    assert c.pid("b") and c.pid("a") is None
    r = c.run("start", "nope")
    assert r.returncode == 1 and "UPS nope not found in ups.conf" in r.stderr
    assert c.run("stop", "b").returncode == 0


def test_maxretry_with_failing_driver(ctl) -> None:  # noqa: ANN001
    c = ctl("maxretry = 3\nretrydelay = 1\n" + TWO + "[bad]\n driver = dummy-ups\n port = missing.dev\n")
    t0 = time.monotonic()
    r = c.run(*user_args(), "start")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert r.stderr.count("cannot open the dummy-ups definition file") == 3  # three attempts
    assert r.stderr.count("retrying in 1 s") == 2 and "Driver failed to start for UPS [bad]" in r.stderr
    assert 2 <= took < 30
    assert ping_socket(c.sock("a")) and ping_socket(c.sock("b"))  # the others were started anyway
    c.run("stop")


def test_maxstartdelay(ctl) -> None:  # noqa: ANN001
    """A driver that does not get ready in maxstartdelay seconds is reported, upsdrvctl goes on."""
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        c = ctl(f"[slow]\n driver = dummy-ups\n port = ups@127.0.0.1:{port}\n maxstartdelay = 1\n" + TWO)
        t0 = time.monotonic()
        r = c.run(*user_args(), "start")
        assert time.monotonic() - t0 < 15
        assert r.returncode == 1 and "Startup timer elapsed for UPS [slow]" in r.stderr
        assert ping_socket(c.sock("a")) and ping_socket(c.sock("b"))
    c.run("stop")


def test_testing_mode(ctl) -> None:  # noqa: ANN001
    c = ctl(TWO + "[c]\n driver = dummy-ups\n port = x.dev\n sdorder = -1\n[d]\n driver = dummy-ups\n port = x.dev\n"
            " sdorder = 1\n")
    r = c.run("-t", "-u", "nut", "start")
    assert r.returncode == 0
    execs = [ln for ln in r.stdout.splitlines() if ln.startswith("exec: ")]
    assert len(execs) == 4 and all(ln.endswith(("-u nut",)) for ln in execs)
    assert "-m nutlite driver -a a" in execs[0] and not list(c.state.iterdir())
    r = c.run("-t", "shutdown")
    order = [ln.split()[1].rstrip(":") for ln in r.stdout.splitlines() if ln.startswith("shutdown: ")]
    assert order == ["b", "d", "a"]  # sdorder 0, 1, 2; -1 is left out
    r = c.run("-t", "shutdown", "c")  # but a named UPS is shut down whatever its sdorder
    assert "shutdown: c:" in r.stdout


def test_shutdown(ctl) -> None:  # noqa: ANN001
    c = ctl(TWO)
    assert c.run(*user_args(), "start", "a").returncode == 0
    r = c.run(*user_args(), "shutdown")
    assert r.returncode == 0, r.stderr
    # b is not running: its driver ran with -k; a is running: it did it itself
    assert "UPS [a]: the running driver sent the shutdown" in r.stdout
    assert "simulated UPS shutdown" in r.stderr
    assert r.stdout.index("UPS [a]") > 0
    c.run("stop")


def test_shutdown_failure(ctl) -> None:  # noqa: ANN001
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    c = ctl(f"[r]\n driver = dummy-ups\n port = ups@127.0.0.1:{port}\n")
    r = c.run(*user_args(), "shutdown")
    assert r.returncode == 1 and "Shutdown failed for UPS [r]" in r.stderr


def test_foreground_supervision(ctl) -> None:  # noqa: ANN001
    c = ctl(TWO)
    p = subprocess.Popen([sys.executable, "-m", "nutlite", "upsdrvctl", "-F", *user_args(), "start"], env=c.env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (ping_socket(c.sock("a"), 0.5) and ping_socket(c.sock("b"), 0.5)):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        pids = [c.pid("a"), c.pid("b")]
        assert p.poll() is None  # stays with its drivers
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
        assert not any(alive(pid) for pid in pids if pid)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_help_and_usage(ctl) -> None:  # noqa: ANN001
    c = ctl(TWO)
    r = c.run("-h")
    assert r.returncode == 0 and "start" in r.stdout and "shutdown" in r.stdout
    assert c.run().returncode == 1
    assert c.run("bogus").returncode == 2
