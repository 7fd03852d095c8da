"""nutlite's usbhid-ups against usbsim (a fake libusb-1.0 serving one capture): interrupt reports,
unplug/replug, refusing a Megatec bridge, killpower (-k). The side-by-side comparison with Debian's
driver is tests/test_usbhid_side_by_side.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.nutenv import REPO_ROOT, STAY_ROOT, get_var, wait_for
from tests.test_usb_transport import _unavailable, usbsim_lib  # noqa: F401 - the session fixture
from tests.test_usbhid_side_by_side import need_nut, sim_env, sim_log, start  # noqa: F401

BACKUPS = "APC__Back-UPS_500__051d-0002"
CPS = "CyberPower__CP1500PFCLCD__0764-0501"


def control(base: Path, *lines: str) -> None:
    with open(base / "control", "a") as f:
        for line in lines:
            f.write(line + "\n")


def test_interrupt_report_shows_ob(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    # a long pollinterval: only the interrupt report can bring OB in time
    env = start(tmp_path, usbsim_lib, BACKUPS, "nutlite", {"pollinterval": "30"})
    try:
        env.wait_ready()
        assert get_var(env, "ups") == 'VAR ups ups.status "OL"'
        t0 = time.monotonic()
        control(tmp_path, "event 13 : 13 00")  # ACPresent = 0
        wait_for(lambda: get_var(env, "ups") == 'VAR ups ups.status "OB"', 5, "OB from the interrupt report", env)
        assert time.monotonic() - t0 < 5
        control(tmp_path, "event 13 : 13 01")
        wait_for(lambda: get_var(env, "ups") == 'VAR ups ups.status "OL"', 5, "OL again", env)
    finally:
        env.stop()


def test_pollonly_ignores_interrupts(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    # "int" queues an interrupt report without changing the Feature report the polls read
    env = start(tmp_path, usbsim_lib, BACKUPS, "nutlite", {"pollinterval": "1"}, flags=("pollonly",))
    try:
        env.wait_ready()
        control(tmp_path, "int 13 : 13 00")
        time.sleep(3)
        assert get_var(env, "ups") == 'VAR ups ups.status "OL"'
        assert "Traceback" not in env.driver_log("ups")
    finally:
        env.stop()


def test_unplug_stale_replug_fresh(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    env = start(tmp_path, usbsim_lib, CPS, "nutlite", {"pollinterval": "1"})
    try:
        env.wait_ready()
        control(tmp_path, "unplug")
        wait_for(lambda: "DATA-STALE" in get_var(env, "ups"), 10, "DATA-STALE after unplug", env)
        control(tmp_path, "set 08 : 08 50 dc 23 2c 01")  # battery.charge 80 meanwhile
        control(tmp_path, "replug")
        wait_for(lambda: get_var(env, "ups") == 'VAR ups ups.status "OL"', 15, "fresh data after replug", env)
        wait_for(lambda: get_var(env, "ups", "battery.charge") == 'VAR ups battery.charge "80"', 40,
                 "the new charge at the next full poll", env)
        log = env.driver_log("ups")
        assert log.count("lost USB device") == 1, log
        assert log.count("is back") == 1, log
        assert "Traceback" not in log
    finally:
        env.stop()


def _run_driver(base: Path, lib: Path, name: str, *args: str, driver: list[str] | None = None,
                options: str = "") -> subprocess.CompletedProcess[str]:
    etc, state = base / "etc", base / "state"
    etc.mkdir(parents=True, exist_ok=True)
    state.mkdir(exist_ok=True)
    (etc / "ups.conf").write_text(f"[ups]\n  driver = usbhid-ups\n  port = auto\n{options}")
    (base / "control").touch()
    env = {**os.environ, "NUT_CONFPATH": str(etc), "NUT_STATEPATH": str(state), "NUT_ALTPIDPATH": str(state),
           "PYTHONPATH": str(REPO_ROOT), **sim_env(lib, base, name)}
    argv = driver or [sys.executable, "-m", "nutlite", "usbhid-ups"]
    user = list(STAY_ROOT)
    return subprocess.run([*argv, "-a", "ups", *user, *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=base)


def test_megatec_bridge_refused(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    r = _run_driver(tmp_path, usbsim_lib, "Prolink__1250VA_Megatec_over_HID__0665-5161", "-d", "1")
    assert r.returncode == 1
    assert "nutdrv_qx" in r.stderr and "0665:5161" in r.stderr
    assert "Traceback" not in r.stderr


def test_unsupported_product_refused(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    r = _run_driver(tmp_path, usbsim_lib, "Liebert__GXT4__10af-0000", "-d", "1")
    assert r.returncode == 1
    assert "not (or perhaps not yet) supported" in r.stderr and "productid = 0000" in r.stderr


@pytest.mark.parametrize("name", [CPS, BACKUPS, "APC__Smart-UPS_3000__051d-0003", "Eaton__3S_700__0463-ffff",
                                  "Tripp_Lite__UPS_proto3016__09ae-3016"])
def test_killpower_sends_what_nut_sends(name: str, tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """-k with no driver running: the same SET_REPORTs as Debian's usbhid-ups -k (shutdown.return with
    ondelay/offdelay where the UPS has both delays, else shutdown.reboot)."""
    from tests.test_usbhid_side_by_side import _set_reports

    sent = {}
    for flavour, argv in (("debian", ["/lib/nut/usbhid-ups"]), ("nutlite", None)):
        base = tmp_path / flavour
        r = _run_driver(base, usbsim_lib, name, "-k", driver=argv, options="  offdelay = 125\n  ondelay = 240\n")
        assert r.returncode == 0, r.stderr
        sent[flavour] = _set_reports(sim_log(base))
    assert sent["nutlite"] == [nut_id_byte(x) for x in sent["debian"]]
    assert sent["nutlite"], "no SET_REPORT"


def nut_id_byte(line: str) -> str:
    """Intended difference: when a report cannot be read first (the Tripp Lite capture lacks 0x15 and
    0x61), NUT 2.8.0 sends the SET_REPORT with a 00 id byte in the data; nutlite puts the report id there."""
    head, _, data = line.partition(" : ")
    rid = head.rsplit("0x", 1)[1]
    return f"{head} : {rid}{data[2:]}" if data.startswith("00") and rid != "00" else line


def test_driver_version_data(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    r = _run_driver(tmp_path, usbsim_lib, "Eaton__3S_700__0463-ffff", "-d", "1")
    assert r.returncode == 0, r.stderr
    assert "driver.version.data: MGE HID 1.46" in r.stdout
    assert "ups.realpower: 39" in r.stdout


@pytest.mark.parametrize("value", ["-3", "many"])
def test_bad_setting_is_a_clear_error(tmp_path: Path, usbsim_lib: Path, need_nut: None, value: str) -> None:  # noqa: F811
    r = _run_driver(tmp_path, usbsim_lib, BACKUPS, "-d", "1", options=f"  pollfreq = {value}\n")
    assert r.returncode != 0
    assert "pollfreq" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------------------------------
# The table engine without I/O: the reports come from the capture, changed where a test says so


def _engine(name: str, quirks: object = None):  # noqa: ANN202 - test helper
    from nutlite.drivers.tables.hidups import subdriver_for
    from nutlite.drivers.tables.hidups.engine import HidEngine
    from nutlite.hid import ReportType, parse_hex
    from tests.test_usb_transport import CAPTURES

    path = CAPTURES / f"{name}.capture"
    if not path.exists():
        _unavailable(f"the HID captures are not there ({CAPTURES})")
    text = path.read_text()
    desc_line = next(ln for ln in text.splitlines() if ln.startswith("descriptor:"))
    descriptor = parse_hex(desc_line.split(":", 1)[1])
    reports: dict[int, bytes] = {}
    for ln in text.splitlines():
        if ln.startswith("report "):
            head, data = ln.split(":", 1)
            reports[int(head.split()[2], 16)] = bytes.fromhex(data)
    vid = int(name.rsplit("__", 1)[1][:4], 16)
    sub = subdriver_for(vid)
    assert sub is not None
    engine = HidEngine(descriptor, sub, quirks)  # type: ignore[arg-type]

    def read(_rtype: ReportType, rid: int) -> bytes | None:
        return reports.get(rid)

    return engine, reports, read


SU3000 = "APC__Smart-UPS_3000__051d-0003"
# report 0x07 bits: 0 Charging, 1 Discharging, 2 ACPresent, 3 BatteryPresent, 4 BelowRemainingCapacityLimit,
# 6 ShutdownImminent, 9 NeedReplacement, 10 Overload
OL, OL_DISCHRG, OB_LB, LB_RB = b"\x07\x0c\x00", b"\x07\x0e\x00", b"\x07\x1a\x00", b"\x07\x1c\x02"


def test_engine_status_words() -> None:
    engine, reports, read = _engine(SU3000)
    first = engine.discover(read, lambda i: None)
    assert first.status == ["OL"]
    assert first.values["battery.charge"] == "100" and first.values["ups.mfr.date"] == "2023/01/13"
    reports[7] = OB_LB
    assert engine.poll(read, lambda i: None, full=False).status == ["OB", "DISCHRG", "LB"]
    reports[7] = b"\x07\x0c\x04"  # overload while online
    assert engine.poll(read, lambda i: None, full=False).status == ["OL", "OVER"]


def test_engine_onlinedischarge_quirks() -> None:
    from nutlite.drivers.tables.hidups.engine import Quirks

    for quirks, expected in ((Quirks(), ["OL", "DISCHRG"]),
                             (Quirks(onlinedischarge_onbattery=True), ["OB", "DISCHRG"]),
                             (Quirks(onlinedischarge_calibration=True), ["OL", "DISCHRG", "CAL"])):
        engine, reports, read = _engine(SU3000, quirks)
        reports[7] = OL_DISCHRG
        engine.discover(read, lambda i: None)
        assert engine.poll(read, lambda i: None, full=False).status == expected, quirks


def test_engine_lbrb_log_delay() -> None:
    from nutlite.drivers.tables.hidups.engine import Quirks

    engine, reports, read = _engine(SU3000, Quirks(lbrb_log_delay_sec=2))
    engine.discover(read, lambda i: None)
    reports[7] = LB_RB
    assert engine.poll(read, lambda i: None, full=False).status == ["OL"]  # held back
    time.sleep(2.1)
    assert engine.poll(read, lambda i: None, full=False).status == ["OL", "LB", "RB"]
    reports[7] = OL
    assert engine.poll(read, lambda i: None, full=False).status == ["OL"]


def test_engine_interrupt_report() -> None:
    engine, _reports, read = _engine("APC__Back-UPS_500__051d-0002")
    engine.discover(read, lambda i: None)
    reading = engine.interrupt(bytes.fromhex("0c 32 00 00 10 0e"), lambda i: None)
    assert reading.values["battery.charge"] == "50" and reading.values["battery.runtime"] == "3600"
    assert engine.interrupt(bytes.fromhex("13 00"), lambda i: None).status == ["OB"]


def test_engine_set_truncates_as_nut() -> None:
    engine, _reports, read = _engine(CPS)
    engine.discover(read, lambda i: None)
    found = engine.command_value("load.on.delay")
    assert found is not None
    # CyberPower's delays are in steps of 60 s: 40 s is step 0, 150 s step 2 (NUT truncates)
    assert engine.build_set(found[1], 40, read) == b"\x16\x00\x00"
    assert engine.build_set(found[1], 150, read) == b"\x16\x02\x00"


def test_dates() -> None:
    from nutlite.drivers.tables.hidups import hid_date
    from nutlite.drivers.tables.hidups.apc import apc_date

    assert hid_date(12515) == "2004/07/03"
    assert hid_date(0) == "not set"  # NUT 2.8.0 (through usbsim)
    assert apc_date(0x070304) == "2004/07/03"
    assert apc_date(0x123199) == "1999/12/31"
    assert apc_date(0xFFFFFF) == "2065/165/165"  # NUT reads each hex digit as a decimal one
    assert apc_date(0) == "not set"


@pytest.mark.parametrize("ids", ["050d:0912", "050d:0001", "06da:ffff", "2e66:0300", "0592:0004", "0764:0751"])
def test_subdriver_claims_as_nut(ids: str, tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """Which subdriver takes a vendor:product id, against Debian's usbhid-ups on a Power Device capture
    given that id (it prints "Using subdriver: ..." or refuses the device)."""
    import re

    from nutlite.drivers.tables.hidups import claim

    (tmp_path / "ids.usbsim").write_text(f"usb {ids}\n")
    name = "Arduino__HIDPowerDevice_abratchik__2341-8036"
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    (etc / "ups.conf").write_text("[ups]\n  driver = usbhid-ups\n  port = auto\n")
    env = {**os.environ, "NUT_CONFPATH": str(etc), "NUT_STATEPATH": str(state), **sim_env(usbsim_lib, tmp_path, name)}
    env["USBSIM_DEVICE"] += f":{tmp_path / 'ids.usbsim'}"
    p = subprocess.Popen(["/lib/nut/usbhid-ups", "-a", "ups", "-u", "root", "-DD"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        out = ""
        assert p.stdout is not None
        for line in p.stdout:
            out += line
            if "Using subdriver" in line or "No matching HID UPS" in line:
                break
    finally:
        p.kill()
        p.wait()
    m = re.search(r"Using subdriver: (.*)", out)
    vid, pid = (int(x, 16) for x in ids.split(":"))
    sub, why = claim(vid, pid)
    if m:
        assert sub is not None and sub.version_data == m.group(1).strip()
    else:
        assert sub is None and why and "not (or perhaps not yet) supported" in out and ids in why


def test_killpower_through_running_driver(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """-k while the driver runs and holds the device (USBSIM_LOCK: a second claim is refused): the
    running driver sends shutdown.return."""
    from tests.nutenv import NutEnv, UpsSpec
    from tests.test_usbhid_side_by_side import _set_reports

    lock = tmp_path / "usb.lock"
    base = tmp_path / "locked"
    base.mkdir()
    (base / "control").touch()

    spec = UpsSpec("ups", driver="usbhid-ups", port="auto", options={"pollinterval": "1"},
                   env={**sim_env(usbsim_lib, base, CPS), "USBSIM_LOCK": str(lock)})
    nenv = NutEnv(base, [spec], driver_flavour="nutlite", upsd_flavour="debian")
    nenv.start()
    try:
        run_env = {**nenv.environ(), **spec.env}
        r = subprocess.run([sys.executable, "-m", "nutlite", "usbhid-ups", "-a", "ups", "-k", "-u", "root"],
                           capture_output=True, text=True, env=run_env, timeout=60, cwd=base)
        assert r.returncode == 0, r.stderr
        assert "running usbhid-ups driver ran its shutdown routine" in r.stderr
        sent = _set_reports(sim_log(base))
        assert sent == ["feature 0x16 : 16 00 00", "feature 0x15 : 15 00 00"]
    finally:
        nenv.stop()


def test_waitbeforereconnect(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """With waitbeforereconnect = 4 the driver looks for a lost device again only 4 s after the loss:
    a device back at once still gives stale data for those seconds, then fresh data."""
    env = start(tmp_path, usbsim_lib, CPS, "nutlite", {"pollinterval": "1", "waitbeforereconnect": "4"})
    try:
        env.wait_ready()
        control(tmp_path, "unplug")
        wait_for(lambda: "DATA-STALE" in get_var(env, "ups"), 10, "DATA-STALE after unplug", env)
        lost = time.monotonic()
        control(tmp_path, "replug")
        time.sleep(2)
        assert "DATA-STALE" in get_var(env, "ups")
        wait_for(lambda: get_var(env, "ups") == 'VAR ups ups.status "OL"', 15, "fresh data", env)
        assert time.monotonic() - lost >= 3
        assert "every 4 s" in env.driver_log("ups")
    finally:
        env.stop()


def test_explore_needs_vendorid(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    r = _run_driver(tmp_path, usbsim_lib, "Unknown__UPS_HI__09d6-0001", "-d", "1", options="  explore\n")
    assert r.returncode == 1
    assert "explore needs vendorid" in r.stderr and "Traceback" not in r.stderr


def test_engine_offers_a_command_only_when_its_report_reads() -> None:
    """As NUT 2.8.0 (through usbsim): a command whose report the device stalls is not offered; the same
    device answering every report (usbsim's "unrecorded zero") offers load.off.delay and shutdown.stop."""
    from nutlite.hid import ReportType

    engine, reports, read = _engine(SU3000)
    assert 0x12 not in reports  # DelayBeforeShutdown: not recorded, the device stalls it
    engine.discover(read, lambda i: None)
    assert "load.off.delay" not in engine.cmds and "shutdown.stop" not in engine.listed_commands()
    assert "load.off" in engine.listed_commands()  # NUT offers load.off / load.on on the path alone

    engine, reports, _read = _engine(SU3000)

    def zeros(rtype: ReportType, rid: int) -> bytes:
        return reports.get(rid) or bytes([rid]) + bytes(engine.descriptor.report_length(rtype, rid) - 1)

    engine.discover(zeros, lambda i: None)
    assert {"load.off", "load.off.delay", "shutdown.stop"} <= set(engine.listed_commands())


def test_powercom_conversions() -> None:
    from nutlite.drivers.tables.hidups.powercom import pcm_shutdown_timer, pcm_start_timer

    assert pcm_shutdown_timer(0x0F0F) == "915"  # 15 min 15 s (NUT 2.8.0 through usbsim)
    assert pcm_start_timer(0x1010) == "246720"  # minutes
