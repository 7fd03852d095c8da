"""Replay: a pyusb backend that behaves as the USB device recorded in a file.

A driver given ``replay = <file>`` (ups.conf or ``-x replay=<file>``) talks to this backend instead of
libusb, so the capture attached to a bug report reproduces the device on any machine, without root
and without libusb. Two kinds of file are read:

* the ``.capture`` format of the HID captures (``descriptor:``, ``report get|buf|int``, ``path``/``var``
  lines, which the device ignores) with the optional device lines of usbsim (``usb vvvv:pppp``,
  ``string N : text``, ``imanufacturer N``, ``unrecorded stall|zero``, ``stall <id>``, ``megatec``
  replies, ...); a ``<name>.usbsim`` file beside ``<name>.capture`` is read after it, and several
  files may be joined with ``:`` (later lines override earlier ones);
* NUT's debug-log dumps (nut-ddl ``.dev`` files) that embed ``Report Descriptor: ... =>`` and
  ``Report[get]: ... =>`` lines, with the ids and strings of the log's ``Checking device`` block.

The device answers as usbsim does: GET_REPORT gives the recorded bytes (an Input report falls back
to the Feature report of the same id), an unrecorded report stalls (as on a real device lacking it),
SET_REPORT is kept for later reads, interrupt IN waits out its timeout unless a Megatec bridge has a
reply queued. A malformed file raises ReplayError naming the file and the line.
"""

from __future__ import annotations

import array
import errno
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .errors import UsbError

try:  # pyusb's backend interface (pyusb is needed to use a backend at all)
    from usb.backend import IBackend as _IBackend
except ImportError:  # pragma: no cover - transport reports the missing pyusb
    _IBackend = object  # type: ignore[assignment,misc]


class ReplayError(UsbError):
    """A replay file that cannot be read; the message names the file and, where it applies, the line."""


@dataclass
class ReplayDevice:
    """The device a replay file describes (ids, strings, descriptors, report state)."""

    source: str
    descriptor: bytes = b""
    vendor_id: int = 0
    product_id: int = 0
    bcd_device: int = 0x0100
    bcd_usb: int = 0x0110
    bcd_hid: int = 0x0111
    country: int = 0
    strings: dict[int, str] = field(default_factory=dict)
    indexes: dict[str, int] = field(default_factory=dict)  # manufacturer/product/serial -> string index
    langid: int = 0x0409
    interface: int = 0
    intf_class: int = 0x03
    intf_subclass: int = 0
    intf_protocol: int = 0
    ep_in: int | None = 0x81
    ep_out: int | None = None
    maxpacket: int | None = None
    interval: int = 10
    speed: str = "full"
    bus: int = 1
    port: int = 1
    address: int = 2
    unrecorded: str = "stall"
    reports: dict[tuple[str, int], bytes] = field(default_factory=dict)  # ("feature"|"input"|"output", id)
    stalled: set[int] = field(default_factory=set)
    megatec: dict[str, str] = field(default_factory=dict)
    megatec_unknown: str = "silent"

    def string_index(self, name: str) -> int:
        default = {"manufacturer": 1, "product": 2, "serial": 3}[name]
        if name in self.indexes:
            return self.indexes[name]
        return default if default in self.strings else 0

    def packet_size(self) -> int:
        if self.maxpacket is not None:
            return self.maxpacket
        inputs = [len(b) for (kind, _), b in self.reports.items() if kind == "input"]
        return 8 if all(n <= 8 for n in inputs) else 64


# --------------------------------------------------------------------------------------------------
# reading the files

_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}(?:\s+|$))*$")
_KINDS = {"get": "feature", "buf": "feature", "int": "input"}
_TYPES = {"feature": "feature", "input": "input", "output": "output"}


def _hexbytes(text: str, where: str, what: str) -> bytes:
    text = text.strip()
    if not _HEX.match(text):
        raise ReplayError(f"{where}: {what}: expected hex bytes such as '01 2a ff', got '{text[:60]}'")
    return bytes.fromhex(text)


def _hexnum(text: str, where: str, what: str, limit: int = 0xFFFF) -> int:
    try:
        n = int(text.strip(), 16)
    except ValueError:
        n = -1
    if not 0 <= n <= limit:
        raise ReplayError(f"{where}: {what}: expected a hex number up to {limit:x}, got '{text.strip()}'")
    return n


def _decnum(text: str, where: str, what: str) -> int:
    t = text.strip()
    if not t.isdigit():
        raise ReplayError(f"{where}: {what}: expected a decimal number, got '{t}'")
    return int(t)


def _capture_line(dev: ReplayDevice, line: str, where: str) -> None:  # noqa: C901 - one branch per keyword
    word, _, rest = line.partition(" ")
    if word == "descriptor:":
        dev.descriptor = _hexbytes(rest, where, "descriptor")
        if not dev.descriptor:
            raise ReplayError(f"{where}: descriptor: no bytes")
        return
    if line.startswith("descriptor:"):
        dev.descriptor = _hexbytes(line[len("descriptor:"):], where, "descriptor")
        return
    if word in ("path", "var"):
        return  # decoded values: oracle data, not device state
    if word == "report":
        m = re.match(r"(\w+)\s+([0-9a-fA-F]+)\s*:(.*)$", rest)
        if not m or m[1] not in _KINDS:
            raise ReplayError(f"{where}: expected 'report get|buf|int <id> : <hex bytes>'")
        dev.reports[(_KINDS[m[1]], _hexnum(m[2], where, "report id", 0xFF))] = _hexbytes(m[3], where, "report")
        return
    if word == "string":
        m = re.match(r"(\d+) : ?(.*)$", rest)
        if not m:
            raise ReplayError(f"{where}: expected 'string N : text'")
        dev.strings[int(m[1])] = m[2]
        return
    if word == "megatec":
        cmd, sep, reply = rest.partition(" : ")
        if not sep:
            cmd, sep, reply = rest.partition(":")
        if not sep or not cmd.strip():
            raise ReplayError(f"{where}: expected 'megatec <command> : <reply>'")
        dev.megatec[cmd.strip()] = reply
        return
    arg = rest.strip()
    if word == "usb":
        m = re.fullmatch(r"([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})", arg)
        if not m:
            raise ReplayError(f"{where}: expected 'usb vvvv:pppp' (hex ids), got '{arg}'")
        dev.vendor_id, dev.product_id = int(m[1], 16), int(m[2], 16)
    elif word in ("bcddevice", "bcdusb", "bcdhid"):
        setattr(dev, {"bcddevice": "bcd_device", "bcdusb": "bcd_usb", "bcdhid": "bcd_hid"}[word],
                _hexnum(arg, where, word))
    elif word == "country":
        dev.country = _hexnum(arg, where, word, 0xFF)
    elif word in ("imanufacturer", "iproduct", "iserial"):
        dev.indexes[{"imanufacturer": "manufacturer", "iproduct": "product", "iserial": "serial"}[word]] = (
            _decnum(arg, where, word))
    elif word == "langid":
        dev.langid = _hexnum(arg, where, word)
    elif word == "interface":
        dev.interface = _decnum(arg, where, word)
    elif word in ("class", "subclass", "protocol"):
        setattr(dev, f"intf_{word}", _hexnum(arg, where, word, 0xFF))
    elif word in ("ep-in", "ep-out"):
        value = None if arg == "none" else _hexnum(arg, where, word, 0xFF)
        setattr(dev, word.replace("-", "_"), value)
    elif word in ("maxpacket", "interval", "bus", "port", "address"):
        setattr(dev, word, _decnum(arg, where, word))
    elif word == "speed":
        if arg not in ("low", "full", "high"):
            raise ReplayError(f"{where}: speed: expected low, full or high, got '{arg}'")
        dev.speed = arg
    elif word == "unrecorded":
        if arg not in ("stall", "zero"):
            raise ReplayError(f"{where}: unrecorded: expected stall or zero, got '{arg}'")
        dev.unrecorded = arg
    elif word == "stall":
        dev.stalled.add(_hexnum(arg, where, "stall", 0xFF))
    elif word == "megatec-unknown":
        if arg not in ("silent", "echo"):
            raise ReplayError(f"{where}: megatec-unknown: expected silent or echo, got '{arg}'")
        dev.megatec_unknown = arg
    elif word in ("kerneldriver", "roothub"):
        pass  # no kernel and no hub in a replay
    else:
        raise ReplayError(f"{where}: unknown line '{line[:60]}' (expected descriptor:, report, path, var, "
                          "or a usbsim device line: usb, string, imanufacturer, ...)")


def _read_capture(dev: ReplayDevice, path: Path, text: str) -> None:
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith("string "):
            line = line.strip()
        _capture_line(dev, line, f"{path} line {n}")


_DEV_HEX = re.compile(r"\[D\d\]\s+((?:[0-9a-f]{2} ?)+)\s*$")
_DEV_DEVICE = re.compile(r"- (VendorID|ProductID|Manufacturer|Product|Serial Number|Bus|Device"
                         r"|Device release number): (.*)$")
_DEV_PATH = re.compile(r"Path: \S*\.(iManufacturer|iProduct|iSerialNumber|iDeviceChemistry), Type: \w+, "
                       r"ReportID: 0x[0-9a-f]+, Offset: \d+, Size: \d+, Value: (\S+)")


def _read_dev(dev: ReplayDevice, path: Path, text: str) -> None:
    """A usbhid-ups debug log inside a nut-ddl dump."""
    collecting: tuple[str, int, int, list[str]] | None = None  # (what, expected length, first line, hex)
    found: dict[str, str] = {}
    index_of: dict[str, int] = {}
    variables: dict[str, str] = {}

    def finish() -> None:
        nonlocal collecting
        if collecting is None:
            return
        what, length, first, parts = collecting
        collecting = None
        where = f"{path} line {first}"
        data = _hexbytes(" ".join(parts), where, what)
        if len(data) != length:
            raise ReplayError(f"{where}: {what}: the log says {length} bytes, its hex has {len(data)}")
        if what == "report descriptor":
            dev.descriptor = data
        elif data:
            dev.reports[("feature", data[0])] = data

    for n, line in enumerate(text.splitlines(), 1):
        if collecting is not None and (m := _DEV_HEX.search(line)) and "=>" not in line:
            collecting[3].append(m[1])
            continue
        finish()
        if m := re.search(r"Report Descriptor: \((\d+) bytes\) =>(.*)$", line):
            collecting = ("report descriptor", int(m[1]), n, [m[2]])
        elif m := re.search(r"Report\[(get|buf)\]: \((\d+) bytes\) =>(.*)$", line):
            collecting = ("report", int(m[2]), n, [m[3]])
        elif m := _DEV_DEVICE.search(line):
            found.setdefault(m[1], m[2])
        elif m := _DEV_PATH.search(line):
            try:
                index_of.setdefault(m[1], round(float(m[2]) * 100) if "." in m[2] else int(m[2]))
            except ValueError:
                raise ReplayError(f"{path} line {n}: {m[1]}: value '{m[2]}' is not a number") from None
        elif (m := re.match(r"([a-z][a-z0-9_.]*): (.*)$", line)) and not line.startswith("#"):
            variables[m[1]] = m[2]
    finish()
    if not dev.descriptor:
        raise ReplayError(f"{path}: this dump holds no HID report descriptor (a replayable .dev embeds a "
                          "usbhid-ups debug log with 'Report Descriptor: (N bytes) => ...' lines)")
    where = f"{path}"
    if "VendorID" in found:
        dev.vendor_id = _hexnum(found["VendorID"], where, "VendorID")
    if "ProductID" in found:
        dev.product_id = _hexnum(found["ProductID"], where, "ProductID")
    if "Device release number" in found:
        dev.bcd_device = _hexnum(found["Device release number"], where, "Device release number")
    names = {"Manufacturer": "manufacturer", "Product": "product", "Serial Number": "serial"}
    paths = {"manufacturer": "iManufacturer", "product": "iProduct", "serial": "iSerialNumber"}
    default = {"manufacturer": 1, "product": 2, "serial": 3}
    for label, name in names.items():
        if found.get(label):
            idx = index_of.get(paths[name], default[name])
            dev.strings[idx] = found[label]
            dev.indexes[name] = idx
    if "iDeviceChemistry" in index_of and variables.get("battery.type"):
        dev.strings.setdefault(index_of["iDeviceChemistry"], variables["battery.type"])


def load_replay(spec: str) -> ReplayDevice:
    """The device of a replay setting: one file, or several joined with ``:``; a ``.usbsim`` overlay
    beside a ``.capture`` is read after it."""
    files = [Path(p) for p in spec.split(":") if p.strip()]
    if not files:
        raise ReplayError("replay: no file given (replay = <capture file>)")
    for f in list(files):
        overlay = f.with_suffix(".usbsim")
        if f.suffix == ".capture" and overlay.exists() and overlay not in files:
            files.insert(files.index(f) + 1, overlay)
    dev = ReplayDevice(source=str(files[0]))
    if m := re.search(r"__([0-9a-fA-F]{4})-([0-9a-fA-F]{4})\.capture$", files[0].name):
        dev.vendor_id, dev.product_id = int(m[1], 16), int(m[2], 16)
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ReplayError(f"replay file {f}: cannot be read: {exc.strerror or exc}") from None
        if f.suffix == ".dev" or ("Report Descriptor:" in text and "\ndescriptor:" not in text):
            _read_dev(dev, f, text)
        else:
            _read_capture(dev, f, text)
    if not dev.descriptor and not dev.megatec and not dev.strings:
        raise ReplayError(f"{files[0]}: no 'descriptor:' line (a HID device needs its report descriptor)")
    return dev


# --------------------------------------------------------------------------------------------------
# the pyusb backend

_SPEEDS = {"low": 1, "full": 2, "high": 3}  # libusb speed codes


def _usb_error(text: str, code: int, err: int) -> Exception:
    import usb.core

    if err == errno.ETIMEDOUT:
        return usb.core.USBTimeoutError(text, code, err)
    return usb.core.USBError(text, code, err)


def _stall() -> Exception:
    return _usb_error("Pipe error", -9, errno.EPIPE)


class ReplayBackend(_IBackend):  # type: ignore[misc,valid-type]
    """pyusb's backend interface (usb.backend.IBackend) over one ReplayDevice."""

    def __init__(self, device: ReplayDevice) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._state = dict(device.reports)
        self._pending = bytearray()  # Megatec command bytes up to the CR
        self._queue: list[bytes] = []  # interrupt IN packets waiting

    # ---- descriptors

    def enumerate_devices(self) -> list[ReplayDevice]:
        return [self.device]

    def get_parent(self, dev: Any) -> None:
        return None

    def get_device_descriptor(self, dev: ReplayDevice) -> SimpleNamespace:
        d = self.device
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=d.bcd_usb, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0,
            bMaxPacketSize0=8 if d.speed == "low" else 64, idVendor=d.vendor_id, idProduct=d.product_id,
            bcdDevice=d.bcd_device, iManufacturer=d.string_index("manufacturer"),
            iProduct=d.string_index("product"), iSerialNumber=d.string_index("serial"), bNumConfigurations=1,
            address=d.address, bus=d.bus, port_number=d.port, port_numbers=(d.port,), speed=_SPEEDS[d.speed])

    def _hid_descriptor(self) -> bytes:
        d = self.device
        n = len(d.descriptor)
        return bytes([9, 0x21, d.bcd_hid & 0xFF, d.bcd_hid >> 8, d.country, 1, 0x22, n & 0xFF, n >> 8])

    def _endpoints(self) -> list[tuple[int, int]]:
        return [(ep, self.device.packet_size()) for ep in (self.device.ep_in, self.device.ep_out) if ep is not None]

    def get_configuration_descriptor(self, dev: ReplayDevice, config: int) -> SimpleNamespace:
        if config != 0:
            raise IndexError("a replayed device has one configuration")
        total = 9 + 9 + len(self._hid_descriptor()) + 7 * len(self._endpoints())
        return SimpleNamespace(bLength=9, bDescriptorType=2, wTotalLength=total, bNumInterfaces=1,
                               bConfigurationValue=1, iConfiguration=0, bmAttributes=0xA0, bMaxPower=50,
                               extra_descriptors=b"")

    def get_interface_descriptor(self, dev: ReplayDevice, intf: int, alt: int, config: int) -> SimpleNamespace:
        if intf != 0 or alt != 0 or config != 0:
            raise IndexError("a replayed device has one interface")
        d = self.device
        return SimpleNamespace(bLength=9, bDescriptorType=4, bInterfaceNumber=d.interface, bAlternateSetting=0,
                               bNumEndpoints=len(self._endpoints()), bInterfaceClass=d.intf_class,
                               bInterfaceSubClass=d.intf_subclass, bInterfaceProtocol=d.intf_protocol,
                               iInterface=0, extra_descriptors=self._hid_descriptor() if d.descriptor else b"")

    def get_endpoint_descriptor(self, dev: ReplayDevice, ep: int, intf: int, alt: int,
                                config: int) -> SimpleNamespace:
        eps = self._endpoints()
        if intf != 0 or alt != 0 or config != 0 or not 0 <= ep < len(eps):
            raise IndexError("no such endpoint")
        address, size = eps[ep]
        return SimpleNamespace(bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=3,
                               wMaxPacketSize=size, bInterval=self.device.interval, bRefresh=0, bSynchAddress=0,
                               extra_descriptors=b"")

    # ---- handles

    def open_device(self, dev: ReplayDevice) -> object:
        return object()

    def close_device(self, dev_handle: object) -> None:
        return None

    def set_configuration(self, dev_handle: object, config_value: int) -> None:
        return None

    def get_configuration(self, dev_handle: object) -> int:
        return 1

    def set_interface_altsetting(self, dev_handle: object, intf: int, altsetting: int) -> None:
        return None

    def claim_interface(self, dev_handle: object, intf: int) -> None:
        if intf != self.device.interface:
            raise _usb_error("Entity not found", -5, errno.ENOENT)

    def release_interface(self, dev_handle: object, intf: int) -> None:
        return None

    def is_kernel_driver_active(self, dev_handle: object, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: object, intf: int) -> None:
        return None

    def attach_kernel_driver(self, dev_handle: object, intf: int) -> None:
        return None

    def clear_halt(self, dev_handle: object, ep: int) -> None:
        return None

    def reset_device(self, dev_handle: object) -> None:
        return None

    # ---- transfers

    def _string(self, index: int, langid: int) -> bytes:
        if index == 0:
            return bytes([4, 3, self.device.langid & 0xFF, self.device.langid >> 8])
        text = self.device.strings.get(index)
        if text is None:
            raise _stall()
        body = text.encode("utf-16-le")[:252]
        return bytes([2 + len(body), 3]) + body

    def _descriptor(self, kind: int, index: int, windex: int) -> bytes:
        d = self.device
        if kind == 1:
            dd = self.get_device_descriptor(d)
            return bytes([18, 1, d.bcd_usb & 0xFF, d.bcd_usb >> 8, 0, 0, dd.bMaxPacketSize0,
                          d.vendor_id & 0xFF, d.vendor_id >> 8, d.product_id & 0xFF, d.product_id >> 8,
                          d.bcd_device & 0xFF, d.bcd_device >> 8, dd.iManufacturer, dd.iProduct,
                          dd.iSerialNumber, 1])
        if kind == 3:
            return self._string(index, windex)
        if kind == 0x21 and d.descriptor:
            return self._hid_descriptor()
        if kind == 0x22 and d.descriptor:
            return d.descriptor
        if kind == 2:
            cfg = self.get_configuration_descriptor(d, 0)
            intf = self.get_interface_descriptor(d, 0, 0, 0)
            out = bytes([9, 2, cfg.wTotalLength & 0xFF, cfg.wTotalLength >> 8, 1, 1, 0, 0xA0, 50])
            out += bytes([9, 4, d.interface, 0, intf.bNumEndpoints, d.intf_class, d.intf_subclass,
                          d.intf_protocol, 0]) + intf.extra_descriptors
            for address, size in self._endpoints():
                out += bytes([7, 5, address, 3, size & 0xFF, size >> 8, d.interval])
            return out
        raise _stall()

    def _get_report(self, wvalue: int, length: int) -> bytes:
        kind = {1: "input", 2: "output", 3: "feature"}.get(wvalue >> 8)
        rid = wvalue & 0xFF
        if kind is None or rid in self.device.stalled:
            raise _stall()
        data = self._state.get((kind, rid))
        if data is None and kind == "input":
            data = self._state.get(("feature", rid))
        if data is None:
            if self.device.unrecorded != "zero":
                raise _stall()
            data = (bytes([rid]) if rid else b"") + bytes(max(length - (1 if rid else 0), 0))
        return data[:length]

    def _set_report(self, wvalue: int, data: bytes) -> None:
        kind = {1: "input", 2: "output", 3: "feature"}.get(wvalue >> 8, "feature")
        rid = wvalue & 0xFF
        if self.device.megatec:
            self._megatec(data)
            return
        self._state[(kind, rid)] = bytes(data)
        if kind == "output":  # what a UPS shows when read back
            self._state[("feature", rid)] = bytes(data)

    def _megatec(self, data: bytes) -> None:
        for b in data:
            if b == 0x0D:
                cmd = self._pending.decode("latin-1").strip("\x00")
                self._pending.clear()
                reply = self.device.megatec.get(cmd)
                if reply is None and self.device.megatec_unknown == "echo":
                    reply = cmd
                if reply is not None:
                    out = (reply + "\r").encode("latin-1")
                    size = self.device.packet_size()
                    self._queue.extend(out[i:i + size] for i in range(0, len(out), size))
            elif b:
                self._pending.append(b)

    def ctrl_transfer(self, dev_handle: object, bmRequestType: int, bRequest: int, wValue: int,  # noqa: N803
                      wIndex: int, data: Any, timeout: int) -> Any:
        with self._lock:
            if bmRequestType & 0x80:
                length = len(data) * data.itemsize
                if bRequest == 0x06 and bmRequestType in (0x80, 0x81):
                    got = self._descriptor(wValue >> 8, wValue & 0xFF, wIndex)
                elif bRequest == 0x01 and bmRequestType == 0xA1:
                    got = self._get_report(wValue, length)
                elif bRequest == 0x08 and bmRequestType == 0x80:  # GET_CONFIGURATION
                    got = b"\x01"
                else:
                    raise _stall()
                got = got[:length]
                for i, b in enumerate(got):
                    data[i] = b
                return len(got)
            payload = bytes(array.array("B", data)) if data is not None else b""
            if bRequest == 0x09 and bmRequestType == 0x21:
                self._set_report(wValue, payload)
                return len(payload)
            if bmRequestType & 0x60 == 0 and bRequest in (0x09, 0x0B, 0x01, 0x03):
                return len(payload)  # SET_CONFIGURATION, SET_INTERFACE, features: nothing to emulate
            raise _stall()

    def intr_read(self, dev_handle: object, ep: int, intf: int, buff: Any, timeout: int) -> int:
        wait = (timeout if timeout and timeout > 0 else 1000) / 1000
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if self._queue:
                    packet = self._queue.pop(0)
                    if len(packet) > len(buff):
                        raise _usb_error("Overflow", -8, errno.EOVERFLOW)
                    for i, b in enumerate(packet):
                        buff[i] = b
                    return len(packet)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _usb_error("Operation timed out", -7, errno.ETIMEDOUT)
            time.sleep(min(left, 0.01 if self.device.megatec else left))

    def intr_write(self, dev_handle: object, ep: int, intf: int, data: Any, timeout: int) -> int:
        payload = bytes(array.array("B", data))
        with self._lock:
            if self.device.megatec:
                self._megatec(payload)
            elif payload:
                self._state[("output", payload[0])] = payload
        return len(payload)


def replay_backend(spec: str) -> ReplayBackend:
    """A pyusb backend serving the device of the replay file(s) ``spec`` (ReplayError if unreadable)."""
    if _IBackend is object:
        raise ReplayError("replay needs the pyusb Python package: pip install 'pyusb>=1.2'")
    device = load_replay(spec)
    logging.getLogger("nutlite.usb").info("replaying the USB device %04x:%04x recorded in %s (no real USB device "
                                          "is used)", device.vendor_id, device.product_id, spec)
    return ReplayBackend(device)
