"""clone and clone-outlet: the sans-IO core, and side by side with Debian's NUT 2.8.0 binaries.

The parent driver is a :class:`FakeDriver` (a driver socket at the lowest layer) so that the test
sees every command a clone sends to it. Debian's clone and nutlite's read twin parents that get the
same changes at the same time, and publish on their own sockets (and through Debian's upsd).

Allowed differences (with their reasons):

* ``driver.version``: the package version of each implementation;
* the parent going away: Debian's clone keeps serving the last values as fresh (upsmon cannot tell
  that nobody watches the device any more) and reconnects about 15 s later; nutlite's marks its data
  stale at once and reconnects at the next poll after the parent is back;
* killpower (``-k``): Debian's 2.8.0 clone says "shutdown not supported", exits 1 and sends nothing;
  nutlite's asks the running clone, which does what ``shutdown.return`` does: ``load.off`` after
  ``offdelay``, ``load.on`` ``ondelay`` after the power is back;
* the parent's LB alone (charge and runtime above ``mincharge``/``minruntime``): nutlite's clone starts
  the outlet's shutdown, as the man page's "shutdown condition (OB LB)" says; Debian's only passes LB on
  (see test_side_by_side_parent_low_battery_alone);
* Debian's 2.8.0 clone aborts when it writes to a socket client that went away and dies on
  ``shutdown.return`` without ``load.status``; nutlite's does not (the tests keep their connections
  open and set ``load.status`` so that Debian's survives them);
* timer values may be one poll apart while they run: NUT counts a poll ``pollinterval`` after the
  parent's last message, nutlite polls on a fixed beat; what reaches the parent and when is the same
  within one poll.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nutenv import (
    REAL_NUT_DIR,
    REAL_UPSD,
    REPO_ROOT,
    STAY_ROOT,
    FakeDriver,
    free_port,
    nut_split,
    require_real_nut,
)

from nutlite.drivers.clone_core import CloneCore, CloneOutletCore, CloneSettings, ParentReader
from nutlite.drivers.framework.core import DriverError, DriverState, Status

# --------------------------------------------------------------------------------------------------
# Unit tests of the core

PARENT_DUMP = b"""SETINFO device.mfr "ACME"
SETINFO device.model "Rack 3000"
SETINFO driver.name "snmp-ups"
SETINFO driver.version "2.8.0"
SETINFO battery.charge "100"
SETINFO battery.runtime "1800"
SETINFO battery.charge.low "10"
SETINFO ups.delay.shutdown "20"
SETINFO outlet.1.status "on"
SETINFO outlet.1.desc "Outlet 1"
SETFLAGS outlet.1.desc RW STRING
SETAUX outlet.1.desc 20
SETINFO ups.status "OL"
ADDCMD outlet.1.load.off
ADDCMD outlet.1.load.on
DATAOK
DUMPDONE
"""


def settings(**kw: str) -> CloneSettings:
    values = {"load.off": "outlet.1.load.off", "load.on": "outlet.1.load.on", "load.status": "outlet.1.status",
              "offdelay": "6", "ondelay": "4", **kw}
    return CloneSettings.parse(values.get)


def make_clone(**kw: str) -> tuple[CloneCore, DriverState]:
    st = DriverState()
    core = CloneCore(st, settings(**kw))
    core.publish_own()
    assert core.on_connect() == ["DUMPALL"]
    feed(core, PARENT_DUMP)
    return core, st


def feed(core: CloneOutletCore, data: bytes) -> list[str]:
    out: list[str] = []
    for words in ParentReader().feed(data):
        out.extend(core.feed(words))
    return out


def put(core: CloneOutletCore, name: str, value: str) -> None:
    feed(core, f'SETINFO {name} "{value}"\n'.encode())


def test_relays_the_parent_without_its_driver_vars_flags_or_commands() -> None:
    _, st = make_clone(mincharge="30")
    assert st.value("device.model") == "Rack 3000"
    assert st.value("driver.name") is None  # the framework publishes the clone's own driver.*
    assert st.value("outlet.1.desc") == "Outlet 1"
    assert st.get("outlet.1.desc").flags == set()  # type: ignore[union-attr]
    assert st.cmd_list() == ["shutdown.return", "shutdown.stayoff"]
    # the clone's own values win over the parent's
    assert st.value("battery.charge.low") == "30"
    assert st.get("battery.charge.low").flags == {"RW", "STRING"}  # type: ignore[union-attr]
    assert st.value("ups.delay.shutdown") == "6" and st.value("ups.delay.start") == "4"
    assert st.value("ups.timer.shutdown") == "-1" and st.value("ups.timer.start") == "-1"
    assert not st.stale


def test_low_battery_on_battery_runs_the_outlet_down_and_back_up() -> None:
    core, st = make_clone()
    put(core, "ups.status", "OB")
    assert st.value("ups.status") == "OB"
    put(core, "ups.status", "OB LB")
    assert st.value("ups.status") == "FSD OB LB"
    assert st.value("ups.timer.shutdown") == "6"
    assert core.tick(2) == [] and st.value("ups.timer.shutdown") == "4"
    assert core.tick(2) == [] and st.value("ups.timer.shutdown") == "2"
    assert core.tick(2) == [] and st.value("ups.timer.shutdown") == "0"
    assert core.tick(2) == ["INSTCMD outlet.1.load.off"]
    assert st.value("ups.timer.shutdown") == "-1"
    # the start timer waits for the power
    assert core.tick(2) == [] and st.value("ups.timer.start") == "4"
    put(core, "ups.status", "OL")
    assert st.value("ups.status") == "OL"
    assert core.tick(2) == [] and st.value("ups.timer.start") == "2"
    assert core.tick(2) == [] and st.value("ups.timer.start") == "0"
    assert core.tick(2) == ["INSTCMD outlet.1.load.on"]
    assert st.value("ups.timer.start") == "-1"


def test_fsd_stays_while_the_shutdown_timer_runs_even_if_power_returns() -> None:
    core, st = make_clone()
    put(core, "ups.status", "OB LB")
    put(core, "ups.status", "OL")
    assert st.value("ups.status") == "FSD OL"


def test_mincharge_and_minruntime_only_count_on_battery() -> None:
    core, st = make_clone(mincharge="50", minruntime="600")
    put(core, "battery.charge", "40")
    assert st.value("ups.status") == "OL"
    put(core, "battery.charge", "90")
    put(core, "ups.status", "OB")
    assert st.value("ups.status") == "OB"
    put(core, "battery.runtime", "500")
    assert st.value("ups.status") == "FSD OB"
    # LB itself is not added: FSD is the clone's signal
    core2, st2 = make_clone(mincharge="50")
    put(core2, "ups.status", "OB")
    put(core2, "battery.charge", "49")
    assert st2.value("ups.status") == "FSD OB"


def test_shutdown_commands() -> None:
    core, st = make_clone()
    assert core.instcmd("shutdown.return", None) == (Status.HANDLED, [])
    assert st.value("ups.status") == "FSD OL"
    out = [line for _ in range(4) for line in core.tick(2)]
    assert out == ["INSTCMD outlet.1.load.off"]
    put(core, "outlet.1.status", "off")
    out = [line for _ in range(3) for line in core.tick(2)]
    assert out == ["INSTCMD outlet.1.load.on"] and st.value("ups.status") == "OL"
    # stayoff: off, and never back on
    core, st = make_clone()
    core.instcmd("shutdown.stayoff", None)
    out = [line for _ in range(12) for line in core.tick(2)]
    assert out == ["INSTCMD outlet.1.load.off"]
    # an outlet already off (load.status) is left alone
    core, st = make_clone()
    put(core, "outlet.1.status", "off")
    assert core.instcmd("shutdown.return", None) == (Status.HANDLED, [])
    assert st.value("ups.status") == "OL" and not [line for _ in range(6) for line in core.tick(2)]
    assert core.instcmd("beeper.toggle", None) == (Status.UNKNOWN, [])


def test_thresholds_are_writable() -> None:
    core, st = make_clone()
    assert core.setvar("battery.charge.low", "60") == Status.HANDLED
    assert core.setvar("battery.charge.low", "lots") == Status.INVALID
    assert core.setvar("ups.delay.shutdown", "30") == Status.UNKNOWN
    put(core, "ups.status", "OB")
    assert st.value("ups.status") == "OB"
    put(core, "battery.charge", "59")
    assert st.value("ups.status") == "FSD OB"


def test_parent_loss_stale_and_redump() -> None:
    core, st = make_clone()
    feed(core, b"DATASTALE\n")
    assert st.stale and core.wants_redump()
    core.on_lost()
    assert st.stale and not core.connected
    assert core.on_connect() == ["DUMPALL"] and st.value("ups.status") == "WAIT"
    feed(core, PARENT_DUMP)
    assert not st.stale and st.value("ups.status") == "OL"
    # a command due while the parent is away is sent once it is back
    core.instcmd("shutdown.stayoff", None)
    core.on_lost()
    assert [line for _ in range(5) for line in core.tick(2)] == []
    core.on_connect()
    feed(core, PARENT_DUMP)
    assert core.tick(2) == ["INSTCMD outlet.1.load.off"]


def test_clone_outlet_adds_off() -> None:
    st = DriverState()
    core = CloneOutletCore(st, "outlet.1")
    core.on_connect()
    feed(core, PARENT_DUMP)
    assert st.value("ups.status") == "OL" and st.cmd_list() == []
    put(core, "outlet.1.status", "OFF")
    assert st.value("ups.status") == "OL OFF"
    put(core, "ups.status", "OB LB")
    assert st.value("ups.status") == "OB LB OFF"
    feed(core, b"DELINFO outlet.1.desc\n")
    assert st.value("outlet.1.desc") is None
    assert core.instcmd("load.off", None) == (Status.UNKNOWN, [])


@pytest.mark.parametrize(("key", "value", "words"), [
    ("offdelay", "soon", "offdelay"), ("ondelay", "-5", "ondelay"), ("mincharge", "half", "mincharge")])
def test_bad_settings_are_named(key: str, value: str, words: str) -> None:
    with pytest.raises(DriverError, match=words):
        settings(**{key: value})


# --------------------------------------------------------------------------------------------------
# Side by side with Debian's binaries

OUTLET_OPTS = {"load.off": "outlet.1.load.off", "load.on": "outlet.1.load.on", "load.status": "outlet.1.status"}


def fill_parent(fd: FakeDriver) -> None:
    for name, value in (("device.mfr", "ACME"), ("device.model", "Rack 3000"), ("device.type", "ups"),
                        ("driver.name", "snmp-ups"), ("driver.version", "2.8.0"), ("battery.charge", "100"),
                        ("battery.runtime", "1800"), ("input.voltage", "230.0"), ("ups.mfr", "ACME"),
                        ("ups.model", "Rack 3000"), ("ups.delay.shutdown", "20"), ("outlet.1.status", "on"),
                        ("outlet.2.status", "on"), ("ups.status", "OL")):
        fd.setvar(name, value)
    fd.setvar("outlet.1.desc", "Outlet 1", flags=("RW", "STRING"), aux=20)
    fd.addcmd("outlet.1.load.off", "outlet.1.load.on", "load.off", "shutdown.return")


class Monitor:
    """One lasting connection to a driver socket (Debian's 2.8.0 clone aborts -- "bit out of range 0 -
    FD_SETSIZE" -- when a client that went away is written to, so the test keeps its connections)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(3.0)
        self.sock.connect(str(path))
        self.buf = b""

    def lines_until(self, end: Callable[[str], bool]) -> list[str]:
        out: list[str] = []
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("the driver closed the connection")
                self.buf += data
            raw, _, self.buf = self.buf.partition(b"\n")
            line = raw.decode("latin-1")
            out.append(line)
            if end(line):
                return out

    def dump(self) -> tuple[dict[str, str], list[str], bool]:
        self.sock.sendall(b"DUMPALL\n")
        lines = self.lines_until(lambda s: s == "DUMPDONE")
        values: dict[str, str] = {}
        cmds: list[str] = []
        stale = False
        for line in lines:  # broadcasts that came before the dump are overwritten by it
            w = nut_split(line)
            if w[:1] == ["SETINFO"]:
                values[w[1]] = w[2]
            elif w[:1] == ["DELINFO"]:
                values.pop(w[1], None)
            elif w[:1] == ["ADDCMD"]:
                cmds.append(w[1])
            elif w[:1] == ["DATASTALE"]:
                stale = True
            elif w[:1] == ["DATAOK"]:
                stale = False
        return values, cmds, stale

    def instcmd(self, cmd: str) -> str:
        self.sock.sendall(f"INSTCMD {cmd} TRACKING t1\n".encode())
        return self.lines_until(lambda s: s.startswith("TRACKING t1 "))[-1].split()[-1]

    def close(self) -> None:
        self.sock.close()


class Site:
    """A state path with twin parents and a Debian and a nutlite clone of each kind."""

    def __init__(self, base: Path, clone_opts: dict[str, str]) -> None:
        self.base = base
        self.etc, self.state = base / "etc", base / "state"
        self.etc.mkdir()
        self.state.mkdir()
        self.parents = {flavour: FakeDriver(self.state / f"dummy-ups-real-{flavour}") for flavour in ("deb", "nl")}
        for fd in self.parents.values():
            fill_parent(fd)
        lines = []
        for flavour in ("deb", "nl"):
            lines += [f"[real-{flavour}]", "  driver = dummy-ups", "  port = real.dev", ""]
            lines += [f"[{flavour}]", "  driver = clone", f"  port = dummy-ups-real-{flavour}"]
            lines += [f'  {k} = "{v}"' for k, v in clone_opts.items()] + [""]
            lines += [f"[{flavour}o]", "  driver = clone-outlet", f"  port = dummy-ups-real-{flavour}",
                      "  prefix = outlet.1", ""]
        (self.etc / "ups.conf").write_text("\n".join(lines))
        self.port = free_port()
        (self.etc / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\n")
        (self.etc / "upsd.users").write_text("")
        self.env = {**os.environ, "NUT_CONFPATH": str(self.etc), "NUT_STATEPATH": str(self.state),
                    "NUT_ALTPIDPATH": str(self.state), "PYTHONPATH": str(REPO_ROOT)}
        for k in ("NUT_DEBUG_LEVEL", "UPSD_OPTIONS"):
            self.env.pop(k, None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.monitors: dict[str, Monitor] = {}

    def argv(self, ups: str, *extra: str) -> list[str]:
        if ups.startswith("deb"):
            return [str(REAL_NUT_DIR / ("clone-outlet" if ups.endswith("o") else "clone")), "-a", ups, *extra,
                    *STAY_ROOT]
        return [sys.executable, "-m", "nutlite", "driver", "-a", ups, *extra, *STAY_ROOT]

    def spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.base / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, cwd=self.base, start_new_session=True)
        log.close()

    def sock(self, ups: str) -> Path:
        return self.state / (f"clone-outlet-{ups}" if ups.endswith("o") else f"clone-{ups}")

    def dump(self, ups: str) -> tuple[dict[str, str], list[str], bool]:
        if ups not in self.monitors:
            self.monitors[ups] = Monitor(self.sock(ups))
        return self.monitors[ups].dump()

    def start(self) -> None:
        for fd in self.parents.values():
            fd.start()
        for ups in ("deb", "nl", "debo", "nlo"):
            self.spawn(ups, self.argv(ups, "-F"))
        for ups in ("deb", "nl", "debo", "nlo"):
            wait(lambda u=ups: self.sock(u).exists() and self.dump(u)[0].get("ups.status"), 15, f"{ups} up", self)

    def start_upsd(self) -> None:
        self.spawn("upsd", [str(REAL_UPSD), "-F", *STAY_ROOT])

        def listening() -> bool:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", self.port))
                return True
            return False
        wait(listening, 15, "upsd listening", self)

    def put(self, name: str, value: str) -> None:
        for fd in self.parents.values():
            fd.vars[name].value = value
            fd.broadcast(f'SETINFO {name} "{value}"')

    def commands(self, flavour: str) -> list[str]:
        return [line for line in self.parents[flavour].received if line.startswith("INSTCMD")]

    def stop(self) -> None:
        for m in self.monitors.values():
            m.close()
        for p in self.procs.values():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 15)
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait(5)
        for fd in self.parents.values():
            fd.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}" for f in self.base.glob("*.log"))


def wait(pred: Callable[[], object], timeout: float, what: str, site: Site | None = None) -> object:
    end = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ConnectionError):
            result = pred()
            if result:
                return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}\n{site.logs() if site else ''}")
        time.sleep(0.1)


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    require_real_nut()
    if not (REAL_NUT_DIR / "clone").exists():
        pytest.fail("Debian's /lib/nut/clone is missing (package nut-server)", pytrace=False)
    opts = getattr(request, "param", {"offdelay": "4", "ondelay": "2", "mincharge": "50", **OUTLET_OPTS})
    s = Site(tmp_path, opts)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def comparable(values: dict[str, str]) -> dict[str, str]:
    """Without what differs by construction: the version, and the twin parents' socket names."""
    return {k: v for k, v in values.items() if k not in ("driver.version", "driver.parameter.port")}


def same(site: Site, deb: str, nl: str, keys: tuple[str, ...] | None = None) -> bool:
    a, b = site.dump(deb)[0], site.dump(nl)[0]
    if keys is not None:
        return all(a.get(k) == b.get(k) for k in keys)
    return comparable(a) == comparable(b)


def test_side_by_side_same_variables_and_commands(site: Site) -> None:
    for deb, nl in (("deb", "nl"), ("debo", "nlo")):
        a, acmds, astale = site.dump(deb)
        b, bcmds, bstale = site.dump(nl)
        assert comparable(b) == comparable(a), deb
        assert (bcmds, bstale) == (acmds, astale), deb
    site.start_upsd()

    def tool(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, env=site.env).stdout

    wait(lambda: "ups.status" in tool("upsc", f"nl@127.0.0.1:{site.port}"), 10, "upsd serving", site)
    for deb, nl in (("deb", "nl"), ("debo", "nlo")):
        upsc_a = [line for line in tool("upsc", f"{deb}@127.0.0.1:{site.port}").splitlines()
                  if not line.startswith(("driver.version:", "driver.parameter.port:"))]
        upsc_b = [line for line in tool("upsc", f"{nl}@127.0.0.1:{site.port}").splitlines()
                  if not line.startswith(("driver.version:", "driver.parameter.port:"))]
        assert upsc_b == upsc_a
        cmds_a = tool("upscmd", "-l", f"{deb}@127.0.0.1:{site.port}").splitlines()[1:]
        cmds_b = tool("upscmd", "-l", f"{nl}@127.0.0.1:{site.port}").splitlines()[1:]
        assert cmds_b == cmds_a


def test_side_by_side_low_battery_runs_the_outlet_down_and_up(site: Site) -> None:
    site.put("ups.status", "OB")
    wait(lambda: same(site, "deb", "nl", ("ups.status",)) and site.dump("nl")[0]["ups.status"] == "OB",
         5, "OB on both", site)
    t0 = time.monotonic()
    site.put("battery.charge", "40")
    for ups in ("deb", "nl"):
        wait(lambda u=ups: site.dump(u)[0]["ups.status"] == "FSD OB", 5, f"FSD on {ups}", site)
    # load.off after offdelay (4 s), to within a poll (2 s)
    for flavour in ("deb", "nl"):
        wait(lambda f=flavour: site.commands(f), 10, f"load.off from {flavour}", site)
    elapsed = time.monotonic() - t0
    assert 4 - 0.5 <= elapsed <= 4 + 2 + 2.5, elapsed
    assert site.commands("deb") == site.commands("nl") == ["INSTCMD outlet.1.load.off"]
    site.put("outlet.1.status", "off")
    wait(lambda: site.dump("nlo")[0]["ups.status"] == "OB OFF", 5, "OFF on nlo", site)
    wait(lambda: same(site, "debo", "nlo"), 5, "same clone-outlet", site)
    # the start timer waits for the power, then load.on
    time.sleep(2.5)
    assert site.commands("nl") == site.commands("deb") == ["INSTCMD outlet.1.load.off"]
    t1 = time.monotonic()
    site.put("ups.status", "OL")
    for flavour in ("deb", "nl"):
        wait(lambda f=flavour: len(site.commands(f)) == 2, 8, f"load.on from {flavour}", site)
    assert time.monotonic() - t1 <= 2 + 2 + 2.5
    assert site.commands("nl") == site.commands("deb")
    assert site.commands("nl")[1] == "INSTCMD outlet.1.load.on"
    site.put("outlet.1.status", "on")
    wait(lambda: same(site, "deb", "nl") and same(site, "debo", "nlo"), 6, "same again at rest", site)
    assert site.dump("nl")[0]["ups.status"] == "OL"


def test_side_by_side_parent_low_battery_alone(site: Site) -> None:
    """Allowed difference: the parent's LB (charge and runtime above the clone's minimums) starts the
    outlet's shutdown in nutlite -- the man page's "shutdown condition (OB LB)" -- while Debian's 2.8.0
    clone only passes LB on and never switches the outlet, so after a power cut that ends before the
    UPS dies, the machines upsmon shut down on that LB are not power-cycled back on."""
    site.put("ups.status", "OB LB")
    wait(lambda: site.dump("nl")[0]["ups.status"] == "FSD OB LB", 5, "FSD on nl", site)
    wait(lambda: site.commands("nl"), 9, "load.off from nl", site)
    assert site.dump("deb")[0]["ups.status"] == "OB LB" and site.commands("deb") == []
    assert site.dump("deb")[0]["ups.timer.shutdown"] == "-1"


def test_side_by_side_shutdown_return_command(site: Site) -> None:
    for ups in ("deb", "nl"):
        site.dump(ups)
        assert site.monitors[ups].instcmd("shutdown.return") == "0"
    wait(lambda: same(site, "deb", "nl", ("ups.status",)), 3, "same status", site)
    assert site.dump("nl")[0]["ups.status"] == "FSD OL"
    for flavour in ("deb", "nl"):
        wait(lambda f=flavour: site.commands(f), 9, f"load.off from {flavour}", site)
    # the power never went away: load.on follows ondelay later, and FSD goes with it
    for flavour in ("deb", "nl"):
        wait(lambda f=flavour: len(site.commands(f)) == 2, 8, f"load.on from {flavour}", site)
    wait(lambda: same(site, "deb", "nl"), 6, "same at rest", site)
    assert site.commands("nl") == site.commands("deb") == ["INSTCMD outlet.1.load.off", "INSTCMD outlet.1.load.on"]


def test_side_by_side_parent_goes_away_and_returns(site: Site) -> None:
    for fd in site.parents.values():
        fd.stop()
    wait(lambda: site.dump("nl")[2], 5, "nutlite's clone stale", site)
    wait(lambda: site.dump("nlo")[2], 5, "nutlite's clone-outlet stale", site)
    assert not site.dump("deb")[2]  # allowed difference: Debian keeps serving the old values
    site.parents = {flavour: FakeDriver(site.state / f"dummy-ups-real-{flavour}") for flavour in ("deb", "nl")}
    for fd in site.parents.values():
        fill_parent(fd)
        fd.vars["ups.status"].value = "OB"
        fd.start()
    wait(lambda: site.dump("nl")[0]["ups.status"] == "OB" and not site.dump("nl")[2], 5,
         "nutlite back", site)
    wait(lambda: site.dump("deb")[0]["ups.status"] == "OB", 25, "Debian back", site)
    wait(lambda: same(site, "deb", "nl") and same(site, "debo", "nlo"), 5, "same after return", site)


def test_killpower_through_the_clone_honours_its_delays(site: Site) -> None:
    deb = subprocess.run(site.argv("deb", "-k"), capture_output=True, text=True, timeout=20, env=site.env)
    assert deb.returncode == 1 and "not supported" in deb.stdout + deb.stderr  # allowed difference
    assert site.commands("deb") == []
    t0 = time.monotonic()
    nl = subprocess.run(site.argv("nl", "-k"), capture_output=True, text=True, timeout=20, env=site.env)
    assert nl.returncode == 0, nl.stdout + nl.stderr
    assert site.dump("nl")[0]["ups.status"] == "FSD OL"
    assert site.commands("nl") == []
    wait(lambda: site.commands("nl"), 9, "load.off", site)
    assert 4 - 0.5 <= time.monotonic() - t0 <= 4 + 2 + 2, time.monotonic() - t0
    assert site.commands("nl") == ["INSTCMD outlet.1.load.off"]
    wait(lambda: len(site.commands("nl")) == 2, 6, "load.on", site)
    assert site.commands("nl")[1] == "INSTCMD outlet.1.load.on"


def test_clients_that_go_away_do_not_hurt(site: Site) -> None:
    """Debian's 2.8.0 clone aborts when a socket client it broadcasts to has gone; nutlite's goes on."""
    for _ in range(3):
        m = Monitor(site.sock("nl"))
        m.dump()
        m.close()
        site.put("battery.charge", "99")
        time.sleep(0.2)
        site.put("battery.charge", "100")
    wait(lambda: site.dump("nl")[0]["battery.charge"] == "100", 3, "nutlite's clone alive", site)
    assert site.procs["nl"].poll() is None


def test_without_load_status_the_outlet_is_tracked_from_the_commands() -> None:
    """(Debian's 2.8.0 clone dies of a segmentation fault on shutdown.return without load.status.)"""
    st = DriverState()
    core = CloneCore(st, CloneSettings.parse({"load.off": "outlet.2.load.off", "load.on": "outlet.2.load.on",
                                              "offdelay": "2", "ondelay": "2"}.get))
    core.publish_own()
    core.on_connect()
    feed(core, PARENT_DUMP)
    assert core.instcmd("shutdown.stayoff", None)[0] == Status.HANDLED
    assert [line for _ in range(3) for line in core.tick(2)] == ["INSTCMD outlet.2.load.off"]
    assert core.instcmd("shutdown.return", None) == (Status.HANDLED, [])  # already off: nothing to do
    assert [line for _ in range(3) for line in core.tick(2)] == []


def test_a_parent_that_stops_answering_is_treated_as_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent whose socket stays open but which no longer answers (hung) is noticed by PING."""
    import asyncio

    from nutlite.drivers.framework.core import prepare
    from nutlite.drivers.framework.drvconfig import DriverConfig
    from nutlite.drivers.programs import clone as clone_mod

    monkeypatch.setattr(clone_mod, "PING_AFTER", 0.2)
    monkeypatch.setattr(clone_mod, "PONG_TIMEOUT", 0.4)
    seen: list[bytes] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            seen.append(data)
            if b"DUMPALL" in data:
                writer.write(PARENT_DUMP)  # then never a word more: no PONG

    async def run() -> tuple[bool, bool]:
        server = await asyncio.start_unix_server(mute, path=str(tmp_path / "snmp-ups-rack"))
        cfg = DriverConfig("g2", "clone", {"port": "snmp-ups-rack"}, statepath=tmp_path)
        drv = clone_mod.Clone(cfg)
        await prepare(drv)
        fresh = not drv.state.stale and drv.state.value("ups.status") == "OL"
        for _ in range(8):
            await asyncio.sleep(0.15)
            await drv.updateinfo()
            if drv.state.stale:
                break
        stale = drv.state.stale
        await drv.cleanup()
        server.close()
        return fresh, stale

    fresh, stale = asyncio.run(run())
    assert fresh and stale
    assert any(b"PING" in d for d in seen)


def test_side_by_side_parent_data_stale_and_ok(site: Site) -> None:
    for fd in site.parents.values():
        fd.stale = True
        fd.broadcast("DATASTALE")
    for ups in ("deb", "nl", "debo", "nlo"):
        wait(lambda u=ups: site.dump(u)[2], 5, f"{ups} stale", site)
    time.sleep(2.5)  # both ask the parent again at their next poll: still stale
    assert all(site.dump(u)[2] for u in ("deb", "nl", "debo", "nlo"))
    for fd in site.parents.values():
        fd.stale = False
        fd.vars["ups.status"].value = "OB"
        fd.broadcast("DATAOK", 'SETINFO ups.status "OB"')
    for ups in ("deb", "nl", "debo", "nlo"):
        wait(lambda u=ups: not site.dump(u)[2] and site.dump(u)[0]["ups.status"] == "OB", 6, f"{ups} fresh", site)
    wait(lambda: same(site, "deb", "nl") and same(site, "debo", "nlo"), 5, "same after DATAOK", site)


class RealParentSite(Site):
    """Both clones of each kind on one real parent driver: dummy-ups (Debian's or nutlite's) playing
    tests/data/conformance.dev."""

    def __init__(self, base: Path, parent_flavour: str) -> None:
        super().__init__(base, OUTLET_OPTS)
        self.parents = {}
        self.parent_flavour = parent_flavour
        (self.etc / "conformance.dev").write_bytes((REPO_ROOT / "tests" / "data" / "conformance.dev").read_bytes())
        lines = ["[real]", "  driver = dummy-ups", "  port = conformance.dev", ""]
        for flavour in ("deb", "nl"):
            lines += [f"[{flavour}]", "  driver = clone", "  port = dummy-ups-real"]
            lines += [f'  {k} = "{v}"' for k, v in {**OUTLET_OPTS, "mincharge": "50"}.items()] + [""]
            lines += [f"[{flavour}o]", "  driver = clone-outlet", "  port = dummy-ups-real", "  prefix = outlet.1", ""]
        (self.etc / "ups.conf").write_text("\n".join(lines))

    def start(self) -> None:
        if self.parent_flavour == "debian":
            self.spawn("real", [str(REAL_NUT_DIR / "dummy-ups"), "-a", "real", "-F", *STAY_ROOT])
        else:
            self.spawn("real", [sys.executable, "-m", "nutlite", "driver", "-a", "real", "-F", *STAY_ROOT])
        parent = self.state / "dummy-ups-real"
        wait(lambda: parent.exists() and self.parent_monitor().dump()[0].get("ups.status"), 15, "parent up", self)
        super().start()

    def parent_monitor(self) -> Monitor:
        if "real" not in self.monitors:
            self.monitors["real"] = Monitor(self.state / "dummy-ups-real")
        return self.monitors["real"]


@pytest.mark.parametrize("parent_flavour", ["debian", "nutlite"])
def test_side_by_side_on_a_real_parent_driver(tmp_path: Path, parent_flavour: str) -> None:
    require_real_nut()
    s = RealParentSite(tmp_path, parent_flavour)
    try:
        s.start()
        for deb, nl in (("deb", "nl"), ("debo", "nlo")):
            a, acmds, astale = s.dump(deb)
            b, bcmds, bstale = s.dump(nl)
            assert comparable(b) == comparable(a), deb
            assert (bcmds, bstale) == (acmds, astale)
        assert s.dump("nl")[0]["ups.id"] == "hash # tag"  # quoting survives the relay
        mon = s.parent_monitor()
        mon.sock.sendall(b'SET ups.status "OB DISCHRG"\n')
        for ups in ("deb", "nl", "debo", "nlo"):
            wait(lambda u=ups: s.dump(u)[0]["ups.status"] == "OB DISCHRG", 6, f"{ups}: OB", s)
        mon.sock.sendall(b'SET battery.charge "45"\n')
        for ups, status in (("deb", "FSD OB DISCHRG"), ("nl", "FSD OB DISCHRG"), ("debo", "OB DISCHRG")):
            wait(lambda u=ups, st=status: s.dump(u)[0]["ups.status"] == st, 6, f"{ups}: {status}", s)
        wait(lambda: same(s, "deb", "nl") and same(s, "debo", "nlo"), 6, "same after the charge fell", s)
        mon.sock.sendall(b'SET outlet.1.status "off"\n')
        wait(lambda: s.dump("nlo")[0]["ups.status"] == "OB DISCHRG OFF", 6, "nlo: OFF", s)
        wait(lambda: same(s, "deb", "nl", ("ups.status", "outlet.1.status")) and same(s, "debo", "nlo"), 6,
             "same after the outlet went off", s)
    finally:
        s.stop()


def test_a_reconnect_forgets_what_the_parent_no_longer_has() -> None:
    core, st = make_clone()
    put(core, "ambient.temperature", "25")
    core.on_lost()
    core.on_connect()
    feed(core, PARENT_DUMP)
    assert st.value("ambient.temperature") is None and st.value("device.model") == "Rack 3000"
    assert not st.stale


def test_killpower_without_the_running_clone_is_refused_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    from nutlite.drivers.framework.drvconfig import DriverConfig
    from nutlite.drivers.programs.clone import Clone

    drv = Clone(DriverConfig("g2", "clone", {"port": "snmp-ups-rack", **OUTLET_OPTS}))
    drv.initups()
    assert drv.shutdown() is False
    assert "start the clone driver first" in caplog.text
