"""``nutlite bootguard``: the boot-time wait for the UPS to recharge after a power-fail shutdown.

The waiting logic is driven directly with a fake clock and scripted readings; the command runs as a
subprocess against nutlite's upsd fed by a `FakeDriver` whose battery.charge the test raises.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import EnvFactory
from nutenv import FakeDriver, NutEnv, UpsSpec, free_port

from nutlite import bootguard
from nutlite.bootguard import Reading, Settings, guard, load_settings, read_ups, wait_for_charge
from nutlite.client import UpsAddress
from nutlite.config import ConfigError, load_nut_conf

MAGIC = "upsmon-shutdown-file"


# --------------------------------------------------------------------------------------------- the core


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*charges: float | str | None) -> Callable[[UpsAddress], Reading]:
    """A reader returning these charges one poll after the other (the last one repeats);
    a string is an error, None a UPS without battery.charge."""
    seq = list(charges)

    def read(addr: UpsAddress) -> Reading:
        value = seq.pop(0) if len(seq) > 1 else seq[0]
        if isinstance(value, str):
            return Reading(str(addr), error=value)
        if value is None:
            return Reading(str(addr), status="OL", no_charge=True)
        return Reading(str(addr), charge=value, status="OL CHRG")

    return read


def settings(marker: Path | None = None, **kw: object) -> Settings:
    base: dict[str, object] = dict(min_charge=50.0, timeout=60.0, interval=5.0, marker=marker,
                                   upses=[UpsAddress("ups1", "127.0.0.1", 3493)], on_timeout="continue",
                                   mode="standalone")
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def test_wait_returns_when_the_charge_reaches_the_level() -> None:
    t = FakeTime()
    assert wait_for_charge(settings(), scripted(10, 30, 49.9, 50), t.clock, t.sleep)
    assert t.sleeps == [5.0, 5.0, 5.0]


def test_wait_times_out() -> None:
    t = FakeTime()
    assert not wait_for_charge(settings(timeout=12), scripted(10), t.clock, t.sleep)
    assert t.sleeps == [5.0, 5.0, 2.0]  # the last sleep ends exactly at the deadline


def test_errors_keep_waiting() -> None:
    """upsd not up yet, driver not connected, stale data: keep polling."""
    t = FakeTime()
    read = scripted("Connection refused", "Driver not connected", "Data stale", 80)
    assert wait_for_charge(settings(), read, t.clock, t.sleep)
    assert len(t.sleeps) == 3


def test_every_ups_must_be_charged() -> None:
    t = FakeTime()
    charges = {"a": [90.0], "b": [10.0, 20.0, 60.0]}

    def read(addr: UpsAddress) -> Reading:
        seq = charges[addr.upsname or ""]
        return Reading(addr.upsname or "", charge=seq.pop(0) if len(seq) > 1 else seq[0], status="OL")

    s = settings(upses=[UpsAddress("a", "h", 1), UpsAddress("b", "h", 1)])
    assert wait_for_charge(s, read, t.clock, t.sleep)
    assert len(t.sleeps) == 2


def test_reading_rules() -> None:
    assert Reading("u", charge=50, status="OL").ok(50)
    assert not Reading("u", charge=49, status="OL CHRG").ok(50)
    assert not Reading("u", charge=100, status="OB DISCHRG").ok(50)  # on battery again: keep waiting
    assert Reading("u", status="OL", no_charge=True).ok(50)  # cannot be judged: does not hold the boot
    assert not Reading("u", status="OB", no_charge=True).ok(50)
    assert not Reading("u", error="Data stale").ok(0)


def test_guard_paths(tmp_path: Path) -> None:
    marker = tmp_path / "powerfail"
    t = FakeTime()
    # No marker: nothing to do, no UPS asked.
    assert guard(settings(marker), scripted("must not be read"), t.clock, t.sleep) == 0
    assert t.sleeps == []
    # Marker, charged enough: marker cleared.
    marker.write_text("x")
    assert guard(settings(marker), scripted(80), t.clock, t.sleep) == 0
    assert not marker.exists()
    # Timeout, continue: marker cleared, exit 0.
    marker.write_text("x")
    assert guard(settings(marker, timeout=10), scripted(10), t.clock, t.sleep) == 0
    assert not marker.exists()
    # Timeout, fail: marker kept, exit 1.
    marker.write_text("x")
    assert guard(settings(marker, timeout=10, on_timeout="fail"), scripted(10), t.clock, t.sleep) == 1
    assert marker.exists()
    # Guard off: the marker is cleared without waiting.
    assert guard(settings(marker, min_charge=None), scripted("unused"), t.clock, t.sleep) == 0
    assert not marker.exists()
    # MODE=none: NUT is not in use; the marker is not touched.
    marker.write_text("x")
    assert guard(settings(marker, mode="none"), scripted("unused"), t.clock, t.sleep) == 0
    assert marker.exists()


# --------------------------------------------------------------------------------------------- settings


def test_settings_from_nut_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUT_CONFPATH", str(tmp_path))
    (tmp_path / "ups.conf").write_text("[a]\n driver = dummy-ups\n port = a.dev\n[b]\n driver = dummy-ups\n port = b.dev\n")
    (tmp_path / "upsd.conf").write_text("LISTEN 0.0.0.0 3499\n")
    conf = load_nut_conf(text="MODE=standalone\nBOOTGUARD_MIN_CHARGE=40\nBOOTGUARD_TIMEOUT=600\n"
                              "BOOTGUARD_MARKER=/data/pf\nBOOTGUARD_ON_TIMEOUT=FAIL\n")
    s = load_settings(conf)
    assert (s.min_charge, s.timeout, s.interval, s.marker, s.on_timeout) == (40, 600, 5, Path("/data/pf"), "fail")
    # Default UPS list: every ups.conf section at the local upsd (a wildcard LISTEN means loopback).
    assert s.upses == [UpsAddress("a", "127.0.0.1", 3499), UpsAddress("b", "127.0.0.1", 3499)]
    s = load_settings(load_nut_conf(text='MODE=netserver\nBOOTGUARD_UPS="b, x@nas:3500"\nBOOTGUARD_MARKER=\n'))
    assert s.min_charge is None and s.marker is None
    assert s.upses == [UpsAddress("b", "127.0.0.1", 3499), UpsAddress("x", "nas", 3500)]


def test_settings_netclient_uses_upsmon_monitors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUT_CONFPATH", str(tmp_path))
    (tmp_path / "upsmon.conf").write_text("MONITOR big@nas:3493 1 monsec pw secondary\n")
    s = load_settings(load_nut_conf(text="MODE=netclient\nBOOTGUARD_MIN_CHARGE=30\n"))
    assert s.upses == [UpsAddress("big", "nas", 3493)]
    assert s.marker == Path(bootguard.DEFAULT_MARKER)


@pytest.mark.parametrize("line", ["BOOTGUARD_MIN_CHARGE=lots", "BOOTGUARD_MIN_CHARGE=120",
                                  "BOOTGUARD_TIMEOUT=-1", "BOOTGUARD_ON_TIMEOUT=maybe",
                                  "BOOTGUARD_INTERVAL=0"])
def test_bad_settings_name_the_key(line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUT_CONFPATH", str(tmp_path))
    with pytest.raises(ConfigError, match=line.split("=")[0]):
        load_settings(load_nut_conf(text=f"MODE=standalone\n{line}\n"))


def test_read_ups_without_upsd() -> None:
    r = read_ups(UpsAddress("ups1", "127.0.0.1", free_port()), timeout=2)
    assert r.error and "upsd at 127.0.0.1" in r.error
    assert not r.ok(0)


# --------------------------------------------------------------------------------------------- the command


@pytest.fixture
def charged_env(nut_env_factory: EnvFactory, tmp_path: Path) -> Iterator[tuple[NutEnv, FakeDriver, Path]]:
    """nutlite upsd serving ups1 from a FakeDriver at 20 % charge; nut.conf guards for 50 %."""
    marker = tmp_path / "powerfail"
    fake = FakeDriver(tmp_path / "placeholder")
    fake.setvar("ups.status", "OL CHRG")
    fake.setvar("battery.charge", "20")
    nut_conf = (f"MODE=standalone\nBOOTGUARD_MIN_CHARGE=50\nBOOTGUARD_TIMEOUT=20\n"
                f"BOOTGUARD_INTERVAL=0.2\nBOOTGUARD_MARKER={marker}\n")
    env = nut_env_factory([UpsSpec("ups1", launch="fake", fake=fake)], files={"nut.conf": nut_conf})
    yield env, fake, marker


def bootguard_cmd(env: NutEnv, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen([sys.executable, "-m", "nutlite", "bootguard", *args], env=env.environ(),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def run_bootguard(env: NutEnv, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", "bootguard", *args], env=env.environ(),
                          capture_output=True, text=True, timeout=timeout)


def test_no_marker_exits_at_once(charged_env: tuple[NutEnv, FakeDriver, Path]) -> None:
    env, _, marker = charged_env
    started = time.monotonic()
    res = run_bootguard(env)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - started < 5
    assert "no power-fail marker" in res.stderr
    assert not marker.exists()


def test_waits_until_the_charge_rises_then_clears_the_marker(
        charged_env: tuple[NutEnv, FakeDriver, Path], tmp_path: Path) -> None:
    env, fake, marker = charged_env
    marker.write_text("nutlite power-fail shutdown\n")
    log = tmp_path / "bootguard.log"
    proc = bootguard_cmd(env, log=log)
    try:
        deadline = time.monotonic() + 15
        while "battery.charge 20%" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None, "the guard must keep waiting below 50 %"
        assert marker.exists()
        # The battery charges: the driver reports it, upsd passes it on, the guard lets the boot go on.
        fake.vars["battery.charge"].value = "55"
        fake.broadcast('SETINFO battery.charge "55"')
        assert proc.wait(15) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "the last shutdown was a power-fail shutdown" in text
    assert "battery.charge 55%" in text
    assert not marker.exists()


@pytest.mark.parametrize("on_timeout, code, kept", [("continue", 0, False), ("fail", 1, True)])
def test_timeout(charged_env: tuple[NutEnv, FakeDriver, Path], on_timeout: str, code: int, kept: bool) -> None:
    env, _, marker = charged_env
    marker.write_text("x\n")
    started = time.monotonic()
    res = run_bootguard(env, "--timeout", "1", "--on-timeout", on_timeout)
    assert time.monotonic() - started < 10
    assert res.returncode == code, res.stderr
    assert "timed out" in res.stderr
    assert marker.exists() is kept


def test_upsd_down_is_waited_for_until_the_timeout(charged_env: tuple[NutEnv, FakeDriver, Path]) -> None:
    env, _, marker = charged_env
    env.stop_upsd()
    marker.write_text("x\n")
    res = run_bootguard(env, "--timeout", "1")
    assert res.returncode == 0
    assert "Connection refused" in res.stderr or "upsd at" in res.stderr
    assert "timed out" in res.stderr


def test_mark_and_clear(charged_env: tuple[NutEnv, FakeDriver, Path]) -> None:
    env, _, marker = charged_env
    flag = env.statepath / "killpower"
    (env.confpath / "upsmon.conf").write_text(f"POWERDOWNFLAG {flag}\n")
    # --if-powerdownflag: only after upsmon's power-fail shutdown.
    assert run_bootguard(env, "mark", "--if-powerdownflag").returncode == 0
    assert not marker.exists()
    flag.write_text(MAGIC)
    assert run_bootguard(env, "mark", "--if-powerdownflag").returncode == 0
    assert marker.read_text().startswith("nutlite power-fail shutdown")
    assert run_bootguard(env, "clear").returncode == 0
    assert not marker.exists()
    # Unconditional mark (e.g. from SHUTDOWNCMD), and status.
    assert run_bootguard(env, "mark").returncode == 0
    res = run_bootguard(env, "status")
    assert res.returncode == 0
    assert "present" in res.stdout and "battery.charge 20%" in res.stdout and "would wait" in res.stdout


def test_bad_config_is_reported(charged_env: tuple[NutEnv, FakeDriver, Path]) -> None:
    env, _, _ = charged_env
    (env.confpath / "nut.conf").write_text("MODE=standalone\nBOOTGUARD_MIN_CHARGE=half\n")
    res = run_bootguard(env)
    assert res.returncode == bootguard.EXIT_CONFIG
    assert "nut.conf" in res.stderr and "BOOTGUARD_MIN_CHARGE" in res.stderr


def test_cli_lists_bootguard() -> None:
    res = subprocess.run([sys.executable, "-m", "nutlite", "--help"], capture_output=True, text=True, timeout=30)
    assert "bootguard" in res.stdout
