"""Replay (``replay = <file>``): nutlite's usbhid-ups talks to the device recorded in a capture file
through nutlite.usb.replay, a pyusb backend, with no libusb and no USB device.

Oracle: the same capture served by usbsim (a fake libusb-1.0, ../shared/tools/usbsim) to nutlite's
driver, whose variables test_usbhid_side_by_side.py checks against Debian's NUT; and, for the nut-ddl
.dev dump, the variables NUT itself listed at the top of that dump.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nutlite.usb.replay import ReplayError, load_replay
from tests.nutenv import NutEnv, UpsSpec, compare_vars, upsd_list
from tests.test_usb_transport import CAPTURES, SHARED, usbsim_lib  # noqa: F401 - the session fixture
from tests.test_usbhid_side_by_side import EXAMPLES, need_nut, sim_env, start  # noqa: F401

CS500_DEV = SHARED / "data" / "ddl" / "APC" / "APC__Back-UPS_CS_500__usbhid-ups__2.8.0__01.dev"

#: differences between a replayed device and the same device under usbsim, with their reasons:
#: driver.parameter.replay is the setting itself; driver.version.usb names the libusb library the
#: driver finds on the system (usbsim's under usbsim, the system's or none under replay)
REPLAY_ONLY = ("driver.parameter.replay", "driver.version.usb")

REPLAYED = [
    "APC__Back-UPS_500__051d-0002",
    "APC__Smart-UPS_3000__051d-0003",
    "CyberPower__CP1500PFCLCD__0764-0501",
    "Eaton__3S_700__0463-ffff",
    "APC__Back-UPS_CS_500__051d-0002",
]


def capture_file(name: str) -> Path:
    path = CAPTURES / f"{name}.capture"
    return path if path.exists() else EXAMPLES / f"{name}.capture"


def replay_env(base: Path, replay: Path | str, **options: str) -> NutEnv:
    """nutlite's usbhid-ups with ``replay`` and nutlite's upsd; no usbsim anywhere in the environment."""
    spec = UpsSpec("ups", driver="usbhid-ups", port="auto",
                   options={"pollinterval": "1", "replay": str(replay), **options})
    return NutEnv(base, [spec], driver_flavour="nutlite", upsd_flavour="nutlite")


def upsc(env: NutEnv) -> dict[str, str]:
    """``upsc ups@127.0.0.1:<port>`` (nutlite's upsc) as {name: value}."""
    r = subprocess.run([sys.executable, "-m", "nutlite", "upsc", f"ups@127.0.0.1:{env.port}"],
                       capture_output=True, text=True, timeout=30, env=env.environ())
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        name, _, value = line.partition(": ")
        out[name] = value
    return out


def usbsim_vars(base: Path, lib: Path, name: str, overlay: Path | None = None) -> dict[str, str]:
    if overlay is None:
        env = start(base, lib, name, "nutlite", {"pollinterval": "1"})
    else:  # the capture, its own overlay and ``overlay``, as one usbsim device
        base.mkdir(parents=True, exist_ok=True)
        (base / "control").touch()
        sim = sim_env(lib, base, name)
        sim["USBSIM_DEVICE"] += f":{overlay}"
        env = NutEnv(base, [UpsSpec("ups", driver="usbhid-ups", port="auto", options={"pollinterval": "1"},
                                    env=sim)], driver_flavour="nutlite", upsd_flavour="nutlite")
        env.start(wait=False)
    try:
        env.wait_ready()
        return upsd_list(env, "ups")
    finally:
        env.stop()


def replayed_vars(base: Path, replay: Path | str, **options: str) -> dict[str, str]:
    env = replay_env(base, replay, **options)
    env.start()
    try:
        env.wait_ready()
        assert "Traceback" not in env.driver_log("ups")
        return upsc(env)
    finally:
        env.stop()


@pytest.mark.parametrize("name", REPLAYED)
def test_replay_equals_usbsim(name: str, tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    want = usbsim_vars(tmp_path / "usbsim", usbsim_lib, name)
    got = replayed_vars(tmp_path / "replay", capture_file(name))
    assert got["driver.parameter.replay"] == str(capture_file(name))
    assert compare_vars(want, got, REPLAY_ONLY) == []
    assert len(got) > 15


@pytest.mark.parametrize("name", ["APC__Back-UPS_500__051d-0002", "Eaton__3S_700__0463-ffff"])
def test_unrecorded_zero_replays_as_usbsim(name: str, tmp_path: Path, usbsim_lib: Path,  # noqa: F811
                                           need_nut: None) -> None:  # noqa: F811
    """With 'unrecorded zero' every report of the descriptor reads (as zeros where the capture has
    none), which puts every path through the subdriver table: replay and usbsim still agree."""
    overlay = tmp_path / "zero.usbsim"
    overlay.write_text("unrecorded zero\n")
    want = usbsim_vars(tmp_path / "usbsim", usbsim_lib, name, overlay)
    got = replayed_vars(tmp_path / "replay", f"{capture_file(name)}:{overlay}")
    assert compare_vars(want, got, REPLAY_ONLY) == []
    assert len(got) > len(usbsim_vars(tmp_path / "plain", usbsim_lib, name))


def test_dev_dump_replays_as_nut_listed_it(tmp_path: Path, need_nut: None) -> None:  # noqa: F811
    """The nut-ddl dump of a Back-UPS CS 500 replays to the variables NUT published for it (at the top
    of the dump), but for the driver's versions (the dump's NUT is a Windows build newer than 2.8.0, whose
    APC subdriver is 0.100 where 2.8.0's is 0.98) and driver.state (newer than NUT 2.8.0)."""
    if not CS500_DEV.exists():
        pytest.skip(f"{CS500_DEV} is not there")
    want = {}
    for line in CS500_DEV.read_text().splitlines():
        if line and not line.startswith("#") and ": " in line:
            k, _, v = line.partition(": ")
            want[k] = v
    got = replayed_vars(tmp_path, CS500_DEV, pollinterval=want["driver.parameter.pollinterval"])
    skip = ("driver.version", "driver.version.data", "driver.version.internal", "driver.state",
            "driver.parameter.synchronous", *REPLAY_ONLY)
    assert compare_vars(want, got, skip) == []
    assert got["ups.model"] == "Back-UPS 500" and got["ups.serial"] == "AB0427******"


def _run_driver(base: Path, replay: str) -> subprocess.CompletedProcess[str]:
    env = replay_env(base, replay)
    env.write_configs()
    return subprocess.run(env.driver_argv("ups"),
                          capture_output=True, text=True, timeout=30, env=env.environ())


@pytest.mark.parametrize(("content", "line", "words"), [
    ("descriptor: 05 84 zz\n", 1, "descriptor"),
    ("# c\ndescriptor: 05 84 09 04 a1 01 c0\nreport get 01 01 02\n", 3, "report get|buf|int"),
    ("descriptor: 05 84 09 04 a1 01 c0\nfrobnicate 3\n", 2, "unknown line"),
    ("descriptor: 05 84 09 04 a1 01 c0\nusb 051d\n", 2, "usb vvvv:pppp"),
])
def test_malformed_file_is_a_clear_error(content: str, line: int, words: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.capture"
    bad.write_text(content)
    with pytest.raises(ReplayError) as exc:
        load_replay(str(bad))
    assert f"{bad} line {line}" in str(exc.value) and words in str(exc.value)
    r = _run_driver(tmp_path / "drv", str(bad))
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert f"{bad} line {line}" in err and "Traceback" not in err


def test_missing_and_descriptorless_files(tmp_path: Path) -> None:
    r = _run_driver(tmp_path / "drv", str(tmp_path / "nope.capture"))
    assert r.returncode != 0 and "nope.capture: cannot be read" in r.stderr and "Traceback" not in r.stderr
    dev = tmp_path / "x.dev"
    dev.write_text("battery.charge: 100\n")
    with pytest.raises(ReplayError, match="no HID report descriptor"):
        load_replay(str(dev))


def test_unrecorded_report_stalls(tmp_path: Path) -> None:
    """A report the capture lacks stalls (the driver drops its variables), as on a device lacking it;
    an overlay 'unrecorded zero' makes it read as zeros."""
    from nutlite.hid import ReportType
    from nutlite.usb import Stalled, UsbMatcher
    from nutlite.usb.transport import backend_for, open_device

    cap = capture_file("APC__Back-UPS_500__051d-0002")
    with open_device(UsbMatcher.from_config({}, "t"), backend_for(str(cap))) as dev:
        assert dev.get_report(ReportType.FEATURE, 0x0C, 6)[0] == 0x0C
        with pytest.raises(Stalled):
            dev.get_report(ReportType.FEATURE, 0x7E, 3)
        dev.set_report(ReportType.FEATURE, 0x7E, b"\x7e\x05\x00")
        assert dev.get_report(ReportType.FEATURE, 0x7E, 3) == b"\x7e\x05\x00"
    overlay = tmp_path / "zero.usbsim"
    overlay.write_text("unrecorded zero\n")
    with open_device(UsbMatcher.from_config({}, "t"), backend_for(f"{cap}:{overlay}")) as dev:
        assert dev.get_report(ReportType.FEATURE, 0x7E, 3) == b"\x7e\x00\x00"


def test_replay_given_with_x(tmp_path: Path) -> None:
    """-x replay=<file> on the command line works as the ups.conf setting."""
    env = NutEnv(tmp_path, [UpsSpec("ups", driver="usbhid-ups", port="auto")], driver_flavour="nutlite")
    env.write_configs()
    bad = tmp_path / "bad.capture"
    bad.write_text("descriptor: 05 84 09 04 a1 01 c0\nreport get 01 : 01 0g\n")
    r = subprocess.run([*env.driver_argv("ups"), "-x", f"replay={bad}"], capture_output=True, text=True,
                       timeout=30, env=env.environ())
    assert r.returncode != 0 and f"{bad} line 2: report" in r.stderr and "Traceback" not in r.stderr
    good = capture_file("Eaton__3S_700__0463-ffff")
    r = subprocess.run([*env.driver_argv("ups"), "-x", f"replay={good}", "-k"], capture_output=True, text=True,
                       timeout=30, env=env.environ())
    assert r.returncode == 0, r.stderr
    assert "replaying the USB device 0463:ffff" in r.stderr and "UPS told to shut down (shutdown.return)" in r.stderr
