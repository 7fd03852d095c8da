"""usbhid-ups side by side: Debian NUT 2.8.0's /lib/nut/usbhid-ups and nutlite's usbhid-ups, each under
usbsim (a fake libusb-1.0 serving one capture, ../shared/tools/usbsim) with its own driver socket and
Debian's upsd, on the same device; the variables upsd publishes must be equal but for the intended
differences below. Each capture is compared twice: as recorded (a report the capture lacks stalls, as on
a device that lacks it) and with usbsim's ``unrecorded zero`` overlay (every such report reads as zeros),
which puts every path of the descriptor through the subdriver tables. Also: the SET_REPORT an instant
command sends is the same bytes as Debian's.

usbsim is built once per session; without NUT, gcc or the captures the tests are skipped, or fail
with NUTLITE_REQUIRE_REAL_NUT=1.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.nutenv import NutEnv, compare_vars, real_nut_available, upsd_list, wait_for
from tests.test_usb_transport import CAPTURES, _unavailable, usbsim_lib  # noqa: F401 - the session fixture

#: intended differences, in both passes (the zero pass needs no other): driver.version is nutlite's
#: release, driver.version.usb names the libusb binding (pyusb); driver.parameter.port is whatever
#: ups.conf says (both "auto" here). The subdriver (driver.version.data) and driver.version.internal
#: are NUT's and must be equal.
INTENDED = ("driver.version", "driver.version.usb", "driver.parameter.port")

#: capture -> what NUT 2.8.0 publishes for it is a HID Power Device it serves
POWER_DEVICES = [
    "APC__Back-UPS_500__051d-0002",
    "APC__Smart-UPS_3000__051d-0003",
    "CyberPower__CP1500PFCLCD__0764-0501",
    "Eaton__3S_700__0463-ffff",
    "Tripp_Lite__UPS_proto3016__09ae-3016",
    "Powercom__HID_UPS_Battery__0d9f-0004",
    "APC__Back-UPS_CS_500__051d-0002",  # usbsim's example: with USB strings (model, serial, firmware)
]


EXAMPLES = CAPTURES.parent.parent / "tools" / "usbsim" / "examples"


def device_files(name: str) -> str:
    """The usbsim device file(s) of a capture: the capture and its .usbsim overlay, from the HID
    captures or else from usbsim's examples."""
    folder = CAPTURES if (CAPTURES / f"{name}.capture").exists() else EXAMPLES
    files = [folder / f"{name}.capture"]
    overlay = folder / f"{name}.usbsim"
    if overlay.exists():
        files.append(overlay)
    return ":".join(str(f) for f in files)


#: the usbsim overlay of the second pass: every report the capture does not record reads as zeros, so
#: every path of the descriptor has a value and goes through the subdriver tables
ZERO_OVERLAY = "unrecorded zero\n"


def sim_env(lib: Path, base: Path, name: str, *, zero: bool = False) -> dict[str, str]:
    """The usbsim environment serving capture ``name`` (``zero``: with the ``unrecorded zero`` overlay)."""
    device = device_files(name)
    if zero:
        base.mkdir(parents=True, exist_ok=True)
        overlay = base / "zero.usbsim"
        overlay.write_text(ZERO_OVERLAY)
        device += f":{overlay}"
    return {"LD_LIBRARY_PATH": str(lib), "USBSIM_DEVICE": device,
            "USBSIM_CONTROL": str(base / "control"), "USBSIM_LOG": str(base / "usbsim.log")}


def start(base: Path, lib: Path, name: str, flavour: str, options: dict[str, str] | None = None,
          flags: tuple[str, ...] = (), *, zero: bool = False) -> NutEnv:
    """A NutEnv whose one UPS "ups" is the capture ``name`` under usbsim, served by ``flavour``'s
    usbhid-ups (``flags``: ups.conf flags of the section; ``zero``: unrecorded reports read as
    zeros), with Debian's upsd."""
    from tests.nutenv import UpsSpec

    base.mkdir(parents=True, exist_ok=True)
    (base / "control").touch()
    spec = UpsSpec("ups", driver="usbhid-ups", port="auto", options=dict(options or {}),
                   env=sim_env(lib, base, name, zero=zero))
    env = NutEnv(base, [spec], driver_flavour=flavour, upsd_flavour="debian")
    env.write_configs()
    if flags:
        conf = env.confpath / "ups.conf"
        conf.write_text(conf.read_text().rstrip("\n") + "\n" + "".join(f"  {f}\n" for f in flags))
    env.write_configs = lambda: None  # type: ignore[method-assign]
    env.start()
    return env


@pytest.fixture(scope="module")
def need_nut() -> None:
    if not real_nut_available():
        _unavailable("Debian's NUT 2.8.0 (/lib/nut/usbhid-ups, upsd) is not installed")
    if not (CAPTURES / "APC__Back-UPS_500__051d-0002.capture").exists():
        _unavailable(f"the HID captures are not there ({CAPTURES})")


def sim_log(base: Path) -> str:
    try:
        return (base / "usbsim.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


#: devices NUT 2.8.0 takes only when told to: (capture, settings, flags)
FORCED = [
    ("Liebert__GXT4__10af-0000", {"productid": "0000"}, ()),
    ("Minuteman__UPS__05dd-a0a0", {"productid": "a0a0"}, ()),
    ("Unknown__UPS_HI__09d6-0001", {"vendorid": "09d6"}, ("explore",)),
]


#: the two passes: as recorded (an unrecorded report stalls, as on a device that lacks it) and with
#: usbsim's ``unrecorded zero`` (every report the capture lacks reads as zeros)
MODES = ("recorded", "zero")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "options", "flags"), [(n, {}, ()) for n in POWER_DEVICES] + FORCED)
def test_variables_equal(name: str, options: dict[str, str], flags: tuple[str, ...], mode: str, tmp_path: Path,
                         usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    listings = {}
    for flavour in ("debian", "nutlite"):
        env = start(tmp_path / flavour, usbsim_lib, name, flavour, {"pollinterval": "1", **options}, flags,
                    zero=mode == "zero")
        try:
            env.wait_ready()
            rw = upsd_list(env, "ups", "RW")
            with env.connect() as c:  # RW STRING:n / ENUM, as upsrw shows them
                types = {v: c.request(f"GET TYPE ups {v}") for v in rw}
                enums = {v: c.request_list(f"LIST ENUM ups {v}") for v in rw if "ENUM" in types[v]}
            listings[flavour] = (upsd_list(env, "ups"), upsd_list(env, "ups", "CMD"), rw, types, enums)
        finally:
            env.stop()
    deb, mine = listings["debian"], listings["nutlite"]
    assert compare_vars(deb[0], mine[0], INTENDED) == []
    assert len(deb[0]) > 10 if not options else len(deb[0]) > 8
    assert sorted(mine[1]) == sorted(deb[1]), "instant commands differ"
    assert sorted(mine[2]) == sorted(deb[2]), "writable variables differ"
    assert mine[3] == deb[3], "types of the writable variables differ"
    assert mine[4] == deb[4], "enumerations differ"


def _set_reports(log: str) -> list[str]:
    return re.findall(r"SET_REPORT (\w+ 0x[0-9a-f]{2} : [0-9a-f ]+)", log)


#: instant commands and SETs per capture: each must send the same SET_REPORT bytes as NUT 2.8.0's
ACTIONS = {
    "CyberPower__CP1500PFCLCD__0764-0501": [
        ("INSTCMD", "beeper.disable"), ("INSTCMD", "load.off.delay"), ("INSTCMD", "test.battery.start.quick"),
        ("SET", "battery.charge.low", "15"), ("SET", "input.transfer.low", "85")],
    "APC__Smart-UPS_3000__051d-0003": [("INSTCMD", "shutdown.reboot"), ("SET", "battery.runtime.low", "200")],
    "APC__Back-UPS_500__051d-0002": [("INSTCMD", "test.panel.start")],
    "Eaton__3S_700__0463-ffff": [
        ("INSTCMD", "beeper.enable"), ("INSTCMD", "shutdown.return"), ("SET", "output.voltage.nominal", "220"),
        ("SET", "input.transfer.high", "270")],
}


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_commands_send_nut_bytes(name: str, tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    sent: dict[str, list[list[str]]] = {}
    for flavour in ("debian", "nutlite"):
        base = tmp_path / flavour
        env = start(base, usbsim_lib, name, flavour, {"pollinterval": "1"})
        sent[flavour] = []
        try:
            env.wait_ready()
            with env.connect() as c:
                assert c.request("USERNAME admin").startswith("OK")
                assert c.request("PASSWORD adminpw").startswith("OK")
                for action in ACTIONS[name]:
                    before = len(_set_reports(sim_log(base)))
                    if action[0] == "INSTCMD":
                        assert c.request(f"INSTCMD ups {action[1]}") == "OK"
                    else:
                        assert c.request(f"SET VAR ups {action[1]} {action[2]}") == "OK"
                    wait_for(lambda b=base, n=before: len(_set_reports(sim_log(b))) > n, 10,
                             f"{flavour}: SET_REPORT for {action}", env)
                    time.sleep(0.3)  # shutdown.return sends two
                    sent[flavour].append(_set_reports(sim_log(base))[before:])
                    if action[0] == "SET" and flavour == "nutlite":
                        # nutlite reads the value back at once; NUT 2.8.0 shows it at its next full poll
                        wait_for(lambda e=env, a=action: upsd_list(e, "ups").get(a[1]) == a[2], 10,
                                 f"{flavour}: {action[1]} = {action[2]}", env)
        finally:
            env.stop()
    assert sent["nutlite"] == sent["debian"]
    assert all(sent["nutlite"])


#: status changes the UPS sends (usbsim "event": the Feature report changes and the Input report is
#: queued on the interrupt endpoint) and the ups.status NUT 2.8.0 publishes for each (both drivers are
#: checked against it). Left out: APC's NeedReplacement/Overload bits, which NUT 2.8.0 shows only at
#: its next full poll (pollfreq) while nutlite shows them at once (an intended difference).
STATUS_EVENTS = {
    "APC__Smart-UPS_3000__051d-0003": [("07 : 07 0e 00", "OL DISCHRG"), ("07 : 07 0d 00", "OL CHRG"),
                                       ("07 : 07 1a 00", "OB DISCHRG LB"), ("07 : 07 14 00", "OL LB")],
    "CyberPower__CP1500PFCLCD__0764-0501": [("0b : 0b 05", "OL DISCHRG"), ("0b : 0b 03", "OL CHRG"),
                                            ("0b : 0b 0c", "OB DISCHRG LB"), ("0b : 0b 21", "OL LB")],
    "Eaton__3S_700__0463-ffff": [("01 : 01 05 00 00", "OL OFF"), ("01 : 01 27 00 00", "OL LB"),
                                 ("01 : 01 a1 00 00", "OL RB"), ("01 : 01 21 01 01", "OL LB OVER"),
                                 ("01 : 01 10 00 00", "OB OFF")],
}


@pytest.mark.parametrize("name", sorted(STATUS_EVENTS))
def test_status_events_as_nut(name: str, tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    from tests.nutenv import get_var

    envs = {f: start(tmp_path / f, usbsim_lib, name, f, {"pollinterval": "1"}) for f in ("debian", "nutlite")}
    try:
        for env in envs.values():
            env.wait_ready()
        for event, expected in STATUS_EVENTS[name]:
            for flavour in envs:
                with open(tmp_path / flavour / "control", "a") as f:
                    f.write(f"event {event}\n")
            for flavour, env in envs.items():
                wait_for(lambda e=env, x=expected: get_var(e, "ups") == f'VAR ups ups.status "{x}"', 8,
                         f"{flavour}: ups.status {expected!r} after event {event}", env)
    finally:
        for env in envs.values():
            env.stop()


def test_settings_published_as_nut(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """Settings show as driver.parameter.* / driver.flag.*, and offdelay/ondelay as ups.delay.*."""
    name = "CyberPower__CP1500PFCLCD__0764-0501"
    options = {"pollinterval": "1", "pollfreq": "10", "offdelay": "60", "ondelay": "120", "vendorid": "0764"}
    got = {}
    for flavour in ("debian", "nutlite"):
        env = start(tmp_path / flavour, usbsim_lib, name, flavour, options, flags=("pollonly",))
        try:
            env.wait_ready()
            got[flavour] = upsd_list(env, "ups")
        finally:
            env.stop()
    assert compare_vars(got["debian"], got["nutlite"], INTENDED) == []
    assert got["nutlite"]["ups.delay.shutdown"] == "60"


def test_onlinedischarge_as_nut(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """NUT 2.8.0's onlinedischarge flag: OL with DISCHRG is reported as on battery."""
    from tests.nutenv import get_var

    name = "APC__Smart-UPS_3000__051d-0003"
    envs = {f: start(tmp_path / f, usbsim_lib, name, f, {"pollinterval": "1"}, flags=("onlinedischarge",))
            for f in ("debian", "nutlite")}
    try:
        for flavour, env in envs.items():
            env.wait_ready()
            with open(tmp_path / flavour / "control", "a") as f:
                f.write("event 07 : 07 0e 00\n")  # ACPresent and Discharging
        for flavour, env in envs.items():
            wait_for(lambda e=env: get_var(e, "ups") == 'VAR ups ups.status "OB DISCHRG"', 8,
                     f"{flavour}: OB DISCHRG", env)
    finally:
        for env in envs.values():
            env.stop()


@pytest.mark.parametrize(("name", "options"), [("Tripp_Lite__UPS_proto3016__09ae-3016", {}),
                                               ("Minuteman__UPS__05dd-a0a0", {"productid": "a0a0"})])
def test_transfer_reason_as_nut(name: str, options: dict[str, str], tmp_path: Path,
                                usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """PowerConverter.PresentStatus.VoltageOutOfRange: input.transfer.reason while it is set, gone when
    it clears, in both drivers."""
    envs = {f: start(tmp_path / f, usbsim_lib, name, f, {"pollinterval": "1", "pollfreq": "2", **options},
                     zero=True) for f in ("debian", "nutlite")}
    try:
        for env in envs.values():
            env.wait_ready()
            assert "input.transfer.reason" not in upsd_list(env, "ups")
        for report, expected in (("22 01 00", "input voltage out of range"), ("22 00 00", None)):
            for flavour in envs:
                with open(tmp_path / flavour / "control", "a") as f:
                    f.write(f"set 22 : {report}\n")
            for flavour, env in envs.items():
                wait_for(lambda e=env, x=expected: upsd_list(e, "ups").get("input.transfer.reason") == x, 10,
                         f"{flavour}: input.transfer.reason {expected!r} after report {report}", env)
    finally:
        for env in envs.values():
            env.stop()
