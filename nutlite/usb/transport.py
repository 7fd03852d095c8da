"""The USB layer on pyusb: find the device a driver section means, open it, talk HID to it.

Threads: pyusb is blocking, so an asyncio driver runs every call of this module in one worker thread
(``concurrent.futures.ThreadPoolExecutor(max_workers=1)``, then ``loop.run_in_executor(pool, ...)``).
A UsbHidDevice is thread-confined: it belongs to the thread that opened it, and a call from any other
thread raises RuntimeError. Nothing here is shared between threads; nothing here touches the loop.

Errors: every failure is a UsbError (errors.py) whose message is ready for a user: Disconnected
(unplugged or re-enumerated: find it again with ``matcher.same_device(info)``), UsbTimeout, DeviceBusy
(another driver, or the kernel, holds it), PermissionDenied (node owner, mode and the missing udev
rule), Stalled (the device refused one request), NoMatchingDevice, NoBackend.

pyusb is imported on first use (a daemon that drives no USB UPS never loads it).
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nutlite.hid import ReportType

from .errors import (
    DeviceBusy,
    Disconnected,
    NoBackend,
    NoMatchingDevice,
    PermissionDenied,
    Stalled,
    UsbError,
    UsbTimeout,
    busy_message,
    no_backend_message,
    permission_message,
)
from .match import UsbDeviceInfo, UsbMatcher

log = logging.getLogger("nutlite.usb")

#: control transfer timeout, as NUT's USB drivers use
CONTROL_TIMEOUT_MS = 5000
HID_CLASS = 0x03
HUB_CLASS = 0x09
DT_HID = 0x21
DT_REPORT = 0x22
GET_DESCRIPTOR = 0x06
GET_REPORT = 0x01
SET_REPORT = 0x09
#: libusb error codes (pyusb's USBError.backend_error_code)
_LIBUSB_IO, _LIBUSB_ACCESS, _LIBUSB_NO_DEVICE, _LIBUSB_NOT_FOUND = -1, -3, -4, -5
_LIBUSB_BUSY, _LIBUSB_TIMEOUT, _LIBUSB_OVERFLOW, _LIBUSB_PIPE = -6, -7, -8, -9


def _pyusb() -> Any:
    try:
        import usb.core
        import usb.util
    except ImportError as exc:
        raise NoBackend(f"the pyusb Python package is missing ({exc}): pip install 'pyusb>=1.2'") from None
    return usb


def default_backend() -> Any:
    """pyusb's libusb-1.0 backend (the library ``ctypes.util.find_library("usb-1.0")`` finds, which
    honours LD_LIBRARY_PATH); NoBackend when there is none."""
    _pyusb()
    import usb.backend.libusb1

    try:
        be = usb.backend.libusb1.get_backend()
    except Exception as exc:  # pyusb raises whatever ctypes raises for a broken library
        raise NoBackend(no_backend_message(str(exc))) from None
    if be is None:
        raise NoBackend(no_backend_message())
    return be


def backend_for(replay: str | None = None) -> Any:
    """The backend a USB driver talks to: the device recorded in the file(s) ``replay`` names
    (nutlite.usb.replay; ReplayError when unreadable) when it is set, else default_backend()."""
    if replay:
        from .replay import replay_backend

        return replay_backend(replay)
    return default_backend()


def _kind(exc: BaseException) -> str:
    """Classify a pyusb/libusb failure: gone, access, busy, pipe, timeout, overflow, other."""
    usb = _pyusb()
    if isinstance(exc, usb.core.USBTimeoutError):
        return "timeout"
    code = getattr(exc, "backend_error_code", None)
    en = getattr(exc, "errno", None)
    if code == _LIBUSB_NO_DEVICE or en in (errno.ENODEV, errno.ESHUTDOWN):
        return "gone"
    if code == _LIBUSB_ACCESS or en in (errno.EACCES, errno.EPERM):
        return "access"
    if code == _LIBUSB_BUSY or en == errno.EBUSY:
        return "busy"
    if code == _LIBUSB_PIPE or en == errno.EPIPE:
        return "pipe"
    if code == _LIBUSB_TIMEOUT or en == errno.ETIMEDOUT:
        return "timeout"
    if code == _LIBUSB_OVERFLOW or en == errno.EOVERFLOW:
        return "overflow"
    return "other"


def map_error(exc: BaseException, info: UsbDeviceInfo, what: str, timeout_ms: int | None = None) -> UsbError:
    """The UsbError a pyusb exception raised while doing ``what`` to ``info`` stands for."""
    if isinstance(exc, UsbError):
        return exc
    if isinstance(exc, NotImplementedError):
        return UsbError(f"USB device {info.ids}: {what}: not supported by libusb on this system")
    kind = _kind(exc)
    reason = getattr(exc, "strerror", None) or str(exc)
    if kind == "gone":
        return Disconnected(f"USB device {info.describe()}: {what}: the device is gone (unplugged, "
                            f"re-enumerated or reset): {reason}")
    if kind == "access":
        return PermissionDenied(permission_message(info, what))
    if kind == "busy":
        return DeviceBusy(busy_message(info, what))
    if kind == "pipe":
        return Stalled(f"USB device {info.ids}: {what}: the device refused the request (STALL)")
    if kind == "timeout":
        within = f" within {timeout_ms} ms" if timeout_ms else ""
        return UsbTimeout(f"USB device {info.ids}: {what}: no answer{within}")
    if kind == "overflow":
        return UsbError(f"USB device {info.ids}: {what}: the device sent more data than asked for")
    return UsbError(f"USB device {info.ids}: {what}: {reason}")


# --------------------------------------------------------------------------------------------------
# enumeration


def _port_path(dev: Any) -> tuple[int, ...]:
    try:
        return tuple(dev.port_numbers or ())
    except Exception:  # older libusb: no port numbers
        return ()


def bare_info(dev: Any) -> UsbDeviceInfo:
    """A pyusb device's ids and topology (nothing that needs opening it)."""
    return UsbDeviceInfo(vendor_id=dev.idVendor, product_id=dev.idProduct, bus=dev.bus or 0,
                         address=dev.address or 0, port_path=_port_path(dev), bcd_device=dev.bcdDevice)


def read_strings(dev: Any, info: UsbDeviceInfo) -> UsbDeviceInfo:
    """``info`` with the manufacturer, product and serial strings (opening the device to read them).
    A string that cannot be read stays None and ``strings_error`` says why; a permission problem
    stops at the first string."""
    usb = _pyusb()
    got: dict[str, str | None] = {"vendor": None, "product": None, "serial": None}
    problem = None
    for name, index in (("vendor", dev.iManufacturer), ("product", dev.iProduct), ("serial", dev.iSerialNumber)):
        if not index:
            continue
        try:
            got[name] = usb.util.get_string(dev, index)
        except (usb.core.USBError, ValueError, NotImplementedError) as exc:
            kind = _kind(exc) if isinstance(exc, usb.core.USBError) else "other"
            why = "permission denied" if kind == "access" else (getattr(exc, "strerror", None) or str(exc))
            problem = problem or f"string {index} could not be read: {why}"
            if kind in ("access", "gone"):
                break
    return UsbDeviceInfo(info.vendor_id, info.product_id, info.bus, info.address, info.port_path,
                         got["vendor"], got["product"], got["serial"], info.bcd_device, problem)


def _dispose(dev: Any) -> None:
    try:
        _pyusb().util.dispose_resources(dev)
    except Exception as exc:  # nothing to release, or the device vanished meanwhile
        log.debug("releasing %04x:%04x: %s", dev.idVendor, dev.idProduct, exc)


def _is_hub(dev: Any) -> bool:
    return dev.bDeviceClass == HUB_CLASS


def list_devices(backend: Any = None, *, strings: bool = True) -> list[UsbDeviceInfo]:
    """Every USB device on the system except hubs, in enumeration order (what ``lsusb`` lists), with
    their strings when ``strings`` (which opens each device)."""
    usb = _pyusb()
    be = backend or default_backend()
    out = []
    for dev in _all_devices(usb, be):
        if _is_hub(dev):
            continue
        info = bare_info(dev)
        out.append(read_strings(dev, info) if strings else info)
        _dispose(dev)
    return out


Skipped = tuple[UsbDeviceInfo, str, bool]


def _all_devices(usb: Any, be: Any) -> list[Any]:
    try:
        return list(usb.core.find(find_all=True, backend=be))
    except usb.core.USBError as exc:
        raise UsbError(f"cannot list the USB devices: {exc.strerror or exc}") from None


def find_candidates(matcher: UsbMatcher, backend: Any = None,
                    accept: Callable[[UsbDeviceInfo], bool] | None = None) -> tuple[list[tuple[UsbDeviceInfo, Any]],
                                                                                  list[Skipped]]:
    """The devices ``matcher`` (and ``accept``, the driver's own test, e.g. a known vendor id) takes,
    in enumeration order, as (info, pyusb device); and (info, why, ids_matched) for each device not
    taken.

    The ids, bus, device and busport settings are checked before the device is opened to read its
    strings, so unrelated devices (keyboards, disks) are never opened. A device whose strings cannot
    be read is still taken when no string setting is given (a debug log says so)."""
    usb = _pyusb()
    be = backend or default_backend()
    taken: list[tuple[UsbDeviceInfo, Any]] = []
    skipped: list[Skipped] = []
    for dev in _all_devices(usb, be):
        if _is_hub(dev):
            continue
        info = bare_info(dev)
        why = matcher.mismatch(info, strings=False)
        if why is None and accept is not None and not accept(info):
            why = "not a device this driver supports"
        ids_matched = why is None
        if why is None:
            info = read_strings(dev, info)
            if info.strings_error:
                log.debug("USB device %s: %s; it can still match on its ids", info.describe(), info.strings_error)
            why = matcher.mismatch(info)
        if why is None:
            log.debug("USB device %s matches (%s)", info.describe(), matcher.describe())
            taken.append((info, dev))
            continue
        log.debug("USB device %s skipped: %s", info.describe(), why)
        skipped.append((info, why, ids_matched))
        _dispose(dev)
    return taken, skipped


def open_device(matcher: UsbMatcher, backend: Any = None, *,
                accept: Callable[[UsbDeviceInfo], bool] | None = None, interface: int | None = None,
                hid: bool = True, timeout_ms: int = CONTROL_TIMEOUT_MS) -> UsbHidDevice:
    """Open and claim the first matching device (``port = auto``). When it cannot be opened (busy,
    permission), the next matching one is tried; if none can, the first one's error is raised.
    NoMatchingDevice lists what is on the bus and why each device was not taken."""
    be = backend or default_backend()
    taken, skipped = find_candidates(matcher, be, accept)
    if not taken:
        for info, _, ids_matched in skipped:
            if ids_matched and info.strings_error and info.strings_error.endswith("permission denied"):
                # NUT FAQ #30: the strings the settings ask for are behind the node's permissions
                raise PermissionDenied(permission_message(info, "reading its strings"))
        seen = "; ".join(f"{i.describe()}: {why}" for i, why, _ in skipped[:8]) or "no USB devices other than hubs"
        wanted = f"matches {matcher.describe()}" if matcher.criteria else "is one this driver supports"
        raise NoMatchingDevice(f"no USB device {wanted} (found: {seen}). Check the cable and the settings; "
                               "lsusb lists the ids, lsusb -v the strings.")
    first: UsbError | None = None
    for i, (info, dev) in enumerate(taken):
        try:
            opened = UsbHidDevice(dev, info, interface=interface, hid=hid, timeout_ms=timeout_ms)
        except UsbError as exc:
            log.debug("USB device %s: %s", info.describe(), exc)
            first = first or exc
            _dispose(dev)
            continue
        for _, other in taken[i + 1:]:
            _dispose(other)
        return opened
    assert first is not None
    raise first


# --------------------------------------------------------------------------------------------------
# one opened device


def hid_report_descriptor_length(extra: bytes) -> int | None:
    """The report descriptor length a HID class descriptor (type 0x21) in ``extra`` declares."""
    i = 0
    while i + 1 < len(extra):
        length, dtype = extra[i], extra[i + 1]
        if length < 2:
            return None
        if dtype == DT_HID and length >= 9:
            body = extra[i:i + length]
            for j in range(6, len(body) - 2, 3):
                if body[j] == DT_REPORT:
                    return body[j + 1] | (body[j + 2] << 8)
        i += length
    return None


class UsbHidDevice:
    """One opened and claimed USB device (a HID interface, unless opened with ``hid=False``).

    Thread-confined: use it from the thread that created it only (see the module documentation);
    only close() may come from another thread, once the worker thread no longer uses the device.
    Construct it with open_device(); close() releases the interface, gives the interface back to
    the kernel driver it was taken from (where libusb allows) and frees the handle.
    """

    def __init__(self, dev: Any, info: UsbDeviceInfo, *, interface: int | None = None, hid: bool = True,
                 timeout_ms: int = CONTROL_TIMEOUT_MS) -> None:
        self._usb = _pyusb()
        self._dev = dev
        self.info = info
        self.timeout_ms = timeout_ms
        self._thread = threading.get_ident()
        self._claimed = False
        self._reattach = False
        self._closed = False
        with self._mapped("reading the configuration descriptor"):
            cfg = dev.configurations()[0]
            intf = self._pick_interface(cfg, interface, hid, info)
        self.interface = intf.bInterfaceNumber
        self._intf = intf
        try:
            self._claim()
        except BaseException:
            self.close()
            raise
        eps = list(intf.endpoints())
        ep_in = [e for e in eps if e.bEndpointAddress & 0x80 and (e.bmAttributes & 3) == 3]
        ep_out = [e for e in eps if not e.bEndpointAddress & 0x80 and (e.bmAttributes & 3) == 3]
        self.ep_in: int | None = ep_in[0].bEndpointAddress if ep_in else None
        self.ep_out: int | None = ep_out[0].bEndpointAddress if ep_out else None
        self.in_packet_size = ep_in[0].wMaxPacketSize if ep_in else 0
        log.debug("opened USB device %s, interface %d", info.describe(), self.interface)

    @staticmethod
    def _pick_interface(cfg: Any, interface: int | None, hid: bool, info: UsbDeviceInfo) -> Any:
        intfs = list(cfg.interfaces())
        if interface is not None:
            chosen = [i for i in intfs if i.bInterfaceNumber == interface and i.bAlternateSetting == 0]
            if not chosen:
                raise UsbError(f"USB device {info.ids} has no interface {interface} "
                               f"(it has {', '.join(str(i.bInterfaceNumber) for i in intfs) or 'none'})")
            return chosen[0]
        if hid:
            hids = [i for i in intfs if i.bInterfaceClass == HID_CLASS and i.bAlternateSetting == 0]
            if not hids:
                raise UsbError(f"USB device {info.ids} has no HID interface: it is not a HID UPS (a Megatec/Q1 UPS "
                               "behind a USB-serial bridge needs nutdrv_qx or blazer_usb)")
            return hids[0]
        if not intfs:
            raise UsbError(f"USB device {info.ids} has no interface")
        return intfs[0]

    @contextmanager
    def _mapped(self, what: str, timeout_ms: int | None = None) -> Iterator[None]:
        try:
            yield
        except UsbError:
            raise
        except (self._usb.core.USBError, NotImplementedError, ValueError, OSError) as exc:
            raise map_error(exc, self.info, what, timeout_ms) from None

    def _check(self) -> None:
        if threading.get_ident() != self._thread:
            raise RuntimeError("a UsbHidDevice is used from the thread that opened it only")
        if self._closed:
            raise UsbError(f"USB device {self.info.ids} is closed")

    def _claim(self) -> None:
        dev, n = self._dev, self.interface
        try:
            active = dev.is_kernel_driver_active(n)
        except NotImplementedError:
            active = False
        except self._usb.core.USBError as exc:
            raise map_error(exc, self.info, "opening the device") from None
        if active:
            with self._mapped(f"detaching the kernel driver from interface {n}"):
                dev.detach_kernel_driver(n)
            self._reattach = True
            log.debug("USB device %s: detached the kernel driver from interface %d", self.info.ids, n)
        with self._mapped("setting the configuration"):
            try:
                dev.get_active_configuration()
            except self._usb.core.USBError as exc:
                if _kind(exc) != "other":
                    raise
                dev.set_configuration()  # unconfigured device
        with self._mapped(f"claiming interface {n}"):
            self._usb.util.claim_interface(dev, n)
        self._claimed = True

    def close(self) -> None:
        """Release the interface and the handle; re-attach the kernel driver detached at open. Safe to
        call twice, and after the device is gone."""
        if self._closed:
            return
        self._closed = True
        dev, n = self._dev, self.interface if hasattr(self, "interface") else 0
        if self._claimed:
            try:
                self._usb.util.release_interface(dev, n)
            except Exception as exc:
                log.debug("USB device %s: releasing interface %d: %s", self.info.ids, n, exc)
        if self._reattach:
            try:
                dev.attach_kernel_driver(n)
                log.debug("USB device %s: kernel driver re-attached to interface %d", self.info.ids, n)
            except Exception as exc:
                log.debug("USB device %s: re-attaching the kernel driver: %s", self.info.ids, exc)
        _dispose(dev)

    def __enter__(self) -> UsbHidDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- descriptors

    def _hid_descriptor_length(self) -> int | None:
        extras = [bytes(self._intf.extra_descriptors or b"")]
        extras += [bytes(e.extra_descriptors or b"") for e in self._intf.endpoints()]
        for extra in extras:
            n = hid_report_descriptor_length(extra)
            if n is not None:
                return n
        with self._mapped("reading the HID descriptor", self.timeout_ms):
            try:
                raw = bytes(self._dev.ctrl_transfer(0x81, GET_DESCRIPTOR, DT_HID << 8, self.interface, 9,
                                                    self.timeout_ms))
            except self._usb.core.USBError as exc:
                if _kind(exc) != "pipe":
                    raise
                raw = b""
        return hid_report_descriptor_length(raw)

    def report_descriptor(self) -> bytes:
        """The HID report descriptor (GET_DESCRIPTOR type 0x22 on the interface; its length from the
        HID class descriptor)."""
        self._check()
        length = self._hid_descriptor_length()
        if not length:
            raise UsbError(f"USB device {self.info.ids}: interface {self.interface} has no HID descriptor "
                           "declaring a report descriptor")
        with self._mapped("reading the HID report descriptor", self.timeout_ms):
            data = bytes(self._dev.ctrl_transfer(0x81, GET_DESCRIPTOR, DT_REPORT << 8, self.interface, length,
                                                 self.timeout_ms))
        if len(data) != length:
            log.debug("USB device %s: report descriptor is %d bytes, the HID descriptor said %d",
                      self.info.ids, len(data), length)
        return data

    def get_string(self, index: int, langid: int | None = None) -> str | None:
        """String descriptor ``index`` (None for index 0: no string)."""
        self._check()
        if not index:
            return None
        with self._mapped(f"reading string descriptor {index}", self.timeout_ms):
            return str(self._usb.util.get_string(self._dev, index, langid))

    # ---- reports

    def get_report(self, report_type: ReportType, report_id: int, length: int) -> bytes:
        """GET_REPORT: up to ``length`` bytes of report ``report_id`` (the id byte first when the
        device uses report ids, as the device sends it)."""
        self._check()
        wvalue = (report_type.wvalue_high << 8) | (report_id & 0xFF)
        with self._mapped(f"GET_REPORT {report_type.value} {report_id:#04x}", self.timeout_ms):
            return bytes(self._dev.ctrl_transfer(0xA1, GET_REPORT, wvalue, self.interface, length, self.timeout_ms))

    def set_report(self, report_type: ReportType, report_id: int, data: bytes) -> int:
        """SET_REPORT: send ``data`` (the whole report, id byte included when ids are used); returns
        the number of bytes the device took."""
        self._check()
        wvalue = (report_type.wvalue_high << 8) | (report_id & 0xFF)
        with self._mapped(f"SET_REPORT {report_type.value} {report_id:#04x}", self.timeout_ms):
            return int(self._dev.ctrl_transfer(0x21, SET_REPORT, wvalue, self.interface, bytes(data),
                                               self.timeout_ms))

    def control(self, request_type: int, request: int, value: int, index: int, data_or_length: bytes | int,
                what: str, timeout_ms: int | None = None) -> bytes | int:
        """A raw control transfer (the Q1-over-USB bridges' vendor ways): bytes read for an IN
        request (``data_or_length`` the length), the count sent for an OUT one. ``what`` names it in
        errors."""
        self._check()
        t = timeout_ms or self.timeout_ms
        payload = data_or_length if isinstance(data_or_length, int) else bytes(data_or_length)
        with self._mapped(what, t):
            got = self._dev.ctrl_transfer(request_type, request, value, index, payload, t)
        return bytes(got) if request_type & 0x80 else int(got)

    def read_interrupt(self, timeout_ms: int, size: int | None = None) -> bytes | None:
        """One report from the interrupt IN endpoint, or None when none came within ``timeout_ms``
        (> 0). ``size`` defaults to the endpoint's packet size (NUT's ``interruptsize`` overrides)."""
        self._check()
        if self.ep_in is None:
            raise UsbError(f"USB device {self.info.ids}: interface {self.interface} has no interrupt IN endpoint")
        if timeout_ms <= 0:
            raise ValueError("an interrupt read needs a timeout above 0 ms")
        n = size or self.in_packet_size or 8
        try:
            return bytes(self._dev.read(self.ep_in, n, timeout_ms))
        except self._usb.core.USBTimeoutError:
            return None
        except (self._usb.core.USBError, NotImplementedError) as exc:
            raise map_error(exc, self.info, f"reading interrupt endpoint {self.ep_in:#04x}", timeout_ms) from None

    def write_interrupt(self, data: bytes, timeout_ms: int = CONTROL_TIMEOUT_MS) -> int:
        """Send ``data`` to the interrupt OUT endpoint (the devices that have one)."""
        self._check()
        if self.ep_out is None:
            raise UsbError(f"USB device {self.info.ids}: interface {self.interface} has no interrupt OUT endpoint")
        with self._mapped(f"writing interrupt endpoint {self.ep_out:#04x}", timeout_ms):
            return int(self._dev.write(self.ep_out, bytes(data), timeout_ms))

    def __repr__(self) -> str:
        return f"<UsbHidDevice {self.info.describe()} interface {self.interface}{' closed' if self._closed else ''}>"
