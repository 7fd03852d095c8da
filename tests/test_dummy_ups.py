"""dummy-ups: definition files, TIMER sequences, re-reading, SET, every dump of the device library, the
comparison with Debian's dummy-ups, and repeater mode against Debian's upsd."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nutenv import DATA_DIR, FakeDriver, UpsSpec, dummy_ups
from test_sockproto import (
    REAL_DUMMY,
    debian_dump,
    nutlite_driver,
    nutlite_dump,
    require_debian,
    user_args,
    without_versions,
    write_setup,
)

from nutlite.drivers.framework.core import DriverError, Status, prepare
from nutlite.drivers.framework.drvconfig import load_config
from nutlite.drivers.programs.dummy_ups import (
    DummyUps,
    guess_mode,
    join_status,
    join_value,
    parse_definition,
    split_definition,
)
from nutlite.parseconf import Tokenizer, split_line

DDL = (Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ddl").resolve()
DDL_FILES = sorted(p for p in DDL.rglob("*") if p.suffix in (".dev", ".seq", ".nds")) if DDL.is_dir() else []
REPO = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def values(drv: DummyUps) -> dict[str, str]:
    return {v.name: v.value for v in drv.state.sorted_vars()}


# ------------------------------------------------------------------------------------------------
# parsing


def test_split_definition_like_nut() -> None:
    text = (
        'a.a: x "y # z" w\n'  # '#' inside quotes: what came before is dropped
        "b.b: one\\\n two\n"  # backslash-newline joins
        'c.c: "multi\nline" end\n'  # quotes span lines; the newline is dropped
        "d.d: caf\xc3\xa9 \x7f\x01 e=f # comment\n"
        "   # only a comment\n"
        "\n"
    )
    assert list(split_definition(text)) == [
        (1, ['z"', "w"]),
        (2, ["b.b:", "one", "two"]),
        (4, ["c.c:", "multiline", "end"]),
        (6, ["d.d:", "caf", "\x7f", "e", "=", "f"]),
    ]


def test_parse_definition_rules() -> None:
    text = (
        "ups.serial:\n"  # nothing before: empty value (the variable is not created)
        "ups.load: 0\n"
        "ups.mfr:\n"  # re-uses the previous value, as 2.8.0
        "driver.name: usbhid-ups\n"  # skipped, and does not count as previous value
        "ups.model:\n"
        "a.b:c:d e\n"
        "TIMER 5\n"
        "timer 5\n"  # TIMER is case-sensitive
        "TIMERX 7\n"  # ... but a prefix
        "TIMER\n"  # no argument: the previous line's second word ('7')
        "ups.statusx: OL \"\" CHRG\n"
        "ups.status:\n"
    )
    got = [(e.name, e.value, e.timer, e.status) for e in parse_definition(text)]
    assert got == [
        ("ups.serial", None, None, False),
        ("ups.load", "0", None, False),
        ("ups.mfr", None, None, False),
        ("ups.model", None, None, False),
        ("a.b", "e", None, False),
        ("", None, 5, False),
        ("timer", "5", None, False),
        ("", None, 7, False),
        ("", None, 7, False),
        ("ups.status", "OL  CHRG", None, True),
        ("ups.status", "", None, True),
    ]


def test_value_lengths() -> None:
    assert join_value(["x" * 600]) == "x" * 127
    assert join_value(["y" * 300, "z"]) == "y" * 127
    assert join_value(["q" * 20] * 8) == ("q" * 20 + " ") * 6
    assert join_value(["x" * 125, "ab", "cd"]) == "x" * 125 + " "
    assert join_status(["Y" * 250, "ZZZZZZ"]) == "Y" * 250 + " ZZZ"
    assert join_status(["", ""]) == "" and join_status(["OL", "", "OB"]) == "OL  OB"


@pytest.mark.parametrize(
    ("port", "mode", "expected"),
    [
        ("x.dev", None, "dummy-once"), ("x.seq", None, "dummy-loop"), ("x.nds", None, "dummy"),
        ("ups@host", None, "repeater"), ("a@b.dev", None, "repeater"), ("x.dev", "dummy", "dummy-loop"),
        ("x.seq", "dummy-once", "dummy-once"), ("x.dev", "bogus", "dummy-once"), ("x.seq", "Dummy-Once", "dummy-loop"),
    ],
)
def test_mode(port: str, mode: str | None, expected: str) -> None:
    assert guess_mode(port, mode) == expected


# ------------------------------------------------------------------------------------------------
# the driver in-process


def test_empty_file_defaults(tmp_path: Path) -> None:
    drv = nutlite_driver(tmp_path, {"e.dev": ""}, "driver = dummy-ups\nport = e.dev\n")
    v = values(drv)
    assert v["ups.mfr"] == v["device.mfr"] == "Dummy Manufacturer"
    assert v["ups.model"] == v["device.model"] == "Dummy UPS"
    assert v["ups.status"] == "OL" and v["device.type"] == "ups"
    assert v["driver.name"] == "dummy-ups" and v["driver.parameter.mode"] == "dummy-once"
    assert v["driver.parameter.port"] == "e.dev" and v["driver.parameter.pollinterval"] == "2"
    assert v["driver.parameter.synchronous"] == "auto"
    assert drv.state.cmd_list() == ["load.off"]
    assert drv.state.get("ups.mfr").flags == {"RW", "STRING"} and drv.state.get("ups.mfr").aux == 32
    assert drv.state.get("device.mfr").flags == set()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="cannot open the dummy-ups definition file .*nope.dev"):
        nutlite_driver(tmp_path, {}, "driver = dummy-ups\nport = nope.dev\n")


def test_seq_timing_follows_polls(tmp_path: Path) -> None:
    """TIMER pauses are checked at each poll, so they round up to the poll interval (as 2.8.0);
    the end of the file pauses 1 s before the next pass."""
    clock = Clock(0.0)
    drv = nutlite_driver(tmp_path, {"t.seq": "s.s: 0\nTIMER 3\ns.s: 1\nTIMER 1\ns.s: 2\nTIMER 5\ns.s: 3\n"
                                              "TIMER 2\ns.s: 4\n"},
                         "driver = dummy-ups\nport = t.seq\n", clock=clock)
    seen = []
    for t in range(0, 26, 2):  # pollinterval 2
        clock.t = t
        drv.step(t)
        seen.append(drv.state.value("s.s"))
    # Debian's dummy-ups 2.8.0 on the same file changes at +2 +6 +2 +2 +4 s (measured)
    assert seen == ["0", "0", "1", "2", "2", "2", "3", "4", "0", "0", "1", "2", "2"]


def test_seq_timing_pollinterval_1(tmp_path: Path) -> None:
    clock = Clock(0.0)
    drv = nutlite_driver(tmp_path, {"t.seq": "s.s: 0\nTIMER 3\ns.s: 1\nTIMER 1\ns.s: 2\n"},
                         "driver = dummy-ups\nport = t.seq\npollinterval = 1\n", clock=clock)
    seen = []
    for t in range(0, 10):
        drv.step(float(t))
        seen.append(drv.state.value("s.s"))
    assert seen == ["0", "0", "0", "1", "2", "0", "0", "0", "1", "2"]


def test_once_mode_rereads_on_mtime_change(tmp_path: Path) -> None:
    clock = Clock(0.0)
    drv = nutlite_driver(tmp_path, {"o.dev": "ups.status: OL\nbattery.charge: 100\ndevice.mfr: DM\n"},
                         "driver = dummy-ups\nport = o.dev\n", clock=clock)
    path = tmp_path / "conf" / "o.dev"
    assert drv.state.value("device.mfr") == "Dummy Manufacturer"  # mirrored from ups.mfr at start
    assert drv.setvar_local("battery.charge", "42") == Status.HANDLED
    for t in range(2, 12, 2):
        drv.step(float(t))
    assert drv.state.value("battery.charge") == "42"  # SET persists while the file is unchanged
    path.write_text("ups.status: OB\nbattery.charge: 90\ndevice.mfr: DM\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    drv.step(12.0)
    assert drv.state.value("battery.charge") == "90" and drv.state.value("ups.status") == "OB"
    assert drv.state.value("device.mfr") == "DM"  # the mirror happens only at start
    drv.setvar_local("battery.charge", "41")
    drv.step(14.0)
    assert drv.state.value("battery.charge") == "41"
    path.unlink()
    drv.step(16.0)
    assert drv.state.stale
    path.write_text("ups.status: OL\n")
    drv.step(18.0)
    assert not drv.state.stale and drv.state.value("ups.status") == "OL"


def test_loop_mode_replays_and_rereads(tmp_path: Path) -> None:
    drv = nutlite_driver(tmp_path, {"l.seq": "a.a: 1\n"}, "driver = dummy-ups\nport = l.seq\n", clock=Clock(0.0))
    drv.setvar_local("a.a", "9")
    drv.step(2.0)
    assert drv.state.value("a.a") == "1"  # every pass sets the file's values again
    (tmp_path / "conf" / "l.seq").write_text("a.a: 2\n")
    drv.step(4.0)
    assert drv.state.value("a.a") == "2"


def test_set_and_instcmd(tmp_path: Path) -> None:
    drv = nutlite_driver(tmp_path, {"s.dev": "ups.load: 10\n"}, "driver = dummy-ups\nport = s.dev\n")

    async def run() -> list[int]:
        return [
            await drv.setvar("ups.load", "20"),
            await drv.setvar("new.var", "x y"),
            await drv.setvar("ups.load", ""),
            await drv.instcmd("load.off", None),
            await drv.instcmd("load.on", None),
            int(await drv.shutdown()),
        ]

    assert asyncio.run(run()) == [0, 0, 0, 1, 1, 1]  # no command is carried out, as 2.8.0
    st = drv.state
    assert st.get("new.var").flags == {"RW", "STRING"} and st.get("new.var").aux == 32
    assert st.get("ups.load") is None


def test_overrides_and_defaults(tmp_path: Path) -> None:
    drv = nutlite_driver(
        tmp_path, {"d.dev": "battery.charge: 50\nups.mfr: ACME\n"},
        "driver = dummy-ups\nport = d.dev\noverride.battery.charge = 7\ndefault.battery.runtime = 600\n"
        "default.battery.charge = 99\noverride.device.model = Mine\nnolock\n")
    v = values(drv)
    assert v["battery.charge"] == "7" and v["battery.runtime"] == "600" and v["device.model"] == "Mine"
    assert v["driver.flag.nolock"] == "enabled" and v["device.mfr"] == "ACME"
    drv.setvar_local("battery.charge", "1")
    assert drv.state.value("battery.charge") == "7"


# ------------------------------------------------------------------------------------------------
# every dump of the NUT device library


def expected_values(text: str) -> dict[str, str]:
    """What dummy-ups publishes for a dump, worked out with nutlite.parseconf's tokenizer (independent
    of the driver's own). A line that tokenizer rejects ends the check for that file."""
    out: dict[str, str] = {}
    last = ""
    complete = True
    tok = Tokenizer()
    lines = tok.feed(text)
    end = tok.finish()
    for ln in [*lines, *([end] if end else [])]:
        if ln.error:
            complete = False
            break
        words = ln.words
        if not words or words[0].startswith("TIMER"):
            continue
        name = words[0].split(":", 1)[0]
        if name.startswith("driver."):
            continue
        if name.startswith("ups.status"):
            out["ups.status"] = join_status(words[1:])
            continue
        value = join_value(words[1:]) if len(words) > 1 else last
        last = value
        if value:
            out[name.lower()] = value
        else:
            out.pop(name.lower(), None)
    for part, default in (("mfr", "Dummy Manufacturer"), ("model", "Dummy UPS"), ("serial", None)):
        mirrored = out.get(f"ups.{part}", default)
        if not complete:  # the rest of the file may set ups.*, and so device.*
            out.pop(f"device.{part}", None)
        elif mirrored is not None:
            out[f"device.{part}"] = mirrored
    return out


@pytest.mark.skipif(not DDL_FILES, reason="../shared/data/ddl is not there")
def test_ddl_library_is_there() -> None:
    assert len(DDL_FILES) > 500


@pytest.mark.parametrize("path", DDL_FILES, ids=[str(p.relative_to(DDL)) for p in DDL_FILES])
def test_ddl_dump(tmp_path: Path, path: Path) -> None:
    clock = Clock(0.0)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ups.conf").write_text(f'[u]\ndriver = dummy-ups\nport = "{path}"\n')
    from nutlite.config import load_ups_conf

    cfg = load_config("u", ups_conf=load_ups_conf(conf / "ups.conf"))
    cfg.confpath = conf
    drv = DummyUps(cfg, clock=clock)
    asyncio.run(prepare(drv))
    while drv.player.passes == 0:  # play TIMER sequences to the end
        clock.t = max(clock.t + 1, drv.player.next_update)
        drv.step(clock.t)
    text = path.read_bytes().decode("latin-1")
    expected = expected_values(text)
    got = {v.name.lower(): v.value for v in drv.state.sorted_vars()}
    assert expected, "no variables found in the dump"
    wrong = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"published differently (expected, got): {wrong}"
    assert got["driver.name"] == "dummy-ups" and not drv.state.stale


# a varied sample for the comparison with Debian's dummy-ups: non-ASCII bytes, a quote left open,
# backslashes, empty values, trailing spaces, .nds RW:/CMD: lines and TIMER, snmp/HID/Q1 dumps...
DIFF_SAMPLE = [
    "Tripp_Lite/Tripp_Lite__SU1500RTXLCD2U__usbhid-ups__2.6.3__01.dev",
    "Exide/Exide__NetUPS_SE_PRC2400a__upscode2__2.0.2__01.dev",
    "Powerware/Powerware__PW5110__bcmxcp_usb__2.6.3__02.dev",
    "APC/APC__Matrix-UPS_3000__apcsmart__1.4.0__01.dev",
    "Plexus/Plexus__UPS_1000V__megatec_usb__2.2.1__01.dev",
    "Salicru/Salicru__SPS_Home_850__usbhid_ups__2.7.4.1__01.dev",
    "Manufacturer_Name/Manufacturer_Name__Actual_Model__driver-name__2.7.1__01.nds",
    "APC/APC__AP7724__snmp-ups__2.7.4.1__01.dev",
    "APC/APC__Back-UPS_CS_500__usbhid-ups__2.8.0__01.dev",
    "Online/Online__Yunto_YQ450__blazer_usb__2.6.3__01.dev",
    "Eaton/Eaton__ePDU_MA_1P__snmp-ups__2.7.4__01.dev",
    "Atlantis_Land/Atlantis_Land__OnePower_551_A03-P551_v1.2__blazer_usb__2.6.4__01.dev",
]


@pytest.mark.interop
@pytest.mark.parametrize("name", DIFF_SAMPLE)
def test_ddl_dump_matches_debian(tmp_path: Path, name: str) -> None:
    path = DDL / name
    if not path.exists():
        pytest.skip(f"{path} is not there")
    # synchronous: 2.8.0 drops a client whose socket buffer fills up during a big dump
    section = f'driver = dummy-ups\nport = "{path}"\nsynchronous = yes\n'
    theirs = debian_dump(tmp_path / "debian", {}, section)
    ours = nutlite_dump(tmp_path / "nutlite", {}, section)
    assert without_versions(ours) == without_versions(theirs)


# ------------------------------------------------------------------------------------------------
# the process: .seq timing against Debian's


def watch_changes(path: Path, seconds: float, var: str, proc: subprocess.Popen[bytes]) -> list[tuple[float, str]]:
    """(time, value) of each broadcast SETINFO of ``var`` during ``seconds``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.connect(str(path))
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.02)
    out: list[tuple[float, str]] = []
    buf = b""
    end = time.monotonic() + seconds
    sock.settimeout(0.05)
    try:
        while time.monotonic() < end:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = re.match(rf'SETINFO {re.escape(var)} "(.*)"$', line.decode())
                if m:
                    out.append((time.monotonic(), m.group(1)))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # before closing: 2.8.0 spins on a closed client
        proc.wait(5)
        sock.close()
    return out


def run_seq(base: Path, flavour: str, seconds: float) -> list[tuple[float, str]]:
    files = {"t.seq": "s.s: A\nTIMER 1\ns.s: B\nTIMER 2\ns.s: C\n"}
    conf, state = write_setup(base, files, "driver = dummy-ups\nport = t.seq\npollinterval = 1\n")
    env = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    argv = [str(REAL_DUMMY)] if flavour == "debian" else [sys.executable, "-m", "nutlite", "driver"]
    proc = subprocess.Popen([*argv, "-a", "u", "-F", *user_args()], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return watch_changes(state / "dummy-ups-u", seconds, "s.s", proc)


def intervals(changes: list[tuple[float, str]]) -> list[tuple[str, float]]:
    return [(changes[i][1], round(changes[i][0] - changes[i - 1][0], 1)) for i in range(1, len(changes))]


def test_seq_process_timing(tmp_path: Path) -> None:
    got = intervals(run_seq(tmp_path, "nutlite", 7.5))
    # A (1 s) B (2 s) C (1 s end pause) A ...
    expected = {"B": 1.0, "C": 2.0, "A": 1.0}
    assert len(got) >= 4
    for value, dt in got:
        assert abs(dt - expected[value]) <= 0.3, got


@pytest.mark.interop
def test_seq_timing_matches_debian(tmp_path: Path) -> None:
    """Debian's dummy-ups keeps the same rhythm on the same file (the model both follow)."""
    require_debian()
    expected = {"B": 1.0, "C": 2.0, "A": 1.0}
    for flavour in ("debian", "nutlite"):
        got = intervals(run_seq(tmp_path / flavour, flavour, 7.5))
        assert len(got) >= 4, (flavour, got)
        assert all(abs(dt - expected[v]) <= 0.3 for v, dt in got), (flavour, got)


# ------------------------------------------------------------------------------------------------
# repeater mode against Debian's upsd + dummy-ups


def repeater(tmp_path: Path, port: int, ups: str = "dummy", extra: str = "") -> DummyUps:
    conf, state = write_setup(tmp_path, {}, f"driver = dummy-ups\nport = {ups}@127.0.0.1:{port}\n{extra}")
    from nutlite.config import load_ups_conf

    cfg = load_config("u", ups_conf=load_ups_conf(conf / "ups.conf"))
    cfg.confpath, cfg.statepath = conf, state
    return DummyUps(cfg)


@pytest.mark.interop
def test_repeater_against_debian(tmp_path: Path, nut_env_factory) -> None:  # noqa: ANN001
    env = nut_env_factory([dummy_ups(desc="source")], files={"conformance.dev": DATA_DIR / "conformance.dev"},
                          driver_flavour="debian", upsd_flavour="debian")
    with env.connect() as c:
        remote = {ln.split()[2]: split_line(ln)[3] for ln in c.request_list("LIST VAR dummy")[1:-1]}
        types = {name: c.request(f"GET TYPE dummy {name}").split()[3:] for name in remote}
        remote_cmds = [ln.split()[2] for ln in c.request_list("LIST CMD dummy")[1:-1]]
    drv = repeater(tmp_path / "rep", env.port, extra="username = admin\npassword = adminpw\n")

    async def scenario() -> None:
        await prepare(drv)
        st = drv.state
        assert st.value("driver.parameter.mode") == "repeater" and not st.stale
        assert st.value("driver.parameter.port") == f"dummy@127.0.0.1:{env.port}"
        for name, value in remote.items():
            if name.startswith("driver."):  # the repeater publishes its own driver.* variables
                continue
            assert st.value(name) == value, name
            flags = st.get(name).flags
            t = types[name]
            assert ("RW" in flags) == ("RW" in t), name
            strings = [w for w in t if w.startswith("STRING:")]
            if strings:
                assert "STRING" in flags and st.get(name).aux == int(strings[0][7:]), name
        assert st.cmd_list() == remote_cmds
        # SET goes to the remote UPS (through its upsd and driver) and comes back
        assert await drv.setvar("ups.id", "repeated") == Status.HANDLED
        with env.connect() as c2:
            assert c2.request("GET VAR dummy ups.id") == 'VAR dummy ups.id "repeated"'
        assert st.value("ups.id") == "repeated"
        # Debian's dummy-ups answers TRACKING 1 (unknown) even for its own load.off
        assert await drv.instcmd("load.off", None) == Status.UNKNOWN
        assert await drv.instcmd("no.such.cmd", None) == Status.UNKNOWN
        # remote upsd gone: stale; back: fresh again
        env.stop_upsd()
        await drv.updateinfo()
        assert st.stale
        env.start_upsd()
        env.wait_ready()
        await drv.updateinfo()
        assert not st.stale and st.value("ups.id") == "repeated"
        await drv.cleanup()

    asyncio.run(scenario())


@pytest.mark.interop
def test_repeater_enum_range_and_login(tmp_path: Path, nut_env_factory) -> None:  # noqa: ANN001
    fake = FakeDriver(tmp_path / "unused")
    fake.setvar("ups.status", "OL")
    fake.setvar("battery.charge", "50", flags=("RW",), ranges=[(10, 90)])
    fake.setvar("input.sensitivity", "high", flags=("RW", "STRING"), aux=8, enums=["high", "low"])
    fake.setvar("driver.name", "fakedrv")
    fake.addcmd("test.battery.start", "beeper.toggle")
    fake.tracking_result = 0
    env = nut_env_factory([UpsSpec("fake", launch="fake", fake=fake)], upsd_flavour="debian")
    drv = repeater(tmp_path / "rep", env.port, ups="fake")
    drv2 = repeater(tmp_path / "rep2", env.port, ups="fake", extra="username = admin\npassword = adminpw\n")

    async def scenario() -> None:
        await prepare(drv)
        st = drv.state
        assert st.get("battery.charge").ranges == [(10, 90)] and st.get("battery.charge").flags == {"RW"}
        v = st.get("input.sensitivity")
        assert v.enums == ["high", "low"] and v.flags == {"RW", "STRING"} and v.aux == 8
        assert st.value("driver.name") == "dummy-ups"
        assert sorted(st.cmd_list()) == ["beeper.toggle", "test.battery.start"]
        # no credentials: the remote upsd refuses, reported as failed
        assert await drv.instcmd("beeper.toggle", None) == Status.FAILED
        await prepare(drv2)
        assert await drv2.instcmd("beeper.toggle", None) == Status.HANDLED
        assert await drv2.setvar("input.sensitivity", "low") == Status.HANDLED
        assert await drv2.setvar("input.sensitivity", "bogus") == Status.INVALID  # not in the ENUM
        await drv.cleanup()
        await drv2.cleanup()

    asyncio.run(scenario())
    assert any(line.startswith("INSTCMD beeper.toggle") for line in fake.received)
    assert any(line.startswith("SET input.sensitivity") for line in fake.received)


def test_repeater_strict_start(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there
    drv = repeater(tmp_path / "a", port)
    with pytest.raises(DriverError, match="cannot read dummy@127.0.0.1"):
        asyncio.run(prepare(drv))
    drv = repeater(tmp_path / "b", port, extra="repeater_disable_strict_start\n")

    async def lenient() -> None:
        await prepare(drv)
        assert drv.state.stale
        await drv.cleanup()

    asyncio.run(lenient())


def test_repeater_process(tmp_path: Path, nut_env_factory) -> None:  # noqa: ANN001
    """A nutlite repeater process republishing a nutlite upsd's UPS, read over its socket."""
    env = nut_env_factory([dummy_ups()], files={"conformance.dev": DATA_DIR / "conformance.dev"})
    conf, state = write_setup(tmp_path / "rep", {}, f"driver = dummy-ups\nport = dummy@127.0.0.1:{env.port}\n")
    penv = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state),
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "nutlite", "driver", "-a", "u", "-F", *user_args()], env=penv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        path = state / "dummy-ups-u"
        deadline = time.monotonic() + 15
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            s.sendall(b"DUMPALL\n")
            from test_sockproto import read_dump

            dump = read_dump(s)
        with env.connect() as c:
            remote = {ln.split()[2]: split_line(ln)[3] for ln in c.request_list("LIST VAR dummy")[1:-1]}
        ours = {split_line(ln)[1]: split_line(ln)[2] for ln in dump if ln.startswith("SETINFO ")}
        for name, value in remote.items():
            if not name.startswith("driver."):
                assert ours.get(name) == value, name
        assert ours["driver.parameter.mode"] == "repeater"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
