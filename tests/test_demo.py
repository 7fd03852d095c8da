"""`make run`'s demo: the whole stack on the simulated UPSes, served where it says, going OL -> OB; and
every way of stopping it (Ctrl-C, SIGTERM, SIGHUP, the terminal closing, SIGKILL, a daemon dying, a
port in use) leaves none of the processes it started."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from nutenv import NutConnection, free_port, wait_for

UPSES = ("demo", "q1", "apc")


# --------------------------------------------------------------------------------------------------
# The demo's processes, found in /proc


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def started_by(work: Path) -> dict[int, str]:
    """Every live process the demo in ``work`` started, even after it was reparented: they are the
    ones whose environment has the demo's NUT_CONFPATH. {pid: start time}."""
    marker = f"NUT_CONFPATH={work / 'conf'}".encode()
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = _stat(int(entry.name))
        if marker in environ and fields is not None and fields[0] != "Z":
            out[int(entry.name)] = fields[19]
    return out


def children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid``: {pid: command line}."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or fields[1] != str(pid) or fields[0] == "Z":
            continue
        with contextlib.suppress(OSError):
            out[int(entry.name)] = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return out


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


# --------------------------------------------------------------------------------------------------
# Running the demo


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    port: int
    work: Path
    output: Path
    pids: dict[int, str] = field(default_factory=dict)  # the daemons it started: {pid: command line}

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def serves(self) -> bool:
        try:
            with NutConnection(self.port) as c:
                return all(c.request(f"GET VAR {u} ups.status").startswith(f"VAR {u} ") for u in UPSES)
        except OSError:
            return False

    def wait_serving(self) -> None:
        wait_for(lambda: self.serves() or self.proc.poll() is not None, 30, "the demo serving")
        assert self.proc.poll() is None, self.text()
        self.pids = children(self.proc.pid)
        assert sorted(" ".join(c.split()[3:5]) for c in self.pids.values()) == [
            "driver -a", "driver -a", "driver -a", "upsd -F"], self.pids

    def assert_all_gone(self, timeout: float = 10.0) -> None:
        """The demo has ended, and within ``timeout`` s every process it started is gone and the port free."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the demo still runs\n{self.text()}") from None
        deadline = time.monotonic() + timeout
        while (started_by(self.work) or not port_free(self.port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: self.pids.get(pid, "?") for pid in started_by(self.work)}
        assert not left, f"left running: {left}\n{self.text()}"
        assert port_free(self.port), f"port {self.port} still served\n{self.text()}"
        assert "nutlite/demo.py" not in self.text()  # no traceback of the demo's


def demo_argv(port: int, work: Path) -> list[str]:
    return [sys.executable, "-m", "nutlite", "demo", "--port", str(port), "--dir", str(work)]


def default_stop_signals() -> None:
    """In the demo's child: the stop signals as a terminal gives them, even when the suite itself runs
    under nohup (the demo keeps a signal it was started with ignored, and SIGHUP would do nothing)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@contextlib.contextmanager
def running_demo(tmp_path: Path, stdio: int | IO[bytes] | None = None, argv: list[str] | None = None,
                 port: int | None = None, stdout: int | None = None) -> Iterator[Demo]:
    """The demo on a free port with a folder of its own, output to a file (unless ``stdio``, or ``stdout``
    for its standard output alone); whatever is left of it is killed at the end."""
    port = port or free_port()
    work = tmp_path / "demo"
    output = tmp_path / "output"
    with open(output, "wb") as out:
        target = out if stdio is None else stdio
        proc = subprocess.Popen(argv or demo_argv(port, work), stdin=subprocess.DEVNULL if stdio is None else stdio,
                                stdout=target if stdout is None else stdout, stderr=target, start_new_session=True,
                                preexec_fn=default_stop_signals)
    demo = Demo(proc, port, work, output)
    try:
        yield demo
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pid in started_by(work):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------
# What it serves


def test_demo_serves_upses_that_lose_mains(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        seen: dict[str, list[str]] = {u: [] for u in UPSES}
        mixed = []
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not all(any("OB" in s.split() for s in v) for v in seen.values()):
            for ups, statuses in seen.items():
                try:
                    with NutConnection(demo.port) as c:
                        values = c.request_list(f"LIST VAR {ups}")
                except OSError:
                    continue
                got = {p[2]: p[3][1:-1] for p in (line.split(" ", 3) for line in values[1:-1])}
                status = got.get("ups.status")
                if status is None:
                    continue
                if not statuses or statuses[-1] != status:
                    statuses.append(status)
                # the q1 UPS's status and input voltage are always those of the same reply
                if ups == "q1" and ("OB" in status.split()) != (got.get("input.voltage") == "0.0"):
                    mixed.append((status, got.get("input.voltage")))
            time.sleep(0.5)
        assert demo.proc.poll() is None, demo.text()
        assert seen["demo"][:2] == ["OL CHRG", "OB DISCHRG"], seen
        # The serial drivers read their simulators through a pty: mains, then the power cut.
        assert seen["q1"][:2] == ["OL", "OB"], seen
        assert seen["apc"][:2] == ["OL", "OB"], seen
        assert not mixed, mixed
        with NutConnection(demo.port) as c:
            listing = c.request_list("LIST UPS")
        assert sorted(listing[1:-1]) == ['UPS apc "simulated APC Smart-UPS on a pty"',
                                         'UPS demo "nutlite demo UPS (simulated)"',
                                         'UPS q1 "simulated Megatec Q1 UPS on a pty"'], listing
        demo.proc.send_signal(signal.SIGINT)
        demo.assert_all_gone()
        assert f"upsc demo@localhost:{demo.port}" in demo.text()  # it tells the user where to look


# --------------------------------------------------------------------------------------------------
# Every way of stopping it


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_the_demo_stops_everything_it_started(tmp_path: Path, sig: int) -> None:
    """The signal goes to the demo alone (not to its process group, as a terminal's Ctrl-C does); even
    SIGKILL, which the demo cannot act on, takes its daemons with it."""
    with running_demo(tmp_path) as demo:
        demo.wait_serving()
        os.kill(demo.proc.pid, sig)
        demo.assert_all_gone()
        if sig != signal.SIGKILL:
            assert demo.proc.returncode == 0, demo.text()
            assert f"nutlite demo: {signal.Signals(sig).name}: stopping" in demo.text()


def test_ctrl_c_in_its_terminal_stops_everything(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole foreground process group: the demo and its daemons."""
    with running_demo(tmp_path) as demo:
        demo.wait_serving()
        os.killpg(demo.proc.pid, signal.SIGINT)
        demo.assert_all_gone()
        assert demo.proc.returncode == 0, demo.text()


def test_an_error_in_the_demo_stops_everything(tmp_path: Path) -> None:
    """The demo fails after starting its daemons (here: its output goes nowhere, so printing where to look
    fails): it says so, without a traceback, and stops them."""
    with running_demo(tmp_path, stdout=subprocess.PIPE) as demo:
        assert demo.proc.stdout is not None
        demo.proc.stdout.close()  # nobody reads the demo's output any more
        demo.assert_all_gone(timeout=30)
        assert demo.proc.returncode == 1
        assert "nutlite demo: error: [Errno 32] Broken pipe; stopping" in demo.text()
        assert "upsd[" in demo.text()  # the daemons were running


def test_closing_the_terminal_stops_everything(tmp_path: Path) -> None:
    """The demo runs in a terminal of its own (a pty that is its controlling terminal); the terminal is
    closed: the kernel hangs it up (SIGHUP) and the demo stops everything, with nowhere left to write."""
    master, slave = pty.openpty()
    port = free_port()
    work = tmp_path / "demo"
    # become the session leader of the pty (as a shell in a terminal window), then the demo
    stub = ("import fcntl, os, sys, termios\n"
            "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
            "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    argv = [sys.executable, "-c", stub, *demo_argv(port, work)[1:]]
    seen = bytearray()
    done = threading.Event()

    def read_terminal() -> None:
        while not done.is_set():
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        with running_demo(tmp_path, stdio=slave, argv=argv, port=port) as demo:
            os.close(slave)
            slave = -1
            demo.wait_serving()
            wait_for(lambda: b"nutlite demo is running" in seen, 5, "the demo's banner on its terminal")
            done.set()
            reader.join()
            os.close(master)  # the terminal window closes
            master = -1
            demo.assert_all_gone()
            assert demo.proc.returncode == 0
    finally:
        done.set()
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)


def test_a_daemon_dying_stops_the_demo(tmp_path: Path) -> None:
    """One of the daemons dies: the demo says which, stops the others and ends with status 1."""
    with running_demo(tmp_path) as demo:
        demo.wait_serving()
        q1 = next(pid for pid, cmd in demo.pids.items() if "driver -a q1" in cmd)
        os.kill(q1, signal.SIGKILL)
        demo.assert_all_gone()
        assert demo.proc.returncode == 1
        assert "nutlite demo: the nutdrv_qx driver of q1 was killed by SIGKILL" in demo.text()
        assert "stopping the demo" in demo.text()


def test_port_in_use_is_refused_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with running_demo(tmp_path, port=port) as demo:
            assert demo.proc.wait(15) == 1
            assert started_by(demo.work) == {}
            assert f"port {port} on 127.0.0.1 is in use" in demo.text() and "--port" in demo.text()
            assert "Traceback" not in demo.text()


def test_bad_work_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    r = subprocess.run(demo_argv(free_port(), tmp_path / "file"), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"nutlite demo: cannot write the demo's configuration in {tmp_path / 'file'}" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "nutlite", "demo", "--port", "70000"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "port 70000 is out of range (1..65535)" in r.stderr
