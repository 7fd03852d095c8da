"""Q1 over USB (nutlite.drivers.transports.q1usb, nutdrv_qx/blazer_usb with port = auto) against
usbsim's Megatec device: the transports on the wire, the choice of transport, the settings' errors,
unplug/replug (DATA-STALE while gone, fresh data when back, one log line per change) and the USB ids
for udev.

usbsim is built once per session; without gcc or usbsim the tests are skipped, or fail with
NUTLITE_REQUIRE_REAL_NUT=1. The driver runs as a real process (``python -m nutlite driver``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from nutlite.drivers.transports import q1usb
from tests.nutenv import NutEnv, UpsSpec, get_var, real_nut_available, upsd_list, wait_for
from tests.test_q1usb_side_by_side import OB, OL, control, device_file, sim_log, status_line
from tests.test_usb_transport import ROOT, _unavailable, usbsim_lib  # noqa: F401 - the session fixture


def start(base: Path, lib: Path, transport: str, driver: str = "nutdrv_qx", options: dict[str, str] | None = None,
          upsd: str = "nutlite") -> NutEnv:
    base.mkdir(parents=True, exist_ok=True)
    (base / "control").write_text("")
    dev = device_file(base, transport)
    env_vars = {"LD_LIBRARY_PATH": str(lib), "USBSIM_DEVICE": str(dev), "USBSIM_CONTROL": str(base / "control"),
                "USBSIM_LOG": str(base / "usbsim.log")}
    spec = UpsSpec("ups", driver=driver, port="auto", options={"pollinterval": "1", **(options or {})}, env=env_vars)
    env = NutEnv(base, [spec], driver_flavour="nutlite", upsd_flavour=upsd)
    env.start()
    return env


def driver_log(env: NutEnv) -> str:
    return (env.logpath / "driver-ups.log").read_text(errors="replace")


@pytest.mark.parametrize(("transport", "driver", "first_transfer"), [
    ("cypress", "nutdrv_qx", "SET_REPORT output 0x00 : "),
    ("phoenix", "blazer_usb", "SET_REPORT output 0x00 : "),
    ("ippon", "nutdrv_qx", "SET_REPORT type0 0x02 : "),
])
def test_each_bridge_carries_the_protocol(transport: str, driver: str, first_transfer: str, tmp_path: Path,
                                          usbsim_lib: Path) -> None:  # noqa: F811
    """The transport picked by the ids (no subdriver) reads the UPS and sends Q1 as NUT does."""
    env = start(tmp_path, usbsim_lib, transport, driver, {"protocol": "megatec"} if driver == "nutdrv_qx" else {})
    try:
        got = upsd_list(env, "ups")
        assert got["ups.status"] == "OL"
        assert got["input.voltage"] == "230.4" and got["battery.voltage"] == "13.70"
        assert got["ups.vendorid"] == device_file(tmp_path, transport).read_text().split()[1][:4]
        assert f"{first_transfer}51 31 0d 00 00 00 00 00" in sim_log(tmp_path)
    finally:
        env.stop()


def test_krauler_reads_strings_with_the_langid_fix(tmp_path: Path, usbsim_lib: Path) -> None:  # noqa: F811
    """krauler: the reply is string descriptor 3 read with langid_fix instead of the device's 0x0409."""
    base = tmp_path
    env = start(base, usbsim_lib, "krauler", options={"protocol": "megatec", "langid_fix": "0x4095"})
    try:
        assert upsd_list(env, "ups")["device.model"] == "Q1-SIM"
        log = (base / "usbsim.log").read_text()
        del log  # usbsim answers any language id; the request itself is checked below with DEBUG
    finally:
        env.stop()
    # the same device with usbsim's control-transfer log: the string requests carry 0x4095
    env = NutEnv(base / "dbg", [UpsSpec("ups", driver="nutdrv_qx", port="auto",
                                        options={"pollinterval": "1", "protocol": "megatec", "langid_fix": "0x4095"},
                                        env={"LD_LIBRARY_PATH": str(usbsim_lib),
                                             "USBSIM_DEVICE": str(device_file(base, "krauler")),
                                             "USBSIM_LOG": str(base / "dbg.log"), "USBSIM_DEBUG": "2"})],
                 driver_flavour="nutlite", upsd_flavour="nutlite")
    env.start()
    try:
        assert upsd_list(env, "ups")["ups.status"] == "OL"
        assert "control 80 06 0303 4095 255" in (base / "dbg.log").read_text()
    finally:
        env.stop()


def run_driver(tmp_path: Path, lib: Path, driver: str, *settings: str) -> subprocess.CompletedProcess[str]:
    """``nutlite <driver> -s ups -x port=auto -x <settings>...`` against the cypress device."""
    dev = tmp_path / "cypress.dev"
    env = {"LD_LIBRARY_PATH": str(lib), "USBSIM_DEVICE": str(dev if dev.exists() else device_file(tmp_path, "cypress")),
           "PYTHONPATH": str(ROOT), "NUT_STATEPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "nutlite", driver, "-s", "ups", "-x", "port=auto", "-u", "root", "-F"]
    for s in settings:
        argv += ["-x", s]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)


@pytest.mark.parametrize(("settings", "message"), [
    (("subdriver=cypress",), "subdriver = 'cypress' needs vendorid and productid"),
    (("subdriver=nosuch", "vendorid=0665", "productid=5161"), "subdriver = 'nosuch': no such subdriver"),
    (("langid_fix=zz",), "langid_fix = 'zz': expected a hexadecimal language id"),
    (("vendorid=1234",), "no USB device matches"),
])
def test_bad_settings_are_named(settings: tuple[str, ...], message: str, tmp_path: Path,
                                usbsim_lib: Path) -> None:  # noqa: F811
    device_file(tmp_path, "cypress")
    r = run_driver(tmp_path, usbsim_lib, "nutdrv_qx", *settings)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert message in out, out
    assert "Traceback" not in out


def test_unplug_makes_data_stale_and_replug_gives_fresh_data(tmp_path: Path, usbsim_lib: Path) -> None:  # noqa: F811
    """The bridge is polled (there is no interrupt-only mode for Q1), so the unplug is seen at the next
    poll, and the replug within the reconnection waits; one log line each."""
    options = {"protocol": "megatec"}
    env = start(tmp_path, usbsim_lib, "cypress", options=options)
    try:
        assert get_var(env, "ups") == 'VAR ups ups.status "OL"'
        control(tmp_path, "unplug")
        t0 = time.monotonic()
        wait_for(lambda: get_var(env, "ups") == "ERR DATA-STALE", 10, "DATA-STALE after the unplug", env)
        assert time.monotonic() - t0 < 6
        control(tmp_path, status_line("cypress", OB))  # the UPS went on battery while unplugged
        time.sleep(2.5)  # a few reconnection attempts
        assert get_var(env, "ups") == "ERR DATA-STALE"
        control(tmp_path, "replug")
        wait_for(lambda: get_var(env, "ups") == 'VAR ups ups.status "OB"', 40, "fresh data after the replug", env)
        log = driver_log(env)
        assert log.count("lost USB device") == 1, log
        assert log.count("is back after") == 1, log
        assert "Traceback" not in log
    finally:
        env.stop()


def test_usb_ids_for_udev() -> None:
    ids = q1usb.usb_ids()
    assert (0x0665, 0x5161, "nutdrv_qx", "Q1 over USB, Cypress USB-serial bridge (SET_REPORT, interrupt IN)") in ids
    assert (0xFFFF, 0x0000, "blazer_usb", "Q1 over USB, Krauler/Digitus string-descriptor bridge") in ids
    assert not any(v == 0xFFFF and d == "nutdrv_qx" for v, _, d, _ in ids)  # NUT's ablerex, not here
    assert all(isinstance(v, int) and 0 <= v <= 0xFFFF and 0 <= p <= 0xFFFF for v, p, _, _ in ids)
    assert len(ids) == len(set(ids))


def test_debian_upsd_shows_our_usb_driver(tmp_path: Path, usbsim_lib: Path) -> None:  # noqa: F811
    if not real_nut_available():
        _unavailable("Debian's NUT 2.8.0 is not installed")
    env = start(tmp_path, usbsim_lib, "cypress", "blazer_usb", upsd="debian")
    try:
        assert get_var(env, "ups") == 'VAR ups ups.status "OL"'
        assert OL.split()[0][1:] == upsd_list(env, "ups")["input.voltage"]
    finally:
        env.stop()


def test_a_silent_bridge_is_named_in_the_error(tmp_path: Path, usbsim_lib: Path) -> None:  # noqa: F811
    """A bridge whose UPS never answers: the driver stops with one line naming the USB device and
    the bridge, no traceback."""
    dev = device_file(tmp_path, "cypress")
    dev.write_text("".join(ln + "\n" for ln in dev.read_text().splitlines() if not ln.startswith("megatec")))
    r = run_driver(tmp_path, usbsim_lib, "blazer_usb")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert 'no supported UPS detected on USB device 0665:5161 "Cypress Semiconductor"' in out, out
    assert "(cypress bridge)" in out and "Traceback" not in out


def dump(argv_tail: list[str], env: dict[str, str], cwd: Path) -> dict[str, str]:
    r = subprocess.run([sys.executable, "-m", "nutlite", "nutdrv_qx", "-s", "ups", "-u", "root", "-d", "1",
                        *argv_tail], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)


@pytest.mark.parametrize("transport", ["cypress", "phoenix", "krauler"])
def test_replay_gives_what_the_device_gives(transport: str, tmp_path: Path, usbsim_lib: Path) -> None:  # noqa: F811
    """``replay = <capture>``: nutdrv_qx talks to the recorded Q1 bridge without libusb, and publishes
    what it publishes for the same device served by usbsim."""
    dev = device_file(tmp_path, transport)
    dev = dev.rename(dev.with_suffix(".capture"))  # usbsim's device file is the .capture format
    env = {"PYTHONPATH": str(ROOT), "NUT_STATEPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    live = dump(["-x", "port=auto"], {**env, "LD_LIBRARY_PATH": str(usbsim_lib), "USBSIM_DEVICE": str(dev)},
                tmp_path)
    replayed = dump(["-x", "port=auto", "-x", f"replay={dev}"], env, tmp_path)
    assert replayed.pop("driver.parameter.replay") == str(dev)
    for var in ("driver.version.usb",):  # names the USB library binding, not the device
        live.pop(var, None)
        replayed.pop(var, None)
    assert replayed == live
    assert replayed["ups.status"] == "OL"
