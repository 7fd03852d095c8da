"""Serial plumbing: locking (against ourselves and against Debian's NUT drivers), lock files,
timeouts, the port disappearing and coming back, and the permission message of NUT FAQ #4."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from nutlite.drivers.framework.core import DriverError
from nutlite.drivers.transports.serialport import (
    PortError,
    SerialPort,
    UucpLock,
    lock_file_name,
    permission_message,
)
from nutlite.sim.q1 import PtyQ1, Q1Ups

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nutenv import REAL_NUT_DIR, NutEnv, UpsSpec, require_real_nut  # noqa: E402


@pytest.fixture
def lockdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "lock"
    d.mkdir()
    monkeypatch.setenv("NUTLITE_LOCKDIR", str(d))
    return d


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PtyQ1]:
    with PtyQ1(Q1Ups(), link=tmp_path / "ttyQ1") as s:
        yield s


@pytest.fixture
def port(sim: PtyQ1, lockdir: Path) -> Iterator[SerialPort]:
    p = SerialPort(str(sim.link), timeout=0.5)
    p.open()
    yield p
    p.close()


def test_ask(port: SerialPort, sim: PtyQ1) -> None:
    assert port.ask("Q1") == "(230.0 230.0 230.0 021 50.0 13.5 25.0 00001001"
    assert port.ser.baudrate == 2400 and port.ser.bytesize == 8 and port.ser.parity == "N"
    port.send("T")
    time.sleep(0.2)
    assert sim.ups.commands[-1] == "T"


def test_second_open_is_refused(port: SerialPort, sim: PtyQ1) -> None:
    other = SerialPort(str(sim.link))
    with pytest.raises(DriverError, match="locked by process"):
        other.open()
    # the flock alone also keeps a second user out (e.g. when no lock directory is writable)
    os.environ["NUTLITE_LOCKDIR"] = ""
    try:
        with pytest.raises(DriverError, match="locked by another process"):
            other.open()
    finally:
        os.environ.pop("NUTLITE_LOCKDIR")
    assert port.ask("Q1") is not None


def test_nolock(port: SerialPort, sim: PtyQ1) -> None:
    other = SerialPort(str(sim.link), lock=False)
    other.open()
    other.close()


def test_lock_file(sim: PtyQ1, lockdir: Path) -> None:
    name = lock_file_name(str(sim.link))
    assert name == "LCK.." + sim.path[len("/dev/"):].replace("/", "_")
    p = SerialPort(str(sim.link))
    p.open()
    assert (lockdir / name).read_text() == f"{os.getpid():10d}\n"
    p.close()
    assert not (lockdir / name).exists()


def test_stale_lock_file_is_taken_over(sim: PtyQ1, lockdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (lockdir / lock_file_name(str(sim.link))).write_text(f"{dead.pid:10d}\n")
    p = SerialPort(str(sim.link))
    with caplog.at_level(logging.INFO):
        p.open()
    assert "stale lock file" in caplog.text
    p.close()


def test_lock_file_of_a_live_process(sim: PtyQ1, lockdir: Path) -> None:
    live = subprocess.Popen(["sleep", "30"])
    try:
        (lockdir / lock_file_name(str(sim.link))).write_text(f"{live.pid:10d}\n")
        with pytest.raises(DriverError, match=f"locked by process {live.pid}"):
            SerialPort(str(sim.link)).open()
    finally:
        live.kill()
        live.wait()


def test_no_lock_dir(sim: PtyQ1, tmp_path: Path) -> None:
    lock = UucpLock(str(sim.link), (tmp_path / "missing",))
    assert lock.path is None
    lock.acquire(str(sim.link))
    lock.release()


def test_timeout_and_partial_reply(port: SerialPort, sim: PtyQ1) -> None:
    sim.ups.apply("mute")
    t0 = time.monotonic()
    assert port.ask("Q1") is None
    assert 0.4 < time.monotonic() - t0 < 2
    sim.ups.apply("unmute")
    assert port.ask("Q1") is not None


def test_port_disappears_and_comes_back(port: SerialPort, sim: PtyQ1, caplog: pytest.LogCaptureFixture) -> None:
    sim.unplug()
    with caplog.at_level(logging.INFO), pytest.raises(PortError):
        port.ask("Q1")
    assert "lost" in caplog.text
    with pytest.raises(PortError, match="does not exist"):
        port.ask("Q1")
    sim.replug()
    with caplog.at_level(logging.INFO):
        assert port.ask("Q1") is not None
    assert "reopened" in caplog.text


def test_missing_port(tmp_path: Path, lockdir: Path) -> None:
    with pytest.raises(PortError, match="does not exist"):
        SerialPort(str(tmp_path / "nope")).open()


def test_permission_message(tmp_path: Path) -> None:
    f = tmp_path / "ttyS9"
    f.write_text("")
    f.chmod(0o600)
    text = permission_message(str(f), OSError(errno.EACCES, "Permission denied"))
    assert f"Unable to open {f}: Permission denied" in text
    assert f"This program is currently running as root (UID {os.geteuid()})" in text or os.geteuid() != 0
    assert f"{f} is owned by user" in text and "mode 0600" in text
    assert "fix the permissions or ownership" in text


def test_permission_error_on_open(sim: PtyQ1, lockdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: serial.Serial) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port: Permission denied")

    monkeypatch.setattr(serial.Serial, "open", denied)
    with pytest.raises(DriverError, match="is owned by user .* mode 06"):
        SerialPort(str(sim.link)).open()
    assert not list(lockdir.iterdir())  # the lock file went with the failure


def test_bad_cablepower() -> None:
    with pytest.raises(DriverError, match="cablepower"):
        SerialPort("/dev/null", cablepower="sideways")


@pytest.mark.interop
def test_locks_exclude_debians_driver(sim: PtyQ1, lockdir: Path, tmp_path: Path) -> None:
    """A port held by Debian's nutdrv_qx cannot be opened by nutlite, and the other way round."""
    require_real_nut()
    env = NutEnv(tmp_path / "env", [UpsSpec("q1", driver="nutdrv_qx", port=str(sim.link))], driver_flavour="debian")
    env.write_configs()
    try:
        env.start_driver("q1")
        with pytest.raises(DriverError, match="locked"):
            SerialPort(str(sim.link)).open()
    finally:
        env.stop()
    mine = SerialPort(str(sim.link))
    mine.open()
    try:
        r = subprocess.run([str(REAL_NUT_DIR / "nutdrv_qx"), "-a", "q1", "-d", "1", *NutEnv._user_args()],
                           env=env.environ(), capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "lock" in (r.stdout + r.stderr).lower()
    finally:
        mine.close()
