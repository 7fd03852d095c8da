"""nutlite's upsmon and Debian's real upsmon 2.8.0 together.

* Debian's upsmon as a secondary of nutlite's upsd, with nutlite's upsmon as the primary;
* nutlite's upsmon as a secondary of Debian's upsd, with Debian's upsmon as the primary;

both run the whole power failure (OL -> OB -> OB LB): the primary sets FSD, the secondary shuts down and
logs out, and only then does the primary shut down. The POWERDOWNFLAG each one writes is accepted by
the other's ``upsmon -K``. A logging proxy also compares what both upsmons send on the wire.

Debian's upsmon runs as ``/lib/nut/upsmon -D -p`` inside ``unshare -m`` with a tmpfs on /run/nut (it
writes /run/nut/upsmon.pid whatever NUT_STATEPATH says), so the real system is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_upsmon
from nutenv import free_port, wait_for
from test_upsmon import (
    IS_ROOT,
    REAL_UPSMON,
    Upsmon,
    fake_ups,
    monitor,
    numlogins,
    run_power_failure,
    set_status,
    ups_status,
)

from nutlite.upsmon.core import MAGIC

# the fixtures of test_upsmon: private NUT setups and upsmon processes, torn down after each test
make_env = test_upsmon.make_env
upsmons = test_upsmon.upsmons

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not IS_ROOT, reason="Debian's upsmon needs 'unshare -m' (root) to keep off /run/nut"),
]


@pytest.fixture(autouse=True)
def _real_nut() -> None:
    from nutenv import require_real_nut

    require_real_nut()
    if not REAL_UPSMON.exists():
        pytest.skip("Debian's upsmon (nut-client) is not installed")


def check_power_failure(env, pri: Upsmon, sec: Upsmon, t0: float, t_sec: float, t_pri: float) -> None:
    assert ups_status(env).startswith("FSD ")
    assert t_pri >= t_sec, "the primary shut down before its secondary"
    # The secondary stays logged in for its FINALDELAY (2 s) after seeing FSD: the primary waited...
    assert t_pri - t0 >= 2.0
    # ...for the logout, not for HOSTSYNC (10 s) to run out.
    assert t_pri - t0 < 8.0, f"primary took {t_pri - t0:.1f}s"
    assert pri.wait_exit() == 0
    assert sec.wait_exit() == 0
    assert sorted(pri.types()) == ["LOWBATT", "ONBATT", "SHUTDOWN"]
    assert sorted(sec.types()) == ["FSD", "LOWBATT", "ONBATT", "SHUTDOWN"]
    ups = f"ups@127.0.0.1:{env.port}"
    for m in (pri, sec):
        assert {e.ups for e in m.events() if e.type != "SHUTDOWN"} == {ups}
        assert [e.ups for e in m.events() if e.type == "SHUTDOWN"] == [""]
        assert m.flag.read_bytes() == MAGIC.encode()
        assert m.check_flag() == 0
    assert numlogins(env) == 0


def cross_check_flags(tmp_path: Path, nutlite_mon: Upsmon, debian_mon: Upsmon) -> None:
    """Each -K accepts the flag the other upsmon wrote."""
    nut_reads_deb = Upsmon(tmp_path / "x", "nut-reads-deb", nutlite_mon.monitors)
    nut_reads_deb.flag = debian_mon.flag
    nut_reads_deb.write_conf()
    assert nut_reads_deb.check_flag() == 0
    deb_reads_nut = Upsmon(tmp_path / "x", "deb-reads-nut", debian_mon.monitors, flavour="debian")
    deb_reads_nut.flag = nutlite_mon.flag
    deb_reads_nut.write_conf()
    assert deb_reads_nut.check_flag() == 0


def test_debian_secondary_of_nutlite_upsd(make_env, upsmons, tmp_path: Path) -> None:
    env = make_env([fake_ups()], "nutlite")
    pri = upsmons("nutlite-primary", [monitor(env, role="primary")], HOSTSYNC=10, FINALDELAY=0)
    sec = upsmons("debian-secondary", [monitor(env, role="secondary")], flavour="debian",
                  HOSTSYNC=10, FINALDELAY=2)
    t0, t_sec, t_pri = run_power_failure(env, pri, sec)
    check_power_failure(env, pri, sec, t0, t_sec, t_pri)
    cross_check_flags(tmp_path, pri, sec)


def test_nutlite_secondary_of_debian_upsd(make_env, upsmons, tmp_path: Path) -> None:
    env = make_env([fake_ups()], "debian")
    pri = upsmons("debian-primary", [monitor(env, role="primary")], flavour="debian", HOSTSYNC=10, FINALDELAY=0)
    sec = upsmons("nutlite-secondary", [monitor(env, role="secondary")], HOSTSYNC=10, FINALDELAY=2)
    sec_args = ("-D", "-p")  # one process: SHUTDOWNCMD has run before it logs out
    t0, t_sec, t_pri = run_power_failure(env, pri, sec, sec_args)
    check_power_failure(env, pri, sec, t0, t_sec, t_pri)
    cross_check_flags(tmp_path, sec, pri)


# ------------------------------------------------------------------------------------------ the wire


class WireLog:
    """A TCP proxy in front of upsd that records the request lines of each client connection."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.sessions: list[list[str]] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(8)
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            lines: list[str] = []
            with self._lock:
                self.sessions.append(lines)
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, lines), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, lines: list[str] | None) -> None:
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if lines is not None:
                    buf += data
                    *done, buf = buf.split(b"\n")
                    with self._lock:
                        lines.extend(x.decode("latin-1").rstrip("\r") for x in done)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture
def wire_env(make_env) -> Iterator[Callable[[], tuple[object, WireLog]]]:
    """Returns ``new() -> (env, wire)``: a fresh nutlite upsd (no FSD latched yet) behind a WireLog."""
    wires: list[WireLog] = []

    def new() -> tuple[object, WireLog]:
        env = make_env([fake_ups()], "nutlite")
        wires.append(WireLog(env.port))
        return env, wires[-1]

    yield new
    for w in wires:
        w.close()


def collapse(lines: list[str]) -> list[str]:
    """Drop STARTTLS (Debian's NSS build tries it first) and repeats of the same request."""
    out: list[str] = []
    for line in lines:
        if line == "STARTTLS":
            continue
        if not out or out[-1] != line:
            out.append(line)
    return out


def secondary_session(env, wire: WireLog, upsmons, flavour: str) -> list[str]:
    before = len(wire.sessions)
    mon = upsmons(f"wire-sec-{flavour}", [f"ups@127.0.0.1:{wire.port} 1 monsec secpw secondary"],
                  flavour=flavour)
    mon.start("-D", "-p")
    wait_for(lambda: len(wire.sessions) > before
               and wire.sessions[before].count("GET VAR ups ups.status") >= 2, 10, "two polls")
    assert mon.proc is not None
    os.kill(mon.proc.pid, signal.SIGTERM)
    assert mon.wait_exit() in (0, 1)
    wait_for(lambda: numlogins(env) == 0, 5, "logout")
    time.sleep(0.1)
    return collapse(wire.sessions[before])


def primary_session(env, wire: WireLog, upsmons, flavour: str) -> list[str]:
    before = len(wire.sessions)
    mon = upsmons(f"wire-pri-{flavour}", [f"ups@127.0.0.1:{wire.port} 1 monpri pripw primary"],
                  flavour=flavour)
    helper = upsmons(f"wire-helper-{flavour}", [monitor(env, role="secondary")], FINALDELAY=1)
    set_status(env, "ups", "OB")
    mon.start("-D", "-p")
    helper.start("-D", "-p")
    wait_for(lambda: numlogins(env) == 2, 10, "two logins")
    set_status(env, "ups", "OB LB")
    mon.wait_shutdown()
    assert mon.wait_exit() == 0
    helper.wait_exit()
    set_status(env, "ups", "OL")
    time.sleep(0.1)
    return collapse(wire.sessions[before])


def test_wire_sequences_match_debian(wire_env, upsmons) -> None:
    env, wire = wire_env()
    deb = secondary_session(env, wire, upsmons, "debian")
    nut = secondary_session(env, wire, upsmons, "nutlite")
    expected = ["USERNAME monsec", "PASSWORD secpw", "LOGIN ups", "GET VAR ups ups.status", "LOGOUT"]
    assert deb == expected
    assert nut == expected

    deb = primary_session(*wire_env(), upsmons, "debian")
    nut = primary_session(*wire_env(), upsmons, "nutlite")
    head = ["USERNAME monpri", "PASSWORD pripw", "LOGIN ups", "PRIMARY ups", "GET VAR ups ups.status",
            "FSD ups", "GET NUMLOGINS ups"]
    assert deb == head  # Debian's upsmon just closes the connection after its SHUTDOWNCMD
    assert nut == [*head, "LOGOUT"]  # nutlite says goodbye first
