"""``nutlite scan``: NUT's ``nut-scanner -U`` for the USB UPSes nutlite's drivers can drive.

It lists the USB devices (pyusb, as the drivers see them), keeps those a nutlite driver takes
(usbhid-ups by its subdriver tables; nutdrv_qx for the Q1-over-USB ids when that transport is in this
build) and prints a ups.conf section for each in nut-scanner 2.8.0's layout (checked against Debian's
nut-scanner through usbsim): ``[nutdevN]``, then tab-indented ``key = "value"`` lines in the order
driver, port, vendorid, productid, product, serial, vendor, bus. ``-P`` prints nut-scanner's
parsable ``USB:key="value",...`` lines instead.
"""

from __future__ import annotations

import sys
from typing import Any

from nutlite.tools.common import NUT_VERSION
from nutlite.usb import UsbDeviceInfo, UsbError

PROG = "nutlite scan"

HELP = f"""usage: {PROG} [-U] [-N | -P] [-q] [-V]

List the USB UPSes attached to this machine that a nutlite driver can drive, and print a ready
ups.conf section for each, as nut-scanner -U does.

Options:
  -U, --usb_scan       scan USB devices (the default, and the only bus nutlite scans)
  -C, --complete_scan  scan every bus nutlite can scan (USB)
  -N, --disp_nut_conf  print the result in the ups.conf format (the default)
  -P, --disp_parsable  print the result in nut-scanner's parsable format
  -q, --quiet          print only the result, not the bus being scanned
  -V, --version        print the version
  -h, --help           show this help
"""

_LONG = {"--usb_scan": "U", "--complete_scan": "C", "--disp_nut_conf": "N", "--disp_parsable": "P",
         "--quiet": "q", "--version": "V", "--help": "h"}


def _q1_ids() -> dict[tuple[int, int], str]:
    """The Q1-over-USB ids and the driver to suggest for each: nutdrv_qx where it takes the id (as
    nut-scanner suggests), else blazer_usb (ffff:0000, which nutlite's nutdrv_qx does not drive)."""
    from nutlite.drivers.transports.q1usb import usb_ids

    out: dict[tuple[int, int], str] = {}
    for vid, pid, driver, _ in usb_ids():
        if pid is not None and out.get((vid, pid)) != "nutdrv_qx":
            out[(vid, pid)] = driver
    return out


def driver_for(info: UsbDeviceInfo, q1_ids: dict[tuple[int, int], str]) -> str | None:
    """The nutlite driver that takes a device with ``port = auto`` and its ids, or None."""
    from nutlite.drivers.programs.usbhid_ups import MEGATEC_BRIDGES
    from nutlite.drivers.tables.hidups import claim

    ids = (info.vendor_id, info.product_id)
    if ids in q1_ids:
        return q1_ids[ids]
    if ids not in MEGATEC_BRIDGES and claim(*ids)[0] is not None:
        return "usbhid-ups"
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def section_items(info: UsbDeviceInfo, driver: str) -> list[tuple[str, str]]:
    """The settings of one section, in nut-scanner's order (strings only when the device has them)."""
    items = [("driver", driver), ("port", "auto"), ("vendorid", f"{info.vendor_id:04X}"),
             ("productid", f"{info.product_id:04X}")]
    for key in ("product", "serial", "vendor"):
        value = (getattr(info, key) or "").strip()
        if value:
            items.append((key, value))
    items.append(("bus", f"{info.bus:03d}"))
    return items


def format_sections(found: list[tuple[UsbDeviceInfo, str]], parsable: bool = False) -> str:
    out = []
    for n, (info, driver) in enumerate(found, 1):
        items = section_items(info, driver)
        if parsable:
            out.append("USB:" + ",".join(f"{k}={_quote(v)}" for k, v in items))
        else:
            out.append(f"[nutdev{n}]")
            out.extend(f"\t{k} = {_quote(v)}" for k, v in items)
    return "".join(line + "\n" for line in out)


def scan(backend: Any = None) -> tuple[list[tuple[UsbDeviceInfo, str]], list[str]]:
    """(device, driver) for every USB UPS a nutlite driver takes, and notes for the user."""
    from nutlite.drivers.tables.hidups import OTHER_DRIVER
    from nutlite.usb.transport import list_devices

    q1 = _q1_ids()
    found, notes = [], []
    for info in list_devices(backend):
        driver = driver_for(info, q1)
        if driver is None:
            other = OTHER_DRIVER.get((info.vendor_id, info.product_id))
            if other:  # nut-scanner lists it with a driver nutlite does not have
                notes.append(f"USB device {info.describe()} is a UPS, but {other}, which nutlite does not "
                             "have: not listed")
            continue
        if info.strings_error:
            notes.append(f"USB device {info.ids} at bus {info.bus:03d}: {info.strings_error}; its section has "
                         "no vendor, product or serial (run as root, or install nutlite's udev rules)")
        found.append((info, driver))
    return found, notes


def _options(argv: list[str]) -> tuple[set[str], str | None]:
    flags: set[str] = set()
    for arg in argv:
        if arg in _LONG:
            flags.add(_LONG[arg])
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            for ch in arg[1:]:
                if ch not in "UCNPqVh":
                    return flags, f"invalid option -- '{ch}'"
                flags.add(ch)
        else:
            return flags, f"unrecognized argument '{arg}' (nutlite scans USB only)"
    return flags, None


def main(argv: list[str]) -> int:
    flags, problem = _options(argv)
    if problem:
        print(f"{PROG}: {problem}\nTry '{PROG} -h' for more information.", file=sys.stderr)
        return 1
    if "h" in flags:
        print(HELP, end="")
        return 0
    if "V" in flags:
        print(f"Network UPS Tools - {NUT_VERSION} ({PROG})")
        return 0
    if "q" not in flags:
        print("Scanning USB bus.", file=sys.stderr)
    try:
        found, notes = scan()
    except UsbError as exc:
        print(f"{PROG}: cannot scan the USB bus: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    if not found:
        # nut-scanner prints nothing and exits 0; say so plainly
        print(f"{PROG}: no USB UPS found that a nutlite driver can drive (lsusb lists what is attached)",
              file=sys.stderr)
        return 0
    sys.stdout.write(format_sections(found, "P" in flags))
    return 0
