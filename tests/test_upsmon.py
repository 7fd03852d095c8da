"""nutlite upsmon as real processes on loopback: power-failure scenarios end to end.

Each test builds a private NUT setup (tests/nutenv.py) -- nutlite's upsd and drivers, or Debian's (the
``stack`` parameter) -- and runs one or more ``nutlite upsmon`` processes in their own folders with a
NOTIFYCMD that records ``time|NOTIFYTYPE|UPSNAME|message`` and a SHUTDOWNCMD that records when it ran.
The UPS is either a FakeDriver (status set by the test, precisely) or a dummy-ups reading a ``.dev``
file that the test rewrites (dummy-ups re-reads it when its mtime changes).

As root, nutlite's upsmon runs in NUT's split mode (privileged parent + monitoring child) unless a
test asks for ``-p``; POWERDOWNFLAG and the pid file live in the test's folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nutenv import (
    REPO_ROOT,
    FakeDriver,
    NutEnv,
    UpsSpec,
    dummy_ups,
    nut_quote,
    require_real_nut,
    wait_for,
)

from nutlite.config import NOTIFY_TYPES
from nutlite.upsmon.core import MAGIC
from nutlite.upsmon.shutdown import clear_stale_flag, flag_is_set, parse_shutdownexit, write_powerdownflag

REAL_UPSMON = Path("/lib/nut/upsmon")
DEBIAN_TYPES = ("ONLINE", "ONBATT", "LOWBATT", "FSD", "COMMOK", "COMMBAD", "SHUTDOWN", "REPLBATT", "NOCOMM",
                "NOPARENT", "CAL")
IS_ROOT = os.geteuid() == 0

NOTIFY_SH = """#!/bin/sh
echo "$(date +%s.%N)|$NOTIFYTYPE|$UPSNAME|$1" >> "{events}"
"""
SHUTDOWN_SH = """#!/bin/sh
echo "$(date +%s.%N) $(id -u)" >> "{out}"
"""


@dataclass
class Event:
    time: float
    type: str
    ups: str
    message: str


class Upsmon:
    """One upsmon (nutlite's or Debian's) with its own upsmon.conf, scripts, flag and pid file."""

    def __init__(self, base: Path, name: str, monitors: list[str], flavour: str = "nutlite",
                 extra: str = "", **settings: object) -> None:
        self.dir = base / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flavour = flavour
        self.monitors = monitors
        self.extra = extra
        self.settings: dict[str, object] = {
            "POLLFREQ": 1, "POLLFREQALERT": 1, "HOSTSYNC": 10, "DEADTIME": 5, "FINALDELAY": 0,
            "NOCOMMWARNTIME": 300, "MINSUPPLIES": 1,
        }
        self.settings.update({k.upper(): v for k, v in settings.items()})
        self.events_file = self.dir / "events"
        self.shutdown_file = self.dir / "shutdown"
        self.flag = self.dir / "killpower"
        self.logfile = self.dir / "upsmon.log"
        self.notify_sh = self.dir / "notify.sh"
        self.shutdown_sh = self.dir / "shutdown.sh"
        self.notify_sh.write_text(NOTIFY_SH.format(events=self.events_file))
        self.shutdown_sh.write_text(SHUTDOWN_SH.format(out=self.shutdown_file))
        for p in (self.notify_sh, self.shutdown_sh):
            p.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_conf()

    # -- configuration
    def conf_text(self, shutdowncmd: str | None = None) -> str:
        types = DEBIAN_TYPES if self.flavour == "debian" else NOTIFY_TYPES
        lines = [f"MONITOR {m}" for m in self.monitors]
        lines += [f"{k} {v}" for k, v in self.settings.items()]
        lines += [
            f"SHUTDOWNCMD {nut_quote(shutdowncmd or str(self.shutdown_sh))}",
            f"NOTIFYCMD {nut_quote(str(self.notify_sh))}",
            f"POWERDOWNFLAG {nut_quote(str(self.flag))}",
        ]
        lines += [f"NOTIFYFLAG {t} SYSLOG+EXEC" for t in types]  # never WALL: no broadcasts from tests
        return "\n".join(lines) + "\n" + self.extra

    def write_conf(self, **kw: str | None) -> None:
        (self.dir / "upsmon.conf").write_text(self.conf_text(**kw))
        (self.dir / "upsmon.conf").chmod(0o640)

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("NUT_DEBUG_LEVEL", "UPSNAME", "NOTIFYTYPE", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
            env.pop(k, None)
        env["NUT_CONFPATH"] = str(self.dir)
        env["NUT_STATEPATH"] = str(self.dir)
        env["NUT_ALTPIDPATH"] = str(self.dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def command(self, *args: str) -> list[str]:
        if self.flavour == "debian":
            inner = " ".join([str(REAL_UPSMON), *args])
            return ["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs /run/nut && exec {inner}"]
        return [sys.executable, "-m", "nutlite", "upsmon", *args]

    # -- process
    def start(self, *args: str, env: dict[str, str] | None = None, user: str | None = "root") -> Upsmon:
        """Start it (``-D``, Debian's with ``-p``). As root nutlite's gets ``-u root`` (as the harness
        gives every daemon) so that its child can use the test's root-only folder; ``user=None``
        leaves ``-u`` out, to see whom the child becomes by itself."""
        if not args:
            args = ("-D", "-p") if self.flavour == "debian" else ("-D",)
        if self.flavour == "nutlite" and IS_ROOT and user is not None:
            args = (*args, "-u", user)
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(self.command(*args), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env={**self.environ(), **(env or {})},
                                         cwd=self.dir, start_new_session=True)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float = 10) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"upsmon {self.dir.name} still running after {timeout}s\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)

    def run(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), env=self.environ(), capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)

    def check_flag(self) -> int:
        """``upsmon -K`` with this upsmon's configuration."""
        return self.run("-K").returncode

    @property
    def pid(self) -> int:
        """The pid in the pid file (the monitoring child's)."""
        return int((self.dir / "upsmon.pid").read_text().split()[0])

    # -- observations
    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def events(self) -> list[Event]:
        try:
            lines = self.events_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            t, typ, ups, msg = line.split("|", 3)
            out.append(Event(float(t), typ, ups, msg))
        return sorted(out, key=lambda e: e.time)

    def types(self) -> list[str]:
        return [e.type for e in self.events()]

    def wait_event(self, typ: str, timeout: float = 10, count: int = 1) -> Event:
        def found() -> Event | None:
            evs = [e for e in self.events() if e.type == typ]
            return evs[count - 1] if len(evs) >= count else None
        try:
            return wait_for(found, timeout, f"{typ} from {self.dir.name}")  # type: ignore[return-value]
        except AssertionError:
            raise AssertionError(f"no {typ} event from {self.dir.name} within {timeout}s; events: "
                                 f"{self.types()}\n{self.log()[-4000:]}") from None

    def shutdowns(self) -> list[float]:
        try:
            return [float(line.split()[0]) for line in self.shutdown_file.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def wait_shutdown(self, timeout: float = 10) -> float:
        try:
            wait_for(self.shutdowns, timeout, f"SHUTDOWNCMD of {self.dir.name}")
        except AssertionError:
            raise AssertionError(f"SHUTDOWNCMD of {self.dir.name} not run within {timeout}s; events: "
                                 f"{self.types()}\n{self.log()[-4000:]}") from None
        self.wait_event("SHUTDOWN", timeout=5)  # its NOTIFYCMD may still be running
        return self.shutdowns()[0]


# ------------------------------------------------------------------------------------------ fixtures


def fake_ups(name: str = "ups", status: str = "OL") -> UpsSpec:
    fake = FakeDriver("")  # NutEnv puts the socket in its statepath
    fake.setvar("device.mfr", "nutlite tests")
    fake.setvar("device.model", "Fake UPS")
    fake.setvar("ups.status", status)
    fake.setvar("battery.charge", "100")
    return UpsSpec(name, driver="dummy-ups", launch="fake", fake=fake)


def set_status(env: NutEnv, ups: str, status: str) -> None:
    fake = env.upses[ups].fake
    assert fake is not None
    fake.vars["ups.status"].value = status
    fake.broadcast(f"SETINFO ups.status {nut_quote(status)}")


def write_dev(env: NutEnv, name: str, text: str) -> None:
    """Rewrite a dummy-ups .dev file and move its mtime forward, so the driver re-reads it."""
    path = env.confpath / name
    before = path.stat().st_mtime if path.exists() else time.time()
    path.write_text(text)
    stamp = max(time.time(), before + 1.0)
    os.utime(path, (stamp, stamp))


def monitor(env: NutEnv, ups: str = "ups", role: str = "primary", power: int = 1) -> str:
    user, pw = ("monpri", "pripw") if role in ("primary", "master") else ("monsec", "secpw")
    return f"{ups}@127.0.0.1:{env.port} {power} {user} {pw} {role}"


def ups_status(env: NutEnv, ups: str = "ups") -> str:
    with env.connect() as c:
        reply = c.request(f"GET VAR {ups} ups.status")
    assert reply.startswith("VAR "), reply
    return reply.split('"')[1]


def numlogins(env: NutEnv, ups: str = "ups") -> int:
    with env.connect() as c:
        reply = c.request(f"GET NUMLOGINS {ups}")
    assert reply.startswith("NUMLOGINS "), reply
    return int(reply.split()[-1])


def wait_logins(env: NutEnv, n: int, ups: str = "ups", timeout: float = 10) -> None:
    wait_for(lambda: numlogins(env, ups) == n, timeout, f"{n} logins on {ups}")


def run_power_failure(env: NutEnv, pri: Upsmon, sec: Upsmon, sec_args: tuple[str, ...] = ()) -> tuple[float, float, float]:
    """Start both upsmons, then OL -> OB -> OB LB on UPS 'ups'; returns (when LB was set, the
    secondary's shutdown, the primary's shutdown)."""
    pri.start()
    sec.start(*sec_args)
    wait_logins(env, 2)
    set_status(env, "ups", "OB DISCHRG")
    pri.wait_event("ONBATT")
    sec.wait_event("ONBATT")
    t0 = time.time()
    set_status(env, "ups", "OB LB DISCHRG")
    t_sec = sec.wait_shutdown(timeout=10)
    t_pri = pri.wait_shutdown(timeout=15)
    return t0, t_sec, t_pri


@pytest.fixture(params=[pytest.param("nutlite", id="nutlite-stack"),
                        pytest.param("debian", id="debian-stack", marks=pytest.mark.interop)])
def stack(request: pytest.FixtureRequest) -> str:
    """The upsd + driver flavour under nutlite's upsmon."""
    if request.param == "debian":
        require_real_nut()
    return str(request.param)


@pytest.fixture
def make_env(nut_env_factory: Callable[..., NutEnv]) -> Callable[..., NutEnv]:
    """``make(upses, flavour)``: a started stack whose driver and upsd are both of ``flavour``."""

    def make(upses: list[UpsSpec], flavour: str = "nutlite", **kw: object) -> NutEnv:
        return nut_env_factory(upses, driver_flavour=flavour, upsd_flavour=flavour, **kw)

    return make


@pytest.fixture
def upsmons(tmp_path: Path) -> Iterator[Callable[..., Upsmon]]:
    made: list[Upsmon] = []

    def make(name: str, monitors: list[str], **kw: object) -> Upsmon:
        m = Upsmon(tmp_path / "upsmon", name, monitors, **kw)  # type: ignore[arg-type]
        made.append(m)
        return m

    yield make
    for m in made:
        m.kill()


# ------------------------------------------------------------------------------------------ scenarios


def test_a_primary_waits_for_secondary_then_shuts_down(stack: str, make_env, upsmons) -> None:
    """OL -> OB -> OB LB: the primary sets FSD, waits for the secondary to log out, writes the flag,
    runs SHUTDOWNCMD; the secondary shuts down on FSD; ``upsmon -K`` then says yes on both."""
    env = make_env([fake_ups()], stack)
    pri = upsmons("primary", [monitor(env, role="primary")], HOSTSYNC=10, FINALDELAY=0)
    sec = upsmons("secondary", [monitor(env, role="secondary")], HOSTSYNC=10, FINALDELAY=2)
    assert pri.check_flag() == 1
    t0, t_sec, t_pri = run_power_failure(env, pri, sec, ("-D", "-p"))  # the primary in split mode when root
    assert ups_status(env).split()[0] == "FSD"
    # the primary waited for the secondary: FSD seen (<= 1 poll) + its FINALDELAY of 2 s, not HOSTSYNC
    assert t_pri >= t_sec, (t_pri, t_sec)
    assert t_pri - t0 >= 2.0
    assert t_pri - t0 < 8.0, f"primary waited {t_pri - t0:.1f}s: looks like HOSTSYNC expired"
    assert pri.wait_exit() == 0
    assert sec.wait_exit() == 0
    assert sorted(pri.types()) == ["LOWBATT", "ONBATT", "SHUTDOWN"]
    assert sorted(sec.types()) == ["FSD", "LOWBATT", "ONBATT", "SHUTDOWN"]
    shutdown_ev = [e for e in sec.events() if e.type == "SHUTDOWN"][0]
    assert shutdown_ev.ups == ""
    assert [e.ups for e in sec.events() if e.type == "FSD"] == [f"ups@127.0.0.1:{env.port}"]
    for m in (pri, sec):
        assert m.flag.read_bytes() == MAGIC.encode()
        assert m.check_flag() == 0
        assert len(m.shutdowns()) == 1
    assert numlogins(env) == 0


def test_b_short_outage_does_not_shut_down(stack: str, make_env, upsmons) -> None:
    """OB for a while, then OL again: ONBATT and ONLINE once each, nothing else, no shutdown."""
    env = make_env([dummy_ups("ups", dev="ups.dev", options={"pollinterval": "1"})], stack,
                   files={"ups.dev": "ups.status: OL\nbattery.charge: 100\n"})
    mon = upsmons("mon", [monitor(env, role="primary")], DEADTIME=3)
    mon.start()
    wait_logins(env, 1)
    time.sleep(1.2)
    write_dev(env, "ups.dev", "ups.status: OB DISCHRG\nbattery.charge: 80\n")
    mon.wait_event("ONBATT")
    time.sleep(3.5)  # several POLLFREQALERT polls, and longer than DEADTIME: data stays fresh
    write_dev(env, "ups.dev", "ups.status: OL CHRG\nbattery.charge: 81\n")
    mon.wait_event("ONLINE")
    time.sleep(2)
    assert mon.types() == ["ONBATT", "ONLINE"]
    assert mon.running()
    assert mon.shutdowns() == [] and not mon.flag.exists()
    assert mon.check_flag() == 1
    ups = f"ups@127.0.0.1:{env.port}"
    assert [e.ups for e in mon.events()] == [ups, ups]
    # -c stop: logs out, both processes end, the pid file goes
    assert mon.run("-c", "stop").returncode == 0
    assert mon.wait_exit() == 0
    wait_logins(env, 0)
    assert not (mon.dir / "upsmon.pid").exists()


def test_c_driver_killed_while_on_line(stack: str, make_env, upsmons) -> None:
    """Losing the driver while on line power: COMMBAD, then NOCOMM; DEADTIME passes without a shutdown;
    COMMOK when the driver is back."""
    env = make_env([dummy_ups("ups", dev="ups.dev", options={"pollinterval": "1"})], stack,
                   files={"ups.dev": "ups.status: OL\n"})
    mon = upsmons("mon", [monitor(env, role="primary")], DEADTIME=2, NOCOMMWARNTIME=2)
    mon.start()
    wait_logins(env, 1)
    time.sleep(1.2)
    env.kill_driver("ups")
    mon.wait_event("COMMBAD")
    mon.wait_event("NOCOMM", timeout=6)
    time.sleep(2)  # well past DEADTIME
    assert mon.shutdowns() == [] and mon.running()
    env.start_driver("ups")
    mon.wait_event("COMMOK", timeout=15)
    types = mon.types()
    assert types[0] == "COMMBAD" and types[-1] == "COMMOK"
    assert set(types[1:-1]) == {"NOCOMM"}
    assert "SHUTDOWN" not in types and "ONLINE" not in types
    assert mon.running()


def test_c_driver_killed_while_on_battery(stack: str, make_env, upsmons) -> None:
    """Losing the driver while on battery: COMMBAD, and once DEADTIME has passed the UPS counts as
    OB+LB: shutdown."""
    env = make_env([dummy_ups("ups", dev="ups.dev", options={"pollinterval": "1"})], stack,
                   files={"ups.dev": "ups.status: OL\n"})
    mon = upsmons("mon", [monitor(env, role="primary")], DEADTIME=3, HOSTSYNC=2)
    mon.start()
    wait_logins(env, 1)
    time.sleep(1.2)
    write_dev(env, "ups.dev", "ups.status: OB DISCHRG\n")
    mon.wait_event("ONBATT")
    env.kill_driver("ups")
    killed = time.time()
    mon.wait_event("COMMBAD")
    t_sd = mon.wait_shutdown(timeout=10)
    # the last good poll was at most one POLLFREQALERT (1 s) before the kill
    assert t_sd - killed >= 3 - 1.1, t_sd - killed
    assert t_sd - killed < 3 + 3
    assert mon.types() == ["ONBATT", "COMMBAD", "SHUTDOWN"]
    assert mon.flag.read_bytes() == MAGIC.encode()
    assert mon.wait_exit() == 0


def test_d_minsupplies_one_of_two(stack: str, make_env, upsmons) -> None:
    """Two UPSes of power value 1 and MINSUPPLIES 1: the system needs one healthy supply. One UPS going
    critical leaves 1 >= 1: keep running (and no FSD on it); both critical leave 0 < 1: shut down."""
    env = make_env([fake_ups("ups1"), fake_ups("ups2")], stack)
    mon = upsmons("mon", [monitor(env, "ups1"), monitor(env, "ups2", role="master")], MINSUPPLIES=1)
    mon.start()
    wait_logins(env, 1, "ups1")
    wait_logins(env, 1, "ups2")
    set_status(env, "ups1", "OB LB")
    mon.wait_event("LOWBATT")
    time.sleep(3)
    assert mon.shutdowns() == [] and mon.running()
    assert ups_status(env, "ups1") == "OB LB"  # no FSD while enough supplies are left
    set_status(env, "ups2", "OB LB")
    mon.wait_shutdown()
    assert ups_status(env, "ups1").startswith("FSD")
    assert ups_status(env, "ups2").startswith("FSD")  # "master" is primary
    assert sorted(mon.types()) == ["LOWBATT", "LOWBATT", "ONBATT", "ONBATT", "SHUTDOWN"]
    assert mon.wait_exit() == 0


def test_e_secondary_shuts_down_at_once_on_fsd(stack: str, make_env, upsmons) -> None:
    """The primary sets FSD (here: an admin does): the secondary shuts down at the next poll, even
    though the UPS is on line power."""
    env = make_env([fake_ups()], stack)
    sec = upsmons("secondary", [monitor(env, role="slave")], HOSTSYNC=30)  # the old word still works
    sec.start()
    wait_logins(env, 1)
    time.sleep(1.2)
    with env.connect() as c:
        assert c.request("USERNAME admin") == "OK"
        assert c.request("PASSWORD adminpw") == "OK"
        t0 = time.time()
        assert c.request("FSD ups") == "OK FSD-SET"
    t_sd = sec.wait_shutdown(timeout=5)
    assert t_sd - t0 < 3.0  # next poll (POLLFREQ 1) + FINALDELAY 0
    assert sorted(sec.types()) == ["FSD", "SHUTDOWN"]  # one poll: their NOTIFYCMDs run in parallel
    assert sec.flag.read_bytes() == MAGIC.encode()
    assert sec.wait_exit() == 0
    wait_logins(env, 0)


# ------------------------------------------------------------------------------------------ more behaviour


def test_c_fsd_simulates_an_outage(make_env, upsmons) -> None:
    """``upsmon -c fsd`` on a primary: FSD on the UPS, the secondary follows, the primary shuts down."""
    env = make_env([fake_ups()])
    pri = upsmons("primary", [monitor(env, role="primary")])
    sec = upsmons("secondary", [monitor(env, role="secondary")], FINALDELAY=1)
    pri.start()
    sec.start()
    wait_logins(env, 2)
    wait_for(lambda: (pri.dir / "upsmon.pid").exists(), 5, "pid file")
    assert pri.run("-c", "fsd").returncode == 0
    t_sec = sec.wait_shutdown()
    t_pri = pri.wait_shutdown()
    assert t_pri >= t_sec
    assert ups_status(env).startswith("FSD")
    assert pri.types() == ["SHUTDOWN"]
    assert sorted(sec.types()) == ["FSD", "SHUTDOWN"]
    assert pri.wait_exit() == 0 and sec.wait_exit() == 0


def test_reload_rereads_config_but_keeps_shutdowncmd(make_env, upsmons, tmp_path: Path) -> None:
    env = make_env([fake_ups(), fake_ups("ups2")])
    mon = upsmons("mon", [monitor(env, role="primary")], extra='NOTIFYMSG ONBATT "first %s"\n')
    mon.start()
    wait_logins(env, 1)
    wait_for(lambda: (mon.dir / "upsmon.pid").exists(), 5, "pid file")
    other = tmp_path / "other.sh"
    other.write_text(f"#!/bin/sh\ntouch {tmp_path}/other-ran\n")
    other.chmod(0o755)
    mon.monitors.append(monitor(env, "ups2", role="secondary", power=0))
    mon.extra = 'NOTIFYMSG ONBATT "second %s"\n'
    mon.write_conf(shutdowncmd=str(other))
    assert mon.run("-c", "reload").returncode == 0
    wait_logins(env, 1, "ups2")  # the new MONITOR line is being polled
    set_status(env, "ups", "OB")
    ev = mon.wait_event("ONBATT")
    assert ev.message == f"second ups@127.0.0.1:{env.port}"
    assert "SHUTDOWNCMD changed" in mon.log()
    set_status(env, "ups", "OB LB")
    mon.wait_shutdown()
    assert not (tmp_path / "other-ran").exists()  # the SHUTDOWNCMD of the start stays


def test_stale_flag_removed_foreign_flag_kept(make_env, upsmons) -> None:
    env = make_env([fake_ups()])
    mon = upsmons("mon", [monitor(env, role="secondary")])
    mon.flag.write_bytes(MAGIC.encode() + b"\n")
    assert mon.check_flag() == 0
    mon.start()
    wait_logins(env, 1)
    assert not mon.flag.exists()
    assert mon.check_flag() == 1
    assert mon.run("-c", "stop").returncode == 0
    assert mon.wait_exit() == 0

    mon.flag.write_text("important data\n")
    mon.start()
    wait_logins(env, 1)
    assert mon.flag.read_text() == "important data\n"
    assert "was not written by upsmon" in mon.log()
    set_status(env, "ups", "FSD OB LB")
    mon.wait_shutdown()
    assert mon.flag.read_text() == "important data\n"  # never overwritten
    assert mon.check_flag() == 1


@pytest.mark.skipif(not IS_ROOT, reason="the privileged parent needs root")
def test_parent_death_is_noparent(make_env, upsmons) -> None:
    env = make_env([fake_ups()])
    mon = upsmons("mon", [monitor(env, role="primary")])
    mon.start("-D")
    wait_logins(env, 1)
    wait_for(lambda: (mon.dir / "upsmon.pid").exists(), 5, "pid file")
    child = mon.pid
    assert mon.proc is not None and child != mon.proc.pid
    os.kill(mon.proc.pid, signal.SIGKILL)  # the parent
    mon.proc.wait(5)
    ev = mon.wait_event("NOPARENT", timeout=5)
    assert ev.ups == ""
    # the child keeps monitoring
    set_status(env, "ups", "OB")
    mon.wait_event("ONBATT")
    os.kill(child, signal.SIGTERM)
    wait_for(lambda: numlogins(env) == 0, 10, "the child to log out")
    assert mon.types() == ["NOPARENT", "ONBATT"]


@pytest.mark.skipif(not IS_ROOT, reason="the privileged parent needs root")
def test_parent_follows_its_child(make_env, upsmons) -> None:
    """The parent exits with the child: status 0 after a clean stop, non-zero if the child was killed."""
    env = make_env([fake_ups()])
    mon = upsmons("mon", [monitor(env, role="secondary")])
    for sig, code in ((signal.SIGTERM, 0), (signal.SIGKILL, 1)):
        with contextlib.suppress(FileNotFoundError):
            (mon.dir / "upsmon.pid").unlink()
        mon.start("-D")
        wait_logins(env, 1)
        wait_for(lambda: (mon.dir / "upsmon.pid").exists(), 5, "pid file")
        os.kill(mon.pid, sig)
        assert mon.wait_exit() == code
        wait_logins(env, 0)
    assert "monitoring process ended without reporting its status (killed by a signal?)" in mon.log()


@pytest.mark.skipif(not IS_ROOT, reason="privilege separation needs root")
def test_unprivileged_child_privileged_parent(make_env, upsmons, tmp_path: Path) -> None:
    """RUN_AS_USER nobody: the monitoring child runs as nobody, yet the root parent writes the flag in
    a root-only folder and runs SHUTDOWNCMD as root."""
    import pwd
    import tempfile

    nobody = pwd.getpwnam("nobody")
    env = make_env([fake_ups()])
    pub = Path(tempfile.mkdtemp(prefix="nutlite-upsmon-", dir="/tmp"))
    try:
        pub.chmod(0o755)
        mon = Upsmon(pub, "mon", [monitor(env, role="primary")], extra="RUN_AS_USER nobody\n")
        mon.dir.chmod(0o777)  # the child (nobody) appends to the events file here
        secret = pub / "rootonly"
        secret.mkdir(mode=0o700)
        mon.flag = secret / "killpower"
        mon.write_conf()
        mon.start("-D", user=None)
        try:
            wait_logins(env, 1)
            wait_for(lambda: (mon.dir / "upsmon.pid").exists(), 5, "pid file")
            child = mon.pid
            uids = [int(x) for x in Path(f"/proc/{child}/status").read_text().split("Uid:")[1].split()[:4]]
            assert uids == [nobody.pw_uid] * 4
            assert mon.proc is not None and os.stat(f"/proc/{mon.proc.pid}").st_uid == 0
            # the root parent is the small standalone one, not a copy of the monitoring process
            assert "nutlite/upsmon/parent.sh" in Path(f"/proc/{mon.proc.pid}/cmdline").read_text()
            set_status(env, "ups", "OB LB")
            mon.wait_shutdown()
            assert mon.shutdown_file.read_text().split()[1] == "0"  # SHUTDOWNCMD ran as root
            assert mon.flag.read_bytes() == MAGIC.encode()
            assert sorted(mon.types()) == ["LOWBATT", "ONBATT", "SHUTDOWN"]
            assert mon.wait_exit() == 0
        finally:
            mon.kill()
    finally:
        subprocess.run(["rm", "-rf", str(pub)], check=False)


def proc_uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid of ``pid``, from /proc/<pid>/status."""
    status = Path(f"/proc/{pid}/status").read_text()
    return [int(x) for x in status.split("Uid:")[1].split()[:4]]


@pytest.mark.skipif(not IS_ROOT, reason="whom the child becomes matters only when started as root")
@pytest.mark.parametrize(("extra", "args", "expected"), [
    pytest.param("", (), "nut", id="no-u-no-RUN_AS_USER-is-nut"),
    pytest.param("RUN_AS_USER nut\n", ("-u", "nobody"), "nobody", id="u-wins-over-RUN_AS_USER"),
])
def test_child_user(make_env, extra: str, args: tuple[str, ...], expected: str) -> None:
    """Started as root, the monitoring child becomes -u, else RUN_AS_USER, else NUT's nut account;
    the parent stays root."""
    import pwd
    import tempfile

    want = pwd.getpwnam(expected).pw_uid
    env = make_env([fake_ups()])
    pub = Path(tempfile.mkdtemp(prefix="nutlite-upsmon-", dir="/tmp"))
    try:
        pub.chmod(0o755)
        mon = Upsmon(pub, "mon", [monitor(env, role="secondary")], extra=extra)
        mon.start("-D", *args, user=None)
        try:
            wait_logins(env, 1)
            wait_for(lambda: (mon.dir / "upsmon.pid").exists(), 5, "pid file")
            assert mon.proc is not None and mon.pid != mon.proc.pid
            assert proc_uids(mon.pid) == [want] * 4, mon.log()
            assert proc_uids(mon.proc.pid) == [0] * 4
            assert mon.running()
        finally:
            mon.kill()
    finally:
        subprocess.run(["rm", "-rf", str(pub)], check=False)


@pytest.mark.skipif(not IS_ROOT, reason="the user switch happens only when started as root")
def test_unknown_user_is_refused_before_starting(tmp_path: Path) -> None:
    mon = Upsmon(tmp_path, "mon", ["ups@127.0.0.1:1 1 u p secondary"], extra="RUN_AS_USER nosuchuser\n")
    r = mon.run("-D")
    assert r.returncode == 1
    assert "user 'nosuchuser' does not exist" in r.stderr and "Traceback" not in r.stderr
    assert not (mon.dir / "upsmon.pid").exists()


def test_logins_logged_in_plain_words(make_env, upsmons) -> None:
    """While a primary waits for its secondaries it logs the login counts as words, not a Python dict."""
    env = make_env([fake_ups()])
    mon = upsmons("mon", [monitor(env, role="primary")])
    mon.start()
    wait_logins(env, 1)
    set_status(env, "ups", "OB LB")
    mon.wait_shutdown()
    lines = [ln for ln in mon.log().splitlines() if "logins:" in ln]
    assert lines, mon.log()
    assert all(ln.endswith(f"logins: ups@127.0.0.1:{env.port} = 1") for ln in lines), lines


def test_sd_notify_ready_and_watchdog(make_env, upsmons, tmp_path: Path) -> None:
    """Under systemd: READY=1 after the first poll round, WATCHDOG=1 while monitoring."""
    import socket

    env = make_env([fake_ups()])
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    got: list[str] = []
    mon = upsmons("mon", [monitor(env, role="primary")], POLLFREQ=5)
    mon.start(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})

    def receive() -> bool:
        with contextlib.suppress(TimeoutError):
            got.extend(sock.recv(4096).decode().split("\n"))
        return "READY=1" in got and got.count("WATCHDOG=1") >= 3

    try:
        wait_for(receive, 10, "READY=1 and WATCHDOG=1 messages", interval=0)
    finally:
        sock.close()
    assert got.index("READY=1") >= 0
    assert any(x.startswith("STATUS=monitoring 1 UPS") for x in got)


def test_background_mode(make_env, upsmons) -> None:
    """Without -D/-F upsmon goes to the background; ``-c stop`` finds it through the pid file."""
    env = make_env([fake_ups()])
    mon = upsmons("mon", [monitor(env, role="secondary")])
    mon.start("-B")
    assert mon.wait_exit(10) == 0  # the launcher returns at once
    wait_logins(env, 1)
    wait_for(lambda: (mon.dir / "upsmon.pid").exists(), 5, "pid file")
    pids = [mon.pid]
    with contextlib.suppress(OSError, IndexError, ValueError):
        pids.append(int(Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()[1]))
    try:
        assert mon.run("-c", "stop").returncode == 0
        wait_logins(env, 0)

        def gone() -> bool:
            try:
                os.kill(pids[0], 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 5, "the daemon to exit")
    finally:
        for pid in pids:  # only our own upsmon processes, should any be left
            with contextlib.suppress(OSError):
                if pid > 1 and b"upsmon" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


def test_bad_login_is_comm_loss_not_a_crash(make_env, upsmons) -> None:
    env = make_env([fake_ups()])
    mon = upsmons("mon", [f"ups@127.0.0.1:{env.port} 1 monpri wrongpw primary"], NOCOMMWARNTIME=1)
    mon.start("-D", "-p")
    mon.wait_event("COMMBAD")
    mon.wait_event("NOCOMM", timeout=5)
    assert mon.running()
    assert "Access denied" in mon.log()


def test_config_errors_are_fatal_and_clear(tmp_path: Path) -> None:
    mon = Upsmon(tmp_path, "mon", ["ups@127.0.0.1:1 1 u p primary"], MINSUPPLIES=2)
    r = mon.run("-D", "-p")
    assert r.returncode == 1
    assert "add up to 1" in r.stderr and "MINSUPPLIES is 2" in r.stderr
    mon.monitors = []
    mon.settings["MINSUPPLIES"] = 0
    mon.write_conf()
    r = mon.run("-D", "-p")
    assert r.returncode == 1 and "no MONITOR line" in r.stderr


def test_check_flag_without_powerdownflag(tmp_path: Path) -> None:
    mon = Upsmon(tmp_path, "mon", ["ups@127.0.0.1:1 1 u p primary"])
    (mon.dir / "upsmon.conf").write_text("MONITOR ups@127.0.0.1:1 1 u p primary\n")
    r = mon.run("-K")
    assert r.returncode == 1 and "POWERDOWNFLAG" in r.stderr


def test_control_without_running_instance(tmp_path: Path) -> None:
    mon = Upsmon(tmp_path, "mon", ["ups@127.0.0.1:1 1 u p primary"])
    r = mon.run("-c", "reload")
    assert r.returncode == 1 and "no pid file" in r.stderr


# ------------------------------------------------------------------------------------------ helpers (unit)


def test_flag_helpers(tmp_path: Path) -> None:
    flag = tmp_path / "killpower"
    assert not flag_is_set(flag)
    assert write_powerdownflag(str(flag))
    assert flag.read_bytes() == b"upsmon-shutdown-file"
    assert flag_is_set(flag)
    assert clear_stale_flag(str(flag)) == str(flag) and not flag.exists()
    flag.write_text("upsmon-shutdown-filex")  # a prefix match, as NUT's check
    assert flag_is_set(flag)
    flag.write_text("something else")
    assert not flag_is_set(flag)
    assert clear_stale_flag(str(flag)) is None and flag.exists()
    assert clear_stale_flag(str(tmp_path / "missing")) == str(tmp_path / "missing")
    assert clear_stale_flag(None) is None
    assert clear_stale_flag(str(tmp_path)) is None  # a directory: unusable
    assert not write_powerdownflag(str(tmp_path / "no" / "such" / "dir"))
    assert write_powerdownflag(None)


def test_parse_shutdownexit() -> None:
    assert parse_shutdownexit("yes") == 0
    assert parse_shutdownexit("no") == float("inf")
    assert parse_shutdownexit("-1") == float("inf")
    assert parse_shutdownexit("5") == 5
    assert parse_shutdownexit("0") == 0
    assert parse_shutdownexit("bogus") == 0


def test_parent_started_by_hand_says_how_it_is_meant_to_run() -> None:
    """The standalone parent refuses a command line upsmon would not give it, in one line."""
    from nutlite.upsmon import parent

    for args in ([], ["x", "upsmon", "0", "", ""], ["12", "upsmon", "0", ""]):
        r = subprocess.run([parent.SHELL, parent.SCRIPT, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2
        assert r.stderr.startswith("upsmon parent: ") and "Traceback" not in r.stderr
