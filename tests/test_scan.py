"""``nutlite scan`` against Debian's ``nut-scanner -U``, both reading the same usbsim device.

usbsim (a fake libusb-1.0, ../shared/tools/usbsim) reaches nutlite through LD_LIBRARY_PATH. Debian's
libnutscan loads libusb by its full path, ignoring LD_LIBRARY_PATH, so nut-scanner runs in a private
mount namespace (``unshare -m``, root only) where usbsim's library is bind-mounted over the system's
libusb-1.0: nothing outside that one process sees it.

Intended differences, each with its reason:
* a Q1-over-USB bridge (nutdrv_qx for nut-scanner) is listed by nutlite only once nutlite's Q1-over-USB
  transport (nutlite.drivers.transports.q1usb) is in the build: nutlite scan lists what a nutlite
  driver drives;
* a device only a driver nutlite lacks can drive (Tripp Lite 09ae:0001: tripplite_usb) is not listed by
  nutlite, which names that driver on stderr instead;
* with no device, nut-scanner prints nothing; nutlite says so on stderr (both exit 0).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nutenv import REPO_ROOT
from tests.test_usb_transport import CAPTURES, _unavailable, usbsim_lib  # noqa: F401 - the session fixture
from tests.test_usbhid_side_by_side import device_files

DEVICES = [
    "APC__Back-UPS_CS_500__051d-0002",  # usbsim's example, with strings (product, serial, vendor)
    "APC__Back-UPS_500__051d-0002",
    "APC__Smart-UPS_3000__051d-0003",
    "CyberPower__CP1500PFCLCD__0764-0501",
    "Eaton__3S_700__0463-ffff",
    "Tripp_Lite__UPS_proto3016__09ae-3016",
    "Liebert__GXT4__10af-0000",  # neither lists it: usbhid-ups takes it only with productid set
    "Megatec_Q1_cypress__0665-5161",
]
Q1_IN_BUILD = importlib.util.find_spec("nutlite.drivers.transports.q1usb") is not None


def _system_libusb() -> str | None:
    for pattern in ("/usr/lib/*-linux-gnu/libusb-1.0.so.0", "/lib/*-linux-gnu/libusb-1.0.so.0",
                    "/usr/lib/libusb-1.0.so.0"):
        for p in glob.glob(pattern):
            return os.path.realpath(p)
    return None


@pytest.fixture(scope="module")
def nut_scanner() -> str:
    exe = shutil.which("nut-scanner")
    if exe is None:
        _unavailable("Debian's nut-scanner is not installed (apt-get install nut-scanner)")
    if os.geteuid() != 0 or shutil.which("unshare") is None or _system_libusb() is None:
        _unavailable("nut-scanner can be pointed at usbsim only as root, with unshare and a system libusb-1.0")
    return str(exe)


def run_nut_scanner(exe: str, lib: Path, device: str, *args: str) -> subprocess.CompletedProcess[str]:
    target = _system_libusb()
    script = f'mount --bind "{lib}/libusb-1.0.so.0" "{target}" && exec "{exe}" "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "USBSIM_DEVICE": device})


def run_scan(lib: Path, device: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", "scan", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "LD_LIBRARY_PATH": str(lib),
                                           "USBSIM_DEVICE": device})


@pytest.mark.parametrize("name", DEVICES)
@pytest.mark.parametrize("fmt", ["-N", "-P"])
def test_section_equals_nut_scanner(name: str, fmt: str, usbsim_lib: Path, nut_scanner: str) -> None:  # noqa: F811
    device = device_files(name)
    want = run_nut_scanner(nut_scanner, usbsim_lib, device, "-U", fmt)
    got = run_scan(usbsim_lib, device, "-U", fmt)
    assert want.returncode == 0 and got.returncode == 0, (want.stderr, got.stderr)
    assert "Traceback" not in got.stderr
    if "0665-5161" in name and not Q1_IN_BUILD:
        assert 'driver = "nutdrv_qx"' in want.stdout or 'driver="nutdrv_qx"' in want.stdout
        assert got.stdout == ""
        return
    assert got.stdout == want.stdout
    if "Liebert" not in name:
        assert got.stdout  # a section came out


def test_quiet_and_scanning_line(usbsim_lib: Path, nut_scanner: str) -> None:  # noqa: F811
    device = device_files(DEVICES[0])
    for args in (("-U",), ("-U", "-q")):
        want = run_nut_scanner(nut_scanner, usbsim_lib, device, *args)
        got = run_scan(usbsim_lib, device, *args)
        assert ("Scanning USB bus." in got.stderr) == ("Scanning USB bus." in want.stderr)


def test_no_device(usbsim_lib: Path, nut_scanner: str) -> None:  # noqa: F811
    want = run_nut_scanner(nut_scanner, usbsim_lib, "", "-U", "-q")
    got = run_scan(usbsim_lib, "", "-U", "-q")
    assert want.stdout == "" and got.stdout == ""
    assert got.returncode == want.returncode == 0
    assert "no USB UPS found" in got.stderr and "Traceback" not in got.stderr


def test_bad_option_and_help() -> None:
    r = subprocess.run([sys.executable, "-m", "nutlite", "scan", "-Z"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert r.returncode == 1 and "invalid option -- 'Z'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "nutlite", "scan", "-h"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert r.returncode == 0 and "usage: nutlite scan" in r.stdout


#: ids both drivers could take (Phoenixtec 06da, Q1 bridges) and some only one takes: the driver
#: nut-scanner names for each is the one nutlite names
CONTESTED_IDS = ["06da:0002", "06da:0003", "06da:0601", "06da:ffff", "0001:0000", "05b8:0000", "0f03:0001",
                 "14f0:00c9", "ffff:0000", "10af:0000", "0764:0501", "09ae:0001"]


@pytest.mark.parametrize("ids", CONTESTED_IDS)
def test_driver_chosen_as_nut_scanner(ids: str, tmp_path: Path, usbsim_lib: Path, nut_scanner: str) -> None:  # noqa: F811
    overlay = tmp_path / "ids.usbsim"
    overlay.write_text(f"usb {ids}\n")
    device = f"{device_files('Megatec_Q1_cypress__0665-5161')}:{overlay}"
    want = run_nut_scanner(nut_scanner, usbsim_lib, device, "-U", "-q", "-P")
    got = run_scan(usbsim_lib, device, "-U", "-q", "-P")
    if not Q1_IN_BUILD and "nutdrv_qx" in want.stdout:
        assert got.stdout == ""
        return
    if 'driver="tripplite_usb"' in want.stdout:  # a NUT driver nutlite does not have: said, not listed
        assert got.stdout == "" and "use driver = tripplite_usb" in got.stderr and "not listed" in got.stderr
        return
    if ids == "ffff:0000":
        # Intended difference: NUT's nutdrv_qx drives this bridge with its ablerex transport, which
        # nutlite's nutdrv_qx does not have; nutlite's blazer_usb drives it as krauler (as NUT's
        # blazer_usb does), so that is the section that works.
        assert got.stdout == want.stdout.replace('driver="nutdrv_qx"', 'driver="blazer_usb"')
        return
    assert got.stdout == want.stdout
