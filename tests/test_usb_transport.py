"""The pyusb transport (nutlite.usb.transport) against usbsim, a fake libusb-1.0 serving one emulated
UPS from a capture file (../shared/tools/usbsim).

Each scenario runs in its own Python process with usbsim first on LD_LIBRARY_PATH, so pyusb's own
library lookup (what a driver uses) loads it; usbsim keeps its device state per process. usbsim is
built once per session in a pytest tmp folder; without gcc or the usbsim sources the tests are
skipped, or fail with NUTLITE_REQUIRE_REAL_NUT=1.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nutlite.hid import ReportType, is_power_device, parse_descriptor
from nutlite.usb.errors import (
    DeviceBusy,
    Disconnected,
    PermissionDenied,
    Stalled,
    UsbError,
    UsbTimeout,
    permission_message,
    udev_rule_line,
)
from nutlite.usb.match import UsbDeviceInfo

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
USBSIM_SRC = SHARED / "tools" / "usbsim"
CAPTURES = SHARED / "data" / "hid-captures"
BACKUPS = CAPTURES / "APC__Back-UPS_500__051d-0002.capture"

# the strings the Back-UPS 500 capture lacks (as the usbsim example of the same family has them)
STRINGS_OVERLAY = "".join(ln + "\n" for ln in [
    "string 1 : Back-UPS 500 FW: 6.5.I USB FW: c1 ",  # APC's product string ends in a blank
    "string 2 : AB0427******",
    "string 3 : American Power Conversion",
    "imanufacturer 3", "iproduct 1", "iserial 2",
])


def _unavailable(msg: str) -> None:
    if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
        pytest.fail(f"{msg} (NUTLITE_REQUIRE_REAL_NUT=1: the USB tests must run; apt-get install gcc libc6-dev)",
                    pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def usbsim_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """usbsim built out of tree (shared/ is read-only in CI); the folder holding libusb-1.0.so.0."""
    if not (USBSIM_SRC / "usbsim.c").exists() or not BACKUPS.exists():
        _unavailable(f"usbsim or the HID captures are not there ({USBSIM_SRC}, {CAPTURES})")
    if shutil.which("gcc") is None or shutil.which("make") is None:
        _unavailable("gcc or make is not installed: usbsim cannot be built")
    build = tmp_path_factory.mktemp("usbsim")
    r = subprocess.run(["make", "-s", "-C", str(USBSIM_SRC), f"BUILD={build}"], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0 or not (build / "libusb-1.0.so.0").exists():
        _unavailable(f"building usbsim failed: {r.stderr.strip()[-500:]}")
    return build


PRELUDE = """\
import json, logging, os, sys, time
records = []
class _Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("nutlite.usb").addHandler(_Keep())
logging.getLogger("nutlite.usb").setLevel(logging.DEBUG)
def control(line):
    with open(os.environ["USBSIM_CONTROL"], "a") as f:
        f.write(line + "\\n")
    time.sleep(0.05)  # usbsim looks at the control file at most every 5 ms
def simlog():
    with open(os.environ["USBSIM_LOG"]) as f:
        return f.read()
from nutlite.hid import ReportType
from nutlite.usb import *
from nutlite.usb.transport import list_devices, open_device
out = {}
"""
POSTLUDE = """
out["log"] = records
out["shim"] = any(os.environ["LD_LIBRARY_PATH"] in ln for ln in open("/proc/self/maps") if "libusb-1.0" in ln)
print(json.dumps(out))
"""


class Sim:
    """Runs scenarios against one emulated device (files joined as USBSIM_DEVICE)."""

    def __init__(self, lib: Path, work: Path, devices: list[Path], lock: bool = False) -> None:
        self.work = work
        self.control = work / "control"
        self.log = work / "usbsim.log"
        self.control.write_text("")
        self.env = dict(os.environ, LD_LIBRARY_PATH=str(lib), USBSIM_DEVICE=":".join(str(d) for d in devices),
                        USBSIM_CONTROL=str(self.control), USBSIM_LOG=str(self.log), PYTHONPATH=str(ROOT))
        if lock:
            self.env["USBSIM_LOCK"] = str(work / "usbsim.lock")

    def code(self, body: str) -> str:
        return PRELUDE + textwrap.dedent(body) + POSTLUDE

    def run(self, body: str, timeout: float = 60) -> dict:
        r = subprocess.run([sys.executable, "-c", self.code(body)], env=self.env, cwd=self.work,
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"scenario failed:\n{r.stdout}\n{r.stderr}"
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["shim"], "pyusb did not load usbsim's libusb-1.0.so.0"
        return out

    def start(self, body: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", self.code(body)], env=self.env, cwd=self.work,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def capture_lines(path: Path) -> tuple[bytes, dict[int, bytes]]:
    """A capture's descriptor bytes and its Feature reports (``report get|buf`` lines) by id."""
    descriptor = b""
    reports: dict[int, bytes] = {}
    for ln in path.read_text().splitlines():
        if ln.startswith("descriptor:"):
            descriptor = bytes.fromhex(ln.split(":", 1)[1])
        elif ln.startswith(("report get ", "report buf ")):
            head, data = ln.split(":", 1)
            reports[int(head.split()[2], 16)] = bytes.fromhex(data)
    return descriptor, reports


@pytest.fixture
def sim(usbsim_lib: Path, tmp_path: Path) -> Sim:
    overlay = tmp_path / "strings.usbsim"
    overlay.write_text(STRINGS_OVERLAY)
    return Sim(usbsim_lib, tmp_path, [BACKUPS, overlay])


def test_find_by_ids_descriptor_reports_and_interrupt(sim: Sim):
    descriptor, reports = capture_lines(BACKUPS)
    out = sim.run(f"""
        dev = open_device(UsbMatcher.from_config({{"port": "auto", "vendorid": "051d", "productid": "0002"}}))
        out["info"] = [dev.info.ids, dev.info.vendor, dev.info.product, dev.info.serial, dev.info.address]
        out["ep_in"] = dev.ep_in
        out["descriptor"] = dev.report_descriptor().hex()
        out["reports"] = {{rid: dev.get_report(ReportType.FEATURE, rid, 64).hex() for rid in {sorted(reports)!r}}}
        out["set"] = dev.set_report(ReportType.FEATURE, 0x35, bytes([0x35, 0x01]))
        out["get_after_set"] = dev.get_report(ReportType.FEATURE, 0x35, 64).hex()
        out["idle"] = dev.read_interrupt(200)
        control("int 13 : 13 00")
        out["int"] = dev.read_interrupt(2000).hex()
        out["string4"] = dev.get_string(3)
        dev.close()
        dev.close()
        out["simlog"] = simlog()
    """)
    assert out["info"] == ["051d:0002", "American Power Conversion", "Back-UPS 500 FW: 6.5.I USB FW: c1 ",
                           "AB0427******", 2]
    assert out["ep_in"] == 0x81
    got = bytes.fromhex(out["descriptor"])
    assert got == descriptor and len(got) == 374
    parsed = parse_descriptor(got)
    assert is_power_device(parsed) and 0x0C in parsed.report_ids(ReportType.FEATURE)
    assert {int(k): bytes.fromhex(v) for k, v in out["reports"].items()} == reports
    assert out["set"] == 2
    assert "SET_REPORT feature 0x35 : 35 01" in out["simlog"]
    assert out["get_after_set"] == "3501"
    assert out["idle"] is None
    assert out["int"] == "1300"
    assert out["string4"] == "American Power Conversion"
    assert "claim interface 0" in out["simlog"] and out["simlog"].rstrip().endswith("close")


def test_find_by_product_regex(sim: Sim):
    out = sim.run("""
        for value in ("back-ups 500 fw: .*", "Back-UPS 500 FW: 6.5.I USB FW: c1", ".*(Smart|Back)-?UPS.*"):
            with open_device(UsbMatcher.from_config({"product": value})) as dev:
                out[value] = dev.info.ids
        try:
            open_device(UsbMatcher.from_config({"product": "Smart-UPS.*"}))
        except NoMatchingDevice as exc:
            out["none"] = str(exc)
    """)
    assert out["back-ups 500 fw: .*"] == out["Back-UPS 500 FW: 6.5.I USB FW: c1"] == "051d:0002"
    assert out[".*(Smart|Back)-?UPS.*"] == "051d:0002"
    assert out["none"].startswith("no USB device matches product='Smart-UPS.*' (found: 051d:0002 ")
    assert "product 'Back-UPS 500 FW: 6.5.I USB FW: c1' does not match 'Smart-UPS.*'" in out["none"]


def test_list_devices_skips_the_root_hub_and_accept_filters(sim: Sim):
    out = sim.run("""
        out["devs"] = [[d.ids, d.bus, d.address, list(d.port_path), d.product] for d in list_devices()]
        # the driver's own test (e.g. its subdrivers' vendor ids) comes on top of the settings
        try:
            open_device(UsbMatcher(), accept=lambda info: info.vendor_id == 0x0463)
        except NoMatchingDevice as exc:
            out["refused"] = str(exc)
    """)
    assert out["devs"] == [["051d:0002", 1, 2, [1], "Back-UPS 500 FW: 6.5.I USB FW: c1 "]]
    assert out["refused"] == ("no USB device is one this driver supports (found: 051d:0002 at bus 001 device 002 (port 1-1): "
                              "not a device this driver supports). Check the cable and the settings; lsusb lists "
                              "the ids, lsusb -v the strings.")


def test_unplug_disconnects_and_replug_is_found_again_at_a_new_address(sim: Sim):
    out = sim.run("""
        m = UsbMatcher.from_config({"vendorid": "051d", "device": "002"})
        policy = ReconnectPolicy(m, name="ups")
        dev = open_device(policy.matcher)
        t = policy.connected(0.0, dev.info)
        out["first"] = [t.action, t.message]
        control("unplug")
        try:
            dev.get_report(ReportType.FEATURE, 0x0c, 64)
        except Disconnected as exc:
            out["gone"] = str(exc)
            t = policy.lost(1.0, str(exc))
            out["lost"] = [t.action, t.message]
        try:
            dev.read_interrupt(500)
        except Disconnected as exc:
            out["gone_int"] = str(exc)
        dev.close()
        try:
            open_device(policy.matcher)
        except NoMatchingDevice as exc:
            out["absent"] = str(exc)
            policy.attempt_failed(2.0, str(exc))
        control("replug")
        try:
            open_device(m)
        except NoMatchingDevice as exc:
            out["configured_matcher"] = str(exc)
        dev = open_device(policy.matcher)
        t = policy.connected(4.0, dev.info)
        out["back"] = [t.action, t.message, dev.info.address]
        out["report"] = dev.get_report(ReportType.FEATURE, 0x0c, 64).hex()
        dev.close()
    """)
    assert out["first"][0] == "ok"
    assert out["gone"].startswith('USB device 051d:0002 "American Power Conversion"')
    assert "GET_REPORT Feature 0x0c: the device is gone (unplugged, re-enumerated or reset)" in out["gone"]
    assert out["lost"][0] == "stale" and "data is stale" in out["lost"][1]
    assert "reading interrupt endpoint 0x81: the device is gone" in out["gone_int"]
    assert out["absent"].startswith("no USB device matches vendorid=051d, productid=0002, vendor='American")
    # device=002 was the old address: the configured settings alone no longer find it ...
    assert "device '003' does not match '002'" in out["configured_matcher"]
    # ... the policy's "same device" does
    assert out["back"][0] == "ok" and out["back"][2] == 3
    assert "is back after 3 s, 1 attempt; data is fresh again" in out["back"][1]
    assert out["report"] == "0c640000140a"


def test_a_second_opener_gets_busy(usbsim_lib: Path, tmp_path: Path):
    sim = Sim(usbsim_lib, tmp_path, [BACKUPS], lock=True)
    holder = sim.start("""
        dev = open_device(UsbMatcher.from_config({"vendorid": "051d"}))
        print("holding", flush=True)
        sys.stdin.readline()
        dev.close()
    """)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        out = sim.run("""
            try:
                open_device(UsbMatcher.from_config({"vendorid": "051d"}))
            except DeviceBusy as exc:
                out["busy"] = str(exc)
        """)
    finally:
        holder.communicate("\n", timeout=30)
    msg = out["busy"]
    assert msg.startswith("cannot use USB device 051d:0002 at bus 001 device 002 (port 1-1): claiming interface 0: "
                          "the device is busy: another driver, or the kernel, holds it.")
    assert "nut-driver@" in msg and "upsdrvctl" in msg and "Traceback" not in msg
    # once the holder has let go, it can be opened
    out = sim.run("""
        with open_device(UsbMatcher.from_config({"vendorid": "051d"})) as dev:
            out["ok"] = dev.info.ids
    """)
    assert out["ok"] == "051d:0002"


def test_kernel_driver_is_detached_and_given_back(usbsim_lib: Path, tmp_path: Path):
    overlay = tmp_path / "kernel.usbsim"
    overlay.write_text("kerneldriver yes\n")
    sim = Sim(usbsim_lib, tmp_path, [BACKUPS, overlay])
    out = sim.run("""
        for i in range(2):
            dev = open_device(UsbMatcher.from_config({"vendorid": "051d"}))
            out[f"rd{i}"] = len(dev.report_descriptor())
            dev.close()
        out["simlog"] = simlog()
    """)
    assert out["rd0"] == out["rd1"] == 374
    # detached at each open: so close gave the interface back to the kernel driver in between
    assert out["simlog"].count("kernel driver detached") == 2
    assert any("detached the kernel driver from interface 0" in r for r in out["log"])
    assert any("kernel driver re-attached to interface 0" in r for r in out["log"])


def test_unreadable_strings_still_match_on_ids(usbsim_lib: Path, tmp_path: Path):
    overlay = tmp_path / "nostrings.usbsim"
    overlay.write_text("iproduct 7\nimanufacturer 6\n")  # string descriptors the device does not have
    sim = Sim(usbsim_lib, tmp_path, [BACKUPS, overlay])
    out = sim.run("""
        with open_device(UsbMatcher.from_config({"vendorid": "051d", "productid": "0002"})) as dev:
            out["info"] = [dev.info.product, dev.info.strings_error]
        try:
            open_device(UsbMatcher.from_config({"vendorid": "051d", "product": "Back-UPS.*"}))
        except NoMatchingDevice as exc:
            out["by_product"] = str(exc)
    """)
    assert out["info"][0] is None and out["info"][1].startswith("string 6 could not be read")
    assert any("string 6 could not be read" in r and "it can still match on its ids" in r for r in out["log"])
    assert "product no string (string 6 could not be read" in out["by_product"]


def test_stalled_report_and_thread_confinement(sim: Sim):
    out = sim.run("""
        import threading
        dev = open_device(UsbMatcher.from_config({"vendorid": "051d"}))
        try:
            dev.get_report(ReportType.FEATURE, 0x99, 64)
        except Stalled as exc:
            out["stall"] = str(exc)
        out["still_works"] = dev.get_report(ReportType.FEATURE, 0x01, 64).hex()
        errors = []
        def other():
            try:
                dev.get_report(ReportType.FEATURE, 0x01, 64)
            except RuntimeError as exc:
                errors.append(str(exc))
        th = threading.Thread(target=other)
        th.start()
        th.join()
        out["thread"] = errors
        dev.close()
        try:
            dev.get_report(ReportType.FEATURE, 0x01, 64)
        except UsbError as exc:
            out["closed"] = str(exc)
    """)
    assert out["stall"] == "USB device 051d:0002: GET_REPORT Feature 0x99: the device refused the request (STALL)"
    assert out["still_works"] == "0101"
    assert out["thread"] == ["a UsbHidDevice is used from the thread that opened it only"]
    assert out["closed"] == "USB device 051d:0002 is closed"


def test_importing_nutlite_usb_does_not_load_pyusb():
    code = "import sys, nutlite.usb, nutlite.usb.transport; print('usb.core' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


# --------------------------------------------------------------------------------------------------
# error mapping and the permission message (usbsim cannot refuse access: real pyusb exceptions and a
# real file whose owner and mode the test sets)

INFO = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=2, port_path=(1,), product="Back-UPS 500")


def usb_error(code: int, errno_: int | None, text: str) -> Exception:
    import usb.core

    if code == -7:
        return usb.core.USBTimeoutError(text, code, errno_)
    return usb.core.USBError(text, code, errno_)


@pytest.mark.parametrize("code,errno_,cls", [
    (-4, 19, Disconnected), (-3, 13, PermissionDenied), (-6, 16, DeviceBusy), (-9, 32, Stalled),
    (-7, 110, UsbTimeout), (-1, 5, UsbError),
])
def test_libusb_errors_map_to_one_exception_family(code, errno_, cls):
    from nutlite.usb.transport import map_error

    err = map_error(usb_error(code, errno_, "libusb says so"), INFO, "GET_REPORT Feature 0x0c", 5000)
    assert type(err) is cls and isinstance(err, UsbError)
    if cls is UsbTimeout:
        assert str(err) == "USB device 051d:0002: GET_REPORT Feature 0x0c: no answer within 5000 ms"
    if cls is UsbError:
        assert str(err) == "USB device 051d:0002: GET_REPORT Feature 0x0c: libusb says so"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    p = tmp_path / "002"
    p.write_text("")
    os.chmod(p, 0o640)
    return p


def test_permission_message_names_node_owner_mode_and_the_missing_rule(node: Path, tmp_path: Path):
    if os.geteuid() == 0:
        try:
            nut = pwd.getpwnam("nut")
            os.chown(node, nut.pw_uid, nut.pw_gid)
            owner = f"user nut (UID {nut.pw_uid})"
        except KeyError:
            owner = "user root (UID 0)"
    else:
        owner = f"(UID {os.geteuid()})"
    rules = tmp_path / "rules.d"
    rules.mkdir()
    msg = permission_message(INFO, "opening the device", node=str(node), rule_dirs=[rules])
    lines = msg.splitlines()
    assert lines[0] == 'cannot use USB device 051d:0002 "Back-UPS 500" at bus 001 device 002 (port 1-1): ' \
                       "opening the device: permission denied"
    assert lines[1].startswith("This program is currently running as ")
    assert lines[2].startswith(f"{node} is owned by ") and owner in lines[2] and lines[2].endswith("mode 0640")
    assert "No udev rule gives 051d:0002" in lines[3]
    assert 'ATTR{idVendor}=="051d", ATTR{idProduct}=="0002", MODE="664", GROUP="' in lines[3]
    assert "udevadm trigger --subsystem-match=usb --action=change" in lines[3]
    assert lines[4].startswith("Or set 'user = ...' in ups.conf")


def test_permission_message_when_the_rule_exists_but_was_not_applied(node: Path, tmp_path: Path):
    rules = tmp_path / "rules.d"
    rules.mkdir()
    (rules / "62-nut-usbups.rules").write_text(
        '# comment ATTR{idVendor}=="dead"\n' + udev_rule_line(INFO, "nut") + "\n")
    msg = permission_message(INFO, "opening the device", node=str(node), rule_dirs=[rules])
    assert f"{rules / '62-nut-usbups.rules'}: a udev rule gives 051d:0002 a group and mode, but udev has not " \
           "applied it" in msg
    assert "Unplug and plug back the USB cable" in msg


def test_permission_error_through_map_error_uses_the_device_node():
    from nutlite.usb.transport import map_error

    err = map_error(usb_error(-3, 13, "Access denied (insufficient permissions)"), INFO, "opening the device")
    assert isinstance(err, PermissionDenied)
    assert "/dev/bus/usb/001/002" in str(err)


# --------------------------------------------------------------------------------------------------
# the matching rules side by side with Debian's NUT 2.8.0 usbhid-ups on the same emulated device

AGREED_CASES = [
    ("product", "back-ups 500 fw: .*"),                 # case-insensitive
    ("product", "Back-UPS 500 FW: 6.5.I USB FW: c1"),   # the device's trailing blank is ignored
    ("product", "Back-UPS"),                            # the whole string, not a part
    ("product", ".*(Smart|Back)-?UPS.*"),
    ("product", " Back-UPS 500 FW: 6.5.I USB FW: c1 "),  # blanks in the setting are the regex's own
    ("vendor", "AMERICAN POWER CONVERSION"),
    ("vendor", "American"),
    ("serial", r"ab0427\*+"),
    ("serial", "AB0427"),
    ("vendorid", "051D"),
    ("vendorid", "051d*"),
    ("vendorid", "05.*"),
    ("vendorid", "0463"),
    ("productid", "000[0-9]"),
    ("productid", "0003"),
    ("bus", "001"),
    ("bus", "00[2-3]"),
]


@pytest.mark.interop
def test_matching_agrees_with_nut_usbhid_ups(sim: Sim, tmp_path: Path):
    usbhid = Path("/lib/nut/usbhid-ups")
    if not usbhid.exists() or os.geteuid() != 0:
        _unavailable("Debian's /lib/nut/usbhid-ups is not installed, or not running as root")

    def nut_finds(case: tuple[int, tuple[str, str]]) -> tuple[str, bool]:
        n, (setting, value) = case
        state = tmp_path / f"state{n}"   # one each: the runs overlap (a match waits one poll, 2 s)
        state.mkdir()
        r = subprocess.run([str(usbhid), "-s", "t", "-x", "port=auto", "-x", f"{setting}={value}", "-u", "root",
                            "-d", "1"], env=dict(sim.env, NUT_STATEPATH=str(state)), cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        return f"{setting}={value}", "ups.model: Back-UPS 500" in r.stdout

    with ThreadPoolExecutor(max_workers=6) as pool:
        nut = dict(pool.map(nut_finds, enumerate(AGREED_CASES)))
    out = sim.run(f"""
        for setting, value in {AGREED_CASES!r}:
            try:
                open_device(UsbMatcher.from_config({{setting: value}})).close()
                out[f"{{setting}}={{value}}"] = True
            except NoMatchingDevice:
                out[f"{{setting}}={{value}}"] = False
    """)
    ours = {k: out[k] for k in nut}
    assert ours == nut
    assert sum(nut.values()) >= 8 and not all(nut.values())   # both outcomes were exercised


def test_interrupt_out_endpoint(usbsim_lib: Path, tmp_path: Path):
    overlay = tmp_path / "out.usbsim"
    overlay.write_text("ep-out 02\n")
    sim = Sim(usbsim_lib, tmp_path, [BACKUPS, overlay])
    out = sim.run("""
        with open_device(UsbMatcher.from_config({"vendorid": "051d"})) as dev:
            out["ep"] = [dev.ep_in, dev.ep_out]
            out["n"] = dev.write_interrupt(bytes([0x35, 0x01]))
        with open_device(UsbMatcher.from_config({"vendorid": "051d"}), hid=False, interface=0) as dev:
            out["plain"] = dev.interface
        try:
            open_device(UsbMatcher.from_config({"vendorid": "051d"}), interface=3)
        except UsbError as exc:
            out["no_intf"] = str(exc)
        out["simlog"] = simlog()
    """)
    assert out["ep"] == [0x81, 0x02] and out["n"] == 2
    assert "interrupt OUT 02 : 35 01" in out["simlog"]
    assert out["plain"] == 0
    assert out["no_intf"] == "USB device 051d:0002 has no interface 3 (it has 0)"


def test_a_device_without_a_hid_interface_is_refused_for_hid(usbsim_lib: Path, tmp_path: Path):
    overlay = tmp_path / "vendor-class.usbsim"
    overlay.write_text("class ff\n")
    sim = Sim(usbsim_lib, tmp_path, [BACKUPS, overlay])
    out = sim.run("""
        try:
            open_device(UsbMatcher.from_config({"vendorid": "051d"}))
        except UsbError as exc:
            out["hid"] = str(exc)
        with open_device(UsbMatcher.from_config({"vendorid": "051d"}), hid=False) as dev:
            out["plain"] = dev.interface
    """)
    assert out["hid"] == ("USB device 051d:0002 has no HID interface: it is not a HID UPS (a Megatec/Q1 UPS behind a "
                          "USB-serial bridge needs nutdrv_qx or blazer_usb)")
    assert out["plain"] == 0


def test_strings_of_a_device_that_goes_away_while_being_read(sim: Sim):
    out = sim.run("""
        import usb.core
        from nutlite.usb.transport import bare_info, read_strings
        dev = usb.core.find(idVendor=0x051d)
        info = bare_info(dev)
        control("unplug")
        got = read_strings(dev, info)
        out["got"] = [got.vendor, got.product, got.serial, got.strings_error]
    """)
    vendor, product, serial, why = out["got"]
    assert (vendor, product, serial) == (None, None, None)
    assert why.startswith("string 3 could not be read: ")    # the first one tried; then it stops
