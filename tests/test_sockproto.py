"""The driver socket protocol, sans-IO (nutlite.drivers.framework.sockproto.SockProtocol /
DriverState), and its DUMPALL answer compared with Debian's dummy-ups on the same definition files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutlite.config import load_ups_conf
from nutlite.drivers.framework.core import DriverState, prepare
from nutlite.drivers.framework.drvconfig import load_config
from nutlite.drivers.framework.sockproto import Request, SockClient, SockProtocol
from nutlite.drivers.programs.dummy_ups import DummyUps
from nutlite.state import DeviceState

REAL_DUMMY = Path("/lib/nut/dummy-ups")
TESTS = Path(__file__).resolve().parent


def require_debian() -> None:
    if REAL_DUMMY.exists():
        return
    msg = "Debian's NUT 2.8.0 is not installed (/lib/nut/dummy-ups missing)"
    if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


# ------------------------------------------------------------------------------------------------
# helpers shared with test_dummy_ups.py / test_driver.py


class Peer:
    """A sans-IO socket client that records what the driver sends it."""

    def __init__(self, proto: SockProtocol, name: str = "peer") -> None:
        self.data = b""
        self.closed = False
        self.client = SockClient(self._write, self._close, name)
        self.proto = proto
        proto.add_client(self.client)

    def _write(self, data: bytes) -> None:
        self.data += data

    def _close(self) -> None:
        self.closed = True

    def send(self, text: str) -> list[Request]:
        return self.proto.feed(self.client, text.encode("latin-1"))

    def lines(self) -> list[str]:
        out = self.data.decode("latin-1").splitlines()
        self.data = b""
        return out


def make_proto() -> tuple[DriverState, SockProtocol]:
    state = DriverState()
    return state, SockProtocol(state, pid=4242)


def write_setup(base: Path, files: dict[str, bytes | str], section: str) -> tuple[Path, Path]:
    """conf/ and state/ under ``base`` with ``files`` and a ups.conf holding [u] = ``section``."""
    conf, state = base / "conf", base / "state"
    conf.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (conf / name).write_bytes(content if isinstance(content, bytes) else content.encode("latin-1"))
    (conf / "ups.conf").write_text("[u]\n" + section.strip() + "\n")
    return conf, state


def user_args() -> list[str]:
    return ["-u", "root"] if os.geteuid() == 0 else []


def read_dump(sock: socket.socket, timeout: float = 10.0) -> list[str]:
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"DUMPDONE\n"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete DUMPALL answer: {buf[-300:]!r}")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"driver closed the socket: {buf[-300:]!r}")
        buf += data
    return buf.decode("latin-1").splitlines()


def debian_dump(base: Path, files: dict[str, bytes | str], section: str) -> list[str]:
    """Start Debian's dummy-ups on the setup, return its DUMPALL answer.

    The driver is killed while our connection is still open: 2.8.0 drivers spin on a closed client.
    """
    require_debian()
    conf, state = write_setup(base, files, section)
    env = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state))
    log = open(base / "debian.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(REAL_DUMMY), "-a", "u", "-F", *user_args()], env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path = state / "dummy-ups-u"
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"Debian's dummy-ups exited: {(base / 'debian.log').read_text()}")
            try:
                sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sock.sendall(b"DUMPALL\n")
        return read_dump(sock)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        sock.close()
        log.close()


def nutlite_driver(base: Path, files: dict[str, bytes | str], section: str, **kwargs: object) -> DummyUps:
    """nutlite's dummy-ups for the setup, in-process and started (no socket)."""
    conf, state = write_setup(base, files, section)
    cfg = load_config("u", ups_conf=load_ups_conf(conf / "ups.conf"))
    cfg.confpath, cfg.statepath = conf, state
    drv = DummyUps(cfg, **kwargs)  # type: ignore[arg-type]
    asyncio.run(prepare(drv))
    return drv


def nutlite_dump(base: Path, files: dict[str, bytes | str], section: str) -> list[str]:
    drv = nutlite_driver(base, files, section)
    drv.step(drv.clock())  # the first pass of the poll loop, as Debian's right after its socket is up
    peer = Peer(SockProtocol(drv.state))
    peer.send("DUMPALL\n")
    return peer.lines()


def without_versions(lines: list[str]) -> list[str]:
    return [ln for ln in lines if not ln.startswith("SETINFO driver.version")]


# ------------------------------------------------------------------------------------------------
# DUMPALL


def test_dumpall_order() -> None:
    state, proto = make_proto()
    state.setinfo("ups.status", "OL")
    state.setinfo("battery.charge", "100")
    state.setflags("battery.charge", ["NUMBER", "RW"])
    state.addrange("battery.charge", 0, 100)
    state.setinfo("input.sensitivity", "high")
    state.addenum("input.sensitivity", "high")
    state.addenum("input.sensitivity", "low")
    state.setaux("input.sensitivity", 8)
    state.setflags("input.sensitivity", ["STRING", "RW"])
    state.setinfo("Ambient.Temperature", "25")
    state.setinfo("ups.load", "7")
    state.make_immutable("ups.load")
    state.addcmd("test.battery.start")
    state.addcmd("beeper.toggle")
    peer = Peer(proto)
    peer.send("DUMPALL\n")
    assert peer.lines() == [
        'SETINFO Ambient.Temperature "25"',
        'SETINFO battery.charge "100"',
        "ADDRANGE battery.charge 0 100",
        "SETFLAGS battery.charge RW NUMBER",
        'SETINFO input.sensitivity "high"',
        'ADDENUM input.sensitivity "high"',
        'ADDENUM input.sensitivity "low"',
        "SETAUX input.sensitivity 8",
        "SETFLAGS input.sensitivity RW STRING",
        'SETINFO ups.load "7"',
        "SETFLAGS ups.load",  # immutable (override.*): NUT sends an empty SETFLAGS
        'SETINFO ups.status "OL"',
        "ADDCMD test.battery.start",
        "ADDCMD beeper.toggle",
        "DATAOK",
        "DUMPDONE",
    ]


def test_dumpall_stale_and_encoding() -> None:
    state, proto = make_proto()
    state.setinfo("ups.id", 'a "quoted" \\ # value')
    state.set_stale(True)
    peer = Peer(proto)
    peer.send("dumpall\n")
    assert peer.lines() == ["DATASTALE", 'SETINFO ups.id "a \\"quoted\\" \\\\ \\# value"', "DUMPDONE"]


def test_immutable_refuses_changes() -> None:
    state, proto = make_proto()
    state.setinfo("ups.load", "7", force=True)
    state.make_immutable("ups.load")
    peer = Peer(proto)
    assert not state.setinfo("ups.load", "9")
    assert not state.setflags("ups.load", ["RW"])
    assert not state.setaux("ups.load", 3)
    assert not state.delinfo("ups.load")
    assert state.value("ups.load") == "7" and peer.lines() == []


def test_ignorelb_derives_lb() -> None:
    state, proto = make_proto()
    state.ignorelb = True
    state.setinfo("ups.status", "OB LB")
    assert state.value("ups.status") == "OB"  # no thresholds known yet: device LB ignored
    state.setinfo("battery.charge", "5")
    state.setinfo("battery.charge.low", "10")
    state.refresh_status()
    assert state.value("ups.status") == "OB LB"
    state.setinfo("battery.charge", "50")
    state.refresh_status()
    assert state.value("ups.status") == "OB"


def test_dump_replays_into_upsd_state() -> None:
    """What the driver broadcasts, applied by the upsd side, gives the same DUMPALL."""
    state, proto = make_proto()
    peer = Peer(proto)
    state.setinfo("ups.status", "OL")
    state.setinfo("x.y", "1")
    state.setflags("x.y", ["RW", "STRING"])
    state.setaux("x.y", 12)
    state.addenum("x.y", "1")
    state.addrange("x.y", 1, 5)
    state.addcmd("load.off")
    state.setinfo("x.y", "2")
    state.delenum("x.y", "1")
    state.setinfo("gone", "1")
    state.delinfo("gone")
    state.set_stale(True)
    state.set_stale(False)
    mirror = DeviceState()
    from nutlite.parseconf import split_line

    for line in peer.lines():
        mirror.apply(split_line(line))
    assert mirror.dump_lines() == [ln for ln in state.dump_lines()]


# ------------------------------------------------------------------------------------------------
# the other messages


def test_ping_pong_any_case_and_partial_lines() -> None:
    _, proto = make_proto()
    peer = Peer(proto)
    peer.send("PI")
    assert peer.lines() == []
    peer.send("NG\nping\r\n  Ping  \n")
    assert peer.lines() == ["PONG", "PONG", "PONG"]


def test_getpid_logout() -> None:
    _, proto = make_proto()
    peer = Peer(proto)
    peer.send("GETPID\nLOGOUT\nPING\n")
    assert peer.lines() == ["PID 4242", "OK Goodbye"]
    assert peer.closed and peer.client.closing


def test_broadcast_to_several_clients() -> None:
    state, proto = make_proto()
    a, b, c = Peer(proto, "a"), Peer(proto, "b"), Peer(proto, "c")
    c.send("NOBROADCAST\n")
    state.setinfo("ups.status", "OB")
    state.addcmd("load.on")
    assert a.lines() == b.lines() == ['SETINFO ups.status "OB"', "ADDCMD load.on"]
    assert c.lines() == []
    c.send("BROADCAST\n")
    b.send("BROADCAST 0\n")
    state.setinfo("ups.status", "OL")
    assert a.lines() == c.lines() == ['SETINFO ups.status "OL"'] and b.lines() == []
    c.send("BROADCAST 1\n")
    b.send("BROADCAST x\n")  # malformed: ignored
    state.set_stale(True)
    assert c.lines() == ["DATASTALE"] and b.lines() == []


class Writes:
    """A socket client that keeps each write apart (how many writes a change of state takes)."""

    def __init__(self, proto: SockProtocol) -> None:
        self.writes: list[bytes] = []
        self.client = SockClient(self.writes.append, None, "writes")
        proto.add_client(self.client)


def test_batch_sends_its_changes_in_one_write() -> None:
    state, proto = make_proto()
    a, b = Writes(proto), Writes(proto)
    quiet = Peer(proto, "quiet")
    quiet.send("NOBROADCAST\n")
    with proto.batch():
        state.setinfo("input.voltage", "0.0")
        with proto.batch():  # nested: flushed when the outer batch ends
            state.setinfo("ups.status", "OB")
        assert a.writes == []
        state.set_stale(False)
    assert a.writes == b.writes == [b'SETINFO input.voltage "0.0"\nSETINFO ups.status "OB"\n']
    assert quiet.lines() == []
    with proto.batch():
        pass  # nothing changed: nothing sent
    state.setinfo("ups.status", "OL")  # outside a batch: sent at once
    assert a.writes[1:] == [b'SETINFO ups.status "OL"\n']


def test_a_poll_reaches_each_client_in_one_write(tmp_path: Path) -> None:
    """Whatever the driver, what one poll changes goes to upsd in one write (upsd applies one read
    whole, so its clients never see half of a poll)."""
    from nutlite.drivers.framework.runner import DriverRunner

    now = [0.0]
    drv = nutlite_driver(tmp_path, {"x.dev": "ups.status: OL\ninput.voltage: 230\nbattery.charge: 100\n"},
                         "driver = dummy-ups\nport = x.dev\n", clock=lambda: now[0])
    runner = DriverRunner(drv)
    upsd = Writes(runner.proto)
    dev = drv.config.confpath / "x.dev"

    async def polls() -> None:
        await runner.update()  # the first pass of the poll loop
        upsd.writes.clear()
        dev.write_text("ups.status: OB\ninput.voltage: 0\nbattery.charge: 90\n")
        st = dev.stat()
        os.utime(dev, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        now[0] += 5  # past dummy-ups' pause at the end of the file
        await runner.update()

    asyncio.run(polls())
    assert len(upsd.writes) == 1, upsd.writes
    lines = upsd.writes[0].decode().splitlines()
    assert {'SETINFO ups.status "OB"', 'SETINFO input.voltage "0"', 'SETINFO battery.charge "90"'} <= set(lines)


def test_driver_batch_outside_a_poll(tmp_path: Path) -> None:
    """What a driver publishes between polls (apcsmart on an alert from the UPS) can go out as one write
    too; a driver not served by a runner (``-d``, in-process use) just sets its values."""
    from nutlite.drivers.framework.runner import DriverRunner

    drv = nutlite_driver(tmp_path, {"x.dev": "ups.status: OL\n"}, "driver = dummy-ups\nport = x.dev\n")
    with drv.batch():
        drv.setinfo("ups.status", "OB")
    assert drv.getinfo("ups.status") == "OB"
    runner = DriverRunner(drv)
    upsd = Writes(runner.proto)
    with drv.batch():
        drv.setinfo("ups.status", "OB LB")
        drv.setinfo("battery.charge", "5")
        assert upsd.writes == []
    assert upsd.writes == [b'SETINFO ups.status "OB LB"\nSETINFO battery.charge "5"\n']


def test_broken_client_does_not_stop_the_others() -> None:
    state, proto = make_proto()

    def broken(_data: bytes) -> None:
        raise BrokenPipeError("gone")

    proto.add_client(SockClient(broken))
    ok = Peer(proto)
    state.setinfo("ups.status", "OB")
    state.setinfo("ups.status", "OL")
    assert ok.lines() == ['SETINFO ups.status "OB"', 'SETINFO ups.status "OL"']
    assert len(proto.clients) == 1


def test_dumpvalue_and_dumpstatus() -> None:
    state, proto = make_proto()
    state.setinfo("ups.status", "OL")
    state.setinfo("battery.charge", "90")
    state.setflags("battery.charge", ["RW"])
    peer = Peer(proto)
    peer.send("DUMPVALUE battery.charge\nDUMPSTATUS\nDUMPVALUE nope\n")
    assert peer.lines() == [
        'SETINFO battery.charge "90"', "SETFLAGS battery.charge RW", "DATAOK", "DUMPDONE",
        'SETINFO ups.status "OL"', "DATAOK", "DUMPDONE",
        "DATAOK", "DUMPDONE",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("INSTCMD load.off", ("INSTCMD", "load.off", None, None)),
        ("INSTCMD load.off 30", ("INSTCMD", "load.off", "30", None)),
        ("INSTCMD load.off TRACKING 1234-ab", ("INSTCMD", "load.off", None, "1234-ab")),
        ("instcmd load.off 30 tracking 77", ("INSTCMD", "load.off", "30", "77")),
        ('SET ups.id "my ups"', ("SET", "ups.id", "my ups", None)),
        ('SET ups.id "" TRACKING t1', ("SET", "ups.id", "", "t1")),
        ("INSTCMD", None),
        ("INSTCMD a b c", None),
        ("INSTCMD a b c d e", None),
        ("SET", None),
        ("SET ups.id", None),
        ("SET ups.id x TRACKING", None),
        ("SET ups.id x BLAH y", None),
        ('SET ups.id "a # b"', None),  # rejected by the tokenizer
        ("BOGUS command", None),
        ("GETPID extra", None),
        ('"unterminated', None),
    ],
)
def test_requests(line: str, expected: tuple[str, str, str | None, str | None] | None) -> None:
    _, proto = make_proto()
    peer = Peer(proto)
    reqs = peer.send(line + "\nPING\n")
    # an unterminated quote runs over the newline and swallows the PING, as in NUT
    assert peer.lines() == ([] if line.startswith('"') else ["PONG"])
    if expected is None:
        assert reqs == []
    else:
        assert len(reqs) == 1
        r = reqs[0]
        assert (r.kind, r.name, r.value, r.tracking) == expected and r.client is peer.client


def test_tracking_answers() -> None:
    _, proto = make_proto()
    peer, other = Peer(proto), Peer(proto)
    (r1,) = peer.send("INSTCMD load.off TRACKING abc\n")
    (r2,) = peer.send("INSTCMD load.off\n")
    proto.finish(r1, 0)
    proto.finish(r2, 3)
    assert peer.lines() == ["TRACKING abc 0"] and other.lines() == []
    (r3,) = peer.send('SET x "1" TRACKING z\n')
    proto.remove_client(peer.client)
    proto.finish(r3, 1)
    assert peer.lines() == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_garbage_never_crashes(data: bytes) -> None:
    state, proto = make_proto()
    state.setinfo("ups.status", "OL")
    peer = Peer(proto)
    for i in range(0, len(data), 97):
        proto.feed(peer.client, data[i : i + 97])
    proto.feed(peer.client, b"\nPING\n")
    for line in peer.lines():
        assert line.split(" ", 1)[0] in {"PONG", "PID", "OK", "SETINFO", "SETFLAGS", "SETAUX", "ADDENUM",
                                          "ADDRANGE", "ADDCMD", "DATAOK", "DATASTALE", "DUMPDONE"}


def test_huge_line_is_bounded() -> None:
    _, proto = make_proto()
    peer = Peer(proto)
    for _ in range(200):
        proto.feed(peer.client, b"x" * 10000)
    proto.feed(peer.client, b"\nPING\n")
    assert peer.lines() == ["PONG"]


# ------------------------------------------------------------------------------------------------
# the socket server (asyncio shell) with several clients


def test_socket_server_broadcasts_and_tracking(tmp_path: Path) -> None:
    from nutlite.drivers.framework.runner import DriverRunner

    drv = nutlite_driver(tmp_path, {"x.dev": "ups.status: OL\n"}, "driver = dummy-ups\nport = x.dev\n")

    async def scenario() -> list[list[str]]:
        runner = DriverRunner(drv)
        runner._stop = asyncio.Event()
        runner._wake = asyncio.Event()
        await runner.serve()
        path = str(drv.config.sockpath)
        assert oct(os.stat(path).st_mode & 0o777) == "0o660"
        conns = [await asyncio.open_unix_connection(path) for _ in range(3)]
        r0, w0 = conns[0]
        w0.write(b'SET ups.status "OB" TRACKING t-1\nINSTCMD load.off TRACKING t-2\nINSTCMD nope TRACKING t-3\n')
        await w0.drain()
        got: list[list[str]] = []
        for i, (r, _w) in enumerate(conns):
            want = 4 if i == 0 else 1
            lines = []
            while len(lines) < want:
                lines.append((await asyncio.wait_for(r.readline(), 5)).decode().rstrip("\n"))
            got.append(lines)
        for _r, w in conns:
            w.close()
        await runner.close()
        assert not os.path.exists(path)
        return got

    got = asyncio.run(scenario())
    assert got[0] == ['SETINFO ups.status "OB"', "TRACKING t-1 0", "TRACKING t-2 1", "TRACKING t-3 1"]
    assert got[1] == got[2] == ['SETINFO ups.status "OB"']


# ------------------------------------------------------------------------------------------------
# DUMPALL compared with Debian's dummy-ups

DIFF_CASES = {
    "conformance": ({"x.dev": (TESTS / "data" / "conformance.dev").read_bytes()}, ""),
    "empty": ({"x.dev": b""}, ""),
    "tricky-lines": ({"x.dev": (
        b"ups.mfr:   Multi   word   value   \n"
        b'ups.model: "quoted  value" after\n'
        b"ups.serial:\n"  # no value: 2.8.0 re-uses the previous line's value
        b"ups.firmware: a=b=c\n"
        b"ups.id: val # comment here\n"
        b'battery.type: x\\"y\\\\z\n'
        b"device.part: caf\xc3\xa9 \x7f ok\n"
        b"foo.baz:value\n"
        b"nocolon value\n"
        b"ups.load : 5\n"
        b"UPS.Temperature: 22\n"
        b'battery.charge: 100 "" x\n'
        b'input.voltage: "with # hash" more\n'
        b"driver.name: other\n"
        b"driver.version.data: skipped\n"
        b"timer 5\n"
        b"ups.statusx: OB  LB\n"
        b"t.z: val\\\n  cont\n"
        b"cr.lf: value\r\n"
        b"long.v: " + b" ".join([b"q" * 20] * 8) + b"\n"
        b"long.w: " + b"y" * 300 + b"\n"
        b'output.voltage: "spans\nlines" 230\n'
    )}, ""),
    "settings": ({"x.dev": b"ups.mfr: A\nbattery.charge: 50\nups.load: 10\n"}, (
        'desc = "hello"\nsdorder = 1\ndefault.battery.charge = 99\ndefault.battery.runtime = 1234\n'
        'override.ups.newvar = "5 x"\noverride.battery.charge = 7\ndefault.ups.mfr = DM\n'
        "override.device.model = OM\ndefault.device.serial = DS\ndefault.device.type = pdu\n"
        "override.driver.version = Y\nMode = dummy-loop\npollinterval = 3\nsynchronous = yes\nnolock\n"
    )),
    "ignorelb": ({"x.dev": b"ups.status: OL LB\nbattery.charge: 50\nbattery.charge.low: 60\n"}, "ignorelb\n"),
    "seq": ({"x.seq": b"ups.status: OL\nTIMER 30\nups.status: OB\n"}, ""),
}


@pytest.mark.interop
@pytest.mark.parametrize("case", sorted(DIFF_CASES))
def test_dumpall_matches_debian(tmp_path: Path, case: str) -> None:
    files, extra = DIFF_CASES[case]
    port = next(iter(files))
    section = f"driver = dummy-ups\nport = {port}\n{extra}"
    theirs = debian_dump(tmp_path / "debian", files, section)
    ours = nutlite_dump(tmp_path / "nutlite", files, section)
    assert without_versions(ours) == without_versions(theirs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
