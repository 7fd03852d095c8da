"""The USB layer's exceptions and the explanations they carry (NUT FAQ #30, #32, #33), without I/O
beyond looking at a device node and the udev rules folders."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from nutlite.daemon import describe_path, group_name, running_as

from .match import UsbDeviceInfo

#: where udev rules live (the package's, then the administrator's)
UDEV_RULE_DIRS = (Path("/lib/udev/rules.d"), Path("/usr/lib/udev/rules.d"), Path("/etc/udev/rules.d"))


class UsbError(Exception):
    """Every failure of the USB layer. The message is meant for a user as it is (no traceback needed);
    subclasses say what kind: Disconnected, UsbTimeout, DeviceBusy, PermissionDenied, Stalled,
    NoMatchingDevice, NoBackend."""


class Disconnected(UsbError):
    """The device is gone: unplugged, re-enumerated, or reset (libusb NO_DEVICE, ENODEV)."""


class UsbTimeout(UsbError):
    """The device did not answer a control transfer in time."""


class DeviceBusy(UsbError):
    """Another process or a kernel driver holds the device's interface (libusb BUSY)."""


class PermissionDenied(UsbError):
    """The device node cannot be opened by this account (libusb ACCESS); the message says who owns it
    and which udev rule is missing."""


class Stalled(UsbError):
    """The device refused one request (a STALL: libusb PIPE), e.g. GET_REPORT of a report it does not
    have. The device is still there; other requests may work."""


class NoMatchingDevice(UsbError):
    """No device on the bus matches the driver's settings."""


class NoBackend(UsbError):
    """pyusb found no libusb-1.0 library to talk to the USB bus."""


def udev_rule_line(info: UsbDeviceInfo, group: str) -> str:
    """The udev rule line NUT's rules file has for a device (``62-nut-usbups.rules`` style)."""
    return (f'ATTR{{idVendor}}=="{info.vendor_id:04x}", ATTR{{idProduct}}=="{info.product_id:04x}", '
            f'MODE="664", GROUP="{group}"')


def udev_rules_listing(info: UsbDeviceInfo, dirs: Iterable[Path] = UDEV_RULE_DIRS) -> list[Path]:
    """The udev rules files that give this vendor:product id pair a mode or group."""
    vid = re.compile(r'ATTRS?\{idVendor\}=="' + f'{info.vendor_id:04x}"', re.IGNORECASE)
    pid = re.compile(r'ATTRS?\{idProduct\}=="' + f'{info.product_id:04x}"', re.IGNORECASE)
    found: list[Path] = []
    seen: set[Path] = set()
    for d in dirs:
        try:
            names = sorted(p for p in d.iterdir() if p.suffix == ".rules")
        except OSError:
            continue
        for p in names:
            real = p.resolve()
            if real in seen:  # /lib is /usr/lib on merged-/usr systems
                continue
            seen.add(real)
            try:
                text = p.read_text(errors="replace")
            except OSError:
                continue
            if any(vid.search(ln) and pid.search(ln) and ("GROUP" in ln or "MODE" in ln)
                   for ln in text.splitlines() if not ln.lstrip().startswith("#")):
                found.append(p)
    return found


def permission_message(info: UsbDeviceInfo, what: str, node: str | None = None,
                       rule_dirs: Iterable[Path] = UDEV_RULE_DIRS) -> str:
    """Why a USB device cannot be used for lack of rights, one fact a line (NUT FAQ #30 and #4): what
    failed, who this program runs as, the node's owner/group/mode, whether a udev rule covers the
    device, what to do. ``node`` defaults to the device's /dev/bus/usb path."""
    node = node or info.node
    group = group_name(os.getegid())
    rules = udev_rules_listing(info, rule_dirs)
    lines = [f"cannot use USB device {info.describe()}: {what}: permission denied",
             running_as(), describe_path(node)]
    if rules:
        lines.append(f"{', '.join(str(p) for p in rules)}: a udev rule gives {info.ids} a group and mode, but udev has "
                     "not applied it to this node (the cable was plugged in before the rule was installed, "
                     "or a later rules file overrides it). Unplug and plug back the USB cable, or run: "
                     "udevadm trigger --subsystem-match=usb --action=change")
    else:
        lines.append(f"No udev rule gives {info.ids} to this program's group '{group}'. Add this line to "
                     f"/etc/udev/rules.d/62-nut-usbups.rules: {udev_rule_line(info, group)} -- then run "
                     "udevadm control --reload-rules and udevadm trigger --subsystem-match=usb --action=change "
                     "(or unplug and plug back the cable)")
    lines.append("Or set 'user = ...' in ups.conf to an account that may use the device.")
    return "\n".join(lines)


def busy_message(info: UsbDeviceInfo, what: str) -> str:
    """NUT FAQ #30/#32/#33: a device whose interface is held elsewhere."""
    return (f"cannot use USB device {info.describe()}: {what}: the device is busy: another driver, or the "
            "kernel, holds it. Is a second copy of this driver running (a nut-driver@ unit started by "
            "systemd and one started by hand with upsdrvctl)? Stop it; otherwise check which program has "
            f"{info.node} open (fuser -v {info.node}) and which kernel driver is bound (lsusb -t).")


def no_backend_message(detail: str = "") -> str:
    extra = f" ({detail})" if detail else ""
    return ("pyusb found no libusb-1.0 library to reach USB devices" + extra + ": install it "
            "(Debian, Raspberry Pi OS: apt-get install libusb-1.0-0)")
