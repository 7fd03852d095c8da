"""Q1 over USB: the USB-serial bridges that carry the Megatec "Q1" protocol (NUT-FACTS §8.4).

The protocol itself is nutlite.drivers.protocols.q1 (the same core the serial drivers use); this module is the
wire under it, one class per bridge family NUT calls a subdriver. Each takes a command (without its
CR) and gives the reply line (without its CR), or None when nothing complete came:

* cypress (Cypress HID bridges, 0665:5161 and most others): the command and its CR, zero-padded to
  8-byte chunks, each sent as a SET_REPORT Output (bmRequestType 0x21, bRequest 0x09, wValue
  0x0200); the reply read from the interrupt IN endpoint in packets until a CR;
* phoenix (Phoenixtec 06da:*): as cypress, after dropping any stale input waiting on the endpoint;
* ippon: the command, its CR and a NUL in 8-byte chunks, each a SET_REPORT with wValue 0x0002 (the
  rest of the last chunk is zeros here; Debian's 2.8.0 sends whatever its buffer held there, bytes
  after the CR that the UPS ignores); the reply from interrupt IN packets of the endpoint's size (64)
  until a CR;
* krauler, fabula, hunnox (0001:0000 family): no command is sent; each known command is a USB string
  descriptor index that the device answers with the reply text (Q1 -> 3, I -> 12, F -> 13, and for
  krauler's commands Q -> 7, T -> 4, TL -> 5, CT and C -> 11, as Debian's driver reads them; the
  shutdown commands cannot be sent); other commands are answered with their own text, which the Q1 core
  rejects, as NUT does. The language id is the device's first one (string descriptor 0), or
  ``langid_fix``; hunnox reads 102 bytes per string after reading string 0 and 1 once at start.
  blazer_usb refuses string replies shorter than the protocol's line with its CR (F: 22, I: 39
  characters), as Debian's does: a device whose strings carry no CR gives it no rating or vendor
  information (nutdrv_qx takes them).

What Debian's 2.8.0 drivers do on the wire was observed through usbsim's log
(tests/test_q1usb_side_by_side.py compares them byte for byte).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from nutlite.drivers.transports.serialport import PortError
from nutlite.usb import Disconnected, Link, ReconnectPolicy, UsbDeviceInfo, UsbError, UsbMatcher, UsbTimeout

if TYPE_CHECKING:  # the transport loads pyusb: imported when a device is opened
    from nutlite.usb.transport import UsbHidDevice

CR = b"\r"
SET_REPORT = 0x09
GET_DESCRIPTOR = 0x06
DT_STRING = 0x03
REPLY_TIMEOUT_S = 1.0  # as NUT's USB subdrivers wait for a reply

#: (vendor id, product id) -> the transport NUT 2.8.0 picks for it without ``subdriver`` (observed
#: with Debian's drivers under usbsim: the first transfer after claiming the device)
AUTO: dict[tuple[int, int], str] = {
    (0x0665, 0x5161): "cypress",
    (0x06DA, 0x0002): "cypress",
    (0x06DA, 0x0003): "ippon",
    (0x06DA, 0x0004): "cypress",
    (0x06DA, 0x0005): "cypress",
    (0x06DA, 0x0201): "cypress",
    (0x06DA, 0x0601): "phoenix",
    (0x0F03, 0x0001): "cypress",
    (0x0001, 0x0000): "krauler",
    (0x14F0, 0x00C9): "phoenix",
    (0x05B8, 0x0000): "phoenix",
}
#: blazer_usb also takes ffff:0000 as a krauler bridge (nutdrv_qx gives it its ablerex transport,
#: which nutlite does not have: there it needs ``subdriver``)
BLAZER_USB_AUTO: dict[tuple[int, int], str] = {**AUTO, (0xFFFF, 0x0000): "krauler"}


class Q1UsbTransport:
    """One bridge: ``ask(command)`` (send, then read the reply) and ``send(command)`` (no reply wanted)."""

    name: ClassVar[str] = ""
    comment: ClassVar[str] = ""

    def __init__(self, dev: UsbHidDevice, langid_fix: int | None = None,
                 min_lengths: dict[str, int] | None = None) -> None:
        self.dev = dev
        self.langid_fix = langid_fix
        self.min_lengths = min_lengths or {}
        self.last_raw = b""
        self.timeout = REPLY_TIMEOUT_S

    def start(self) -> None:
        """What the bridge needs once after opening (nothing for most)."""

    def write(self, command: str) -> None:
        raise NotImplementedError

    def read(self, command: str) -> str | None:
        raise NotImplementedError

    def ask(self, command: str) -> str | None:
        self.write(command)
        return self.read(command)

    def send(self, command: str) -> None:
        self.write(command)
        self.read(command)  # the UPS may answer (or echo); drop it so it does not end in the next reply


class CypressTransport(Q1UsbTransport):
    name = "cypress"
    comment = "Cypress USB-serial bridge (SET_REPORT, interrupt IN)"
    wvalue: ClassVar[int] = 0x0200

    def write(self, command: str) -> None:
        data = command.encode("latin-1", "replace") + CR
        for i in range(0, len(data), 8):
            chunk = data[i:i + 8].ljust(8, b"\0")
            self.dev.control(0x21, SET_REPORT, self.wvalue, self.dev.interface, chunk, f"sending {command!r}")

    def read(self, command: str) -> str | None:
        buf = b""
        deadline = time.monotonic() + self.timeout
        size = self.dev.in_packet_size or 8
        while CR not in buf:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                break
            got = self.dev.read_interrupt(left, size)
            if got is None:
                break
            buf += got
        self.last_raw = buf
        if CR not in buf:
            return None
        return buf.split(CR, 1)[0].decode("latin-1")


class PhoenixTransport(CypressTransport):
    name = "phoenix"
    comment = "Phoenixtec USB-serial bridge (SET_REPORT, interrupt IN)"

    def write(self, command: str) -> None:
        for _ in range(8):  # drop stale input first
            try:
                if not self.dev.read_interrupt(10, self.dev.in_packet_size or 8):
                    break
            except UsbTimeout:
                break
        super().write(command)


class IpponTransport(CypressTransport):
    name = "ippon"
    comment = "Ippon USB-serial bridge (SET_REPORT 0x0002, 64-byte interrupt IN)"
    wvalue = 0x0002

    def write(self, command: str) -> None:
        # command, CR and a NUL in 8-byte chunks; Debian's fills the rest of the last chunk with
        # whatever its buffer held (bytes the UPS ignores after the CR): zeros here
        data = command.encode("latin-1", "replace") + CR + b"\0"
        for i in range(0, len(data), 8):
            chunk = data[i:i + 8].ljust(8, b"\0")
            self.dev.control(0x21, SET_REPORT, self.wvalue, self.dev.interface, chunk, f"sending {command!r}")


class KraulerTransport(Q1UsbTransport):
    name = "krauler"
    comment = "Krauler/Digitus string-descriptor bridge"
    #: command -> string descriptor index holding its reply (what Debian's 2.8.0 nutdrv_qx asks for;
    #: the shutdown commands have none: the bridge cannot send them)
    INDEX: ClassVar[dict[str, int]] = {"Q1": 3, "I": 12, "F": 13, "Q": 7, "T": 4, "TL": 5, "CT": 11, "C": 11}
    read_length: ClassVar[int] = 255

    def _langid(self) -> int:
        raw = self.dev.control(0x80, GET_DESCRIPTOR, DT_STRING << 8, 0, 255, "reading the language ids")
        assert isinstance(raw, bytes)
        if self.langid_fix is not None:
            return self.langid_fix
        return raw[2] | (raw[3] << 8) if len(raw) >= 4 else 0x0409

    def _string(self, index: int, length: int) -> str:
        langid = self._langid()
        raw = self.dev.control(0x80, GET_DESCRIPTOR, (DT_STRING << 8) | index, langid, length,
                               f"reading string descriptor {index}")
        assert isinstance(raw, bytes)
        body = raw[2:raw[0]] if raw and raw[0] <= len(raw) else raw[2:]
        return "".join(chr(lo) if hi == 0 and lo < 0x80 else "?" for lo, hi in zip(body[::2], body[1::2], strict=False))

    def write(self, command: str) -> None:
        self._pending = command

    def read(self, command: str) -> str | None:
        index = self.INDEX.get(command)
        if index is None:
            self.last_raw = command.encode()
            return command  # not a command this bridge knows: NUT hands back the command itself
        raw_text = self._string(index, self.read_length)
        text = raw_text.rstrip("\r")
        self.last_raw = raw_text.encode("latin-1", "replace")
        if len(raw_text) < self.min_lengths.get(command, 0):
            return None  # blazer_usb: a reply shorter than the protocol's (its CR counted) is refused
        if command == "Q1" and text and not text.startswith("("):
            text = "(" + text[1:]
        return text

    def send(self, command: str) -> None:
        if command not in self.INDEX:
            raise UsbError(f"the {self.name} USB bridge cannot send '{command}' to the UPS")
        self.ask(command)


class FabulaTransport(KraulerTransport):
    name = "fabula"
    comment = "Fabula string-descriptor bridge"
    #: only the queries: NUT documents no battery test for fabula, and its other commands' indexes
    #: were not observed
    INDEX: ClassVar[dict[str, int]] = {"Q1": 3, "I": 12, "F": 13}


class HunnoxTransport(KraulerTransport):
    name = "hunnox"
    comment = "Hunnox string-descriptor bridge"
    read_length = 102

    def start(self) -> None:
        for index in (0, 0, 1):
            try:
                self.dev.control(0x80, GET_DESCRIPTOR, (DT_STRING << 8) | index, 0x0409, 1026, "starting the bridge")
            except UsbTimeout:
                pass


TRANSPORTS: dict[str, type[Q1UsbTransport]] = {t.name: t for t in (
    CypressTransport, PhoenixTransport, IpponTransport, KraulerTransport, FabulaTransport, HunnoxTransport)}
#: the names NUT 2.8.0 accepts for ``subdriver``, and the transport each means here
NUTDRV_QX_SUBDRIVERS = {"cypress": "cypress", "phoenix": "phoenix", "phoenixtec": "phoenix", "ippon": "ippon",
                        "krauler": "krauler", "fabula": "fabula", "hunnox": "hunnox"}
BLAZER_USB_SUBDRIVERS = {"cypress": "cypress", "phoenix": "phoenix", "ippon": "ippon", "krauler": "krauler"}


def auto_transport(info: UsbDeviceInfo) -> str | None:
    """The transport NUT picks for a device by its ids, or None when it takes no such device."""
    return AUTO.get((info.vendor_id, info.product_id))


def usb_ids() -> list[tuple[int, int, str, str]]:
    """Every USB id these transports claim: (vendor id, product id, driver, comment), for udev rules."""
    out = []
    for driver, table in (("nutdrv_qx", AUTO), ("blazer_usb", BLAZER_USB_AUTO)):
        for (vid, pid), name in sorted(table.items()):
            out.append((vid, pid, driver, f"Q1 over USB, {TRANSPORTS[name].comment}"))
    return out


# --------------------------------------------------------------------------------------------------
# the link a driver uses: open, ask, send, lose and find again


class UsbLink:
    """The Q1 driver's USB port: the same ``ask``/``send``/``last_raw``/``timeout``/``close`` as a
    serial port, over one of the transports above. Blocking and thread-confined (the driver runs it in
    its one worker thread). A lost device raises PortError with the reconnection policy's one line
    (the same text while it stays lost, so the driver logs it once); ``back`` holds the line for its
    return until the driver takes it."""

    def __init__(self, matcher: UsbMatcher, policy: ReconnectPolicy, *, subdriver: str | None,
                 table: dict[str, str], auto: dict[tuple[int, int], str], langid_fix: int | None = None,
                 min_lengths: dict[str, int] | None = None, replay: str | None = None) -> None:
        self.min_lengths = min_lengths
        self.replay = replay  # a capture file to talk to instead of the bus (nutlite.usb.replay)
        self.matcher = matcher
        self.policy = policy
        self.subdriver = subdriver
        self.table = table
        self.auto = auto
        self.langid_fix = langid_fix
        self.transport: Q1UsbTransport | None = None
        self.info: UsbDeviceInfo | None = None
        self.back: str | None = None
        self._lost_line: str | None = None
        self.timeout = REPLY_TIMEOUT_S

    @property
    def last_raw(self) -> bytes:
        return self.transport.last_raw if self.transport is not None else b""

    def _accept(self, info: UsbDeviceInfo) -> bool:
        return self.subdriver is not None or (info.vendor_id, info.product_id) in self.auto

    def open(self, matcher: UsbMatcher | None = None) -> None:
        """Open the first matching device and start its transport (UsbError when none can be)."""
        from nutlite.usb.transport import backend_for, open_device

        dev = open_device(matcher or self.matcher, backend_for(self.replay), accept=self._accept, hid=False)
        try:
            name = self.subdriver or self.auto[(dev.info.vendor_id, dev.info.product_id)]
            transport = TRANSPORTS[self.table[name]](dev, self.langid_fix, self.min_lengths)
            transport.start()
        except BaseException:
            dev.close()
            raise
        self.transport, self.info = transport, dev.info
        tr = self.policy.connected(time.monotonic(), dev.info)
        if tr is not None and tr.action == "ok" and self._lost_line is not None:
            self.back = tr.message
        self._lost_line = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.dev.close()
            self.transport = None

    def _lose(self, exc: UsbError) -> PortError:
        reason = str(exc)
        if self.info is not None:
            for prefix in (f"USB device {self.info.describe()}: ", f"USB device {self.info.ids}: "):
                reason = reason.removeprefix(prefix)
        self.close()
        tr = self.policy.lost(time.monotonic(), reason)
        if tr is not None:
            self._lost_line = tr.message
        return PortError(self._lost_line or reason)

    def _ready(self) -> Q1UsbTransport:
        if self.transport is not None:
            return self.transport
        if self.policy.state is not Link.CONNECTED and not self.policy.due(time.monotonic()):
            raise PortError(self._lost_line or "the USB device is not connected")
        try:
            self.open(self.policy.matcher)
        except UsbError as exc:
            if self.policy.state is Link.NEVER:
                raise PortError(str(exc)) from None
            self.policy.attempt_failed(time.monotonic(), str(exc))
            raise PortError(self._lost_line or str(exc)) from None
        assert self.transport is not None
        return self.transport

    def ask(self, command: str) -> str | None:
        t = self._ready()
        try:
            return t.ask(command)
        except Disconnected as exc:
            raise self._lose(exc) from None
        except UsbError as exc:
            raise PortError(str(exc)) from None

    def send(self, command: str) -> None:
        t = self._ready()
        try:
            t.send(command)
        except Disconnected as exc:
            raise self._lose(exc) from None
        except UsbError as exc:
            raise PortError(str(exc)) from None


def parse_langid(raw: str | None) -> int | None:
    """``langid_fix`` (``0x409`` or ``0x4095``, any hex number) as a number; ValueError names it."""
    if raw is None:
        return None
    try:
        value = int(raw.strip(), 16)
    except ValueError:
        raise ValueError(f"langid_fix = '{raw}': expected a hexadecimal language id such as 0x0409") from None
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"langid_fix = '{raw}': a language id is 16 bits (0x0000..0xffff)")
    return value
