"""Which USB device a driver section means: NUT's USB matching settings, without any I/O.

NUT's USB drivers (usbhid-ups, nutdrv_qx, blazer_usb) pick their device with these ups.conf settings,
all optional; a device is taken when every one given matches ("port = auto": the first such device
in the bus's enumeration order):

* ``vendorid``, ``productid``: the 16-bit USB ids. A plain hexadecimal number (``051d``, ``51D``,
  ``0x051d``) must equal the id; anything else is an extended regular expression that must match the
  whole id written as 4 lowercase hex digits (``051d*``, ``0463|09ae``), case-insensitively.
* ``vendor``, ``product``, ``serial``: extended regular expressions (regex(7)) that must match the
  whole manufacturer / product / serial number string, case-insensitively, after the blanks around
  the device's string are removed (APC's product string ends in a blank). A string the device would
  not give counts as empty.
* ``bus``, ``device``, ``busport``: regular expressions over the bus number, the device address and
  the port number on the parent hub, each written with 3 digits (``001``); a plain number (``1``)
  must equal it. Device addresses change whenever the device is plugged in again.

Bad values (a vendorid that no USB id can match, a regular expression that does not compile) raise
UsbConfigError naming the setting and the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: the matching settings, in the order NUT documents them
SETTINGS = ("vendorid", "productid", "vendor", "product", "serial", "bus", "device", "busport")
_ID_SETTINGS = ("vendorid", "productid")
_STRING_SETTINGS = ("vendor", "product", "serial")
_NUMBER_SETTINGS = ("bus", "device", "busport")


class UsbConfigError(ValueError):
    """A USB matching setting with a value that cannot work; the message names the setting, the value
    and (when known) where it was set."""

    def __init__(self, setting: str, value: str, problem: str, where: str = "") -> None:
        self.setting = setting
        self.value = value
        self.problem = problem
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{setting} = '{value}': {problem}")


@dataclass(frozen=True)
class UsbDeviceInfo:
    """What identifies one USB device on the bus: ids, strings and topology.

    ``vendor``/``product``/``serial`` are the device's string descriptors (None when it has none or
    they could not be read; ``strings_error`` then says why). ``port_path`` is the chain of hub port
    numbers from the root hub down (``(1, 4)`` for ``1-1.4``); ``busport`` is its last number.
    """

    vendor_id: int
    product_id: int
    bus: int = 0
    address: int = 0
    port_path: tuple[int, ...] = ()
    vendor: str | None = None
    product: str | None = None
    serial: str | None = None
    bcd_device: int | None = None
    strings_error: str | None = field(default=None, compare=False)

    @property
    def ids(self) -> str:
        """``051d:0002``, as lsusb prints it."""
        return f"{self.vendor_id:04x}:{self.product_id:04x}"

    @property
    def busport(self) -> int | None:
        return self.port_path[-1] if self.port_path else None

    @property
    def node(self) -> str:
        """The Linux device node libusb opens: ``/dev/bus/usb/001/002``."""
        return f"/dev/bus/usb/{self.bus:03d}/{self.address:03d}"

    def text(self, setting: str) -> str | None:
        """The value a matching setting is compared with (None: the device has none)."""
        if setting == "vendorid":
            return f"{self.vendor_id:04x}"
        if setting == "productid":
            return f"{self.product_id:04x}"
        if setting in _STRING_SETTINGS:
            s = getattr(self, setting)
            return None if s is None else s.strip()
        if setting == "bus":
            return f"{self.bus:03d}"
        if setting == "device":
            return f"{self.address:03d}"
        if setting == "busport":
            return None if self.busport is None else f"{self.busport:03d}"
        raise KeyError(setting)

    def describe(self) -> str:
        """``051d:0002 "American Power Conversion" "Back-UPS 500" at bus 001 device 002``."""
        names = " ".join(f'"{s.strip()}"' for s in (self.vendor, self.product) if s and s.strip())
        where = f"at bus {self.bus:03d} device {self.address:03d}"
        if self.port_path:
            where += f" (port {self.bus}-{'.'.join(str(p) for p in self.port_path)})"
        return " ".join(p for p in (self.ids, names, where) if p)


# --------------------------------------------------------------------------------------------------
# POSIX extended regular expressions -> Python's re

_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e",
}


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at pattern[i] == '['; returns (text, index after)."""
    out = ["["]
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        out.append("^")
        j += 1
    first = True
    while j < len(pattern):
        c = pattern[j]
        if c == "]" and not first:
            out.append("]")
            return "".join(out), j + 1
        first = False
        if c == "[" and j + 1 < len(pattern) and pattern[j + 1] in ":=.":
            kind = pattern[j + 1]
            end = pattern.find(kind + "]", j + 2)
            if end < 0:
                raise ValueError("unterminated [: :], [= =] or [. .] inside a bracket expression")
            name = pattern[j + 2:end]
            if kind == ":":
                if name not in _POSIX_CLASSES:
                    raise ValueError(f"unknown character class [:{name}:]")
                out.append(_POSIX_CLASSES[name])
            else:
                out.append(re.escape(name))
            j = end + 2
            continue
        # a backslash is an ordinary character inside a POSIX bracket expression; Python also gives
        # '[' and doubled set operators a meaning there
        out.append("\\" + c if c in "\\[&~|" else c)
        j += 1
    raise ValueError("unmatched [ (a bracket expression is not closed)")


def ere_to_python(pattern: str) -> str:
    """A POSIX extended regular expression as Python ``re`` syntax (bracket expressions with
    character classes, GNU's ``\\<``/``\\>`` word boundaries). ValueError for syntax ERE lacks."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise ValueError("trailing backslash")
            n = pattern[i + 1]
            out.append(r"\b" if n in "<>" else "\\" + n)
            i += 2
        elif c == "[":
            text, i = _bracket(pattern, i)
            out.append(text)
        elif c == "(" and pattern.startswith("(?", i):
            raise ValueError("'(?' is not extended regular expression syntax")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def compile_ere(pattern: str) -> re.Pattern[str]:
    """Compile an extended regular expression for whole-string, case-insensitive matching
    (ValueError with the reason when it does not compile)."""
    try:
        return re.compile(ere_to_python(pattern), re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc.msg})") from None


# --------------------------------------------------------------------------------------------------
# the matcher


@dataclass(frozen=True)
class Criterion:
    """One matching setting: a number to equal or a regular expression to match the whole text."""

    setting: str
    value: str
    number: int | None = None
    regex: re.Pattern[str] | None = None
    absent_ok: bool = False  # a device without this string passes (finding a known device again)

    def test(self, info: UsbDeviceInfo) -> bool:
        text = info.text(self.setting)
        if text is None and self.absent_ok:
            return True
        if self.number is not None:
            if self.setting == "vendorid":
                return info.vendor_id == self.number
            if self.setting == "productid":
                return info.product_id == self.number
            return text is not None and int(text) == self.number
        assert self.regex is not None
        return self.regex.fullmatch(text or "") is not None


def _criterion(setting: str, value: str, where: str) -> Criterion:
    v = value.strip()
    if setting in _ID_SETTINGS:
        plain = re.fullmatch(r"(?:0x)?([0-9a-f]{1,4})", v, re.IGNORECASE)
        if plain:
            return Criterion(setting, value, number=int(plain.group(1), 16))
        rx = _regex(setting, value, where)
        if not any(rx.fullmatch(f"{n:04x}") for n in range(0x10000)):
            raise UsbConfigError(setting, value, "matches no USB id: give 4 hexadecimal digits such as 051d "
                                 "(lsusb shows them as vendor:product), or a regular expression over them",
                                 where)
        return Criterion(setting, value, regex=rx)
    if setting in _NUMBER_SETTINGS and re.fullmatch(r"[0-9]{1,3}", v):
        return Criterion(setting, value, number=int(v))
    return Criterion(setting, value, regex=_regex(setting, value, where))


def _regex(setting: str, value: str, where: str) -> re.Pattern[str]:
    try:
        return compile_ere(value)
    except ValueError as exc:
        raise UsbConfigError(setting, value, str(exc), where) from None


class UsbMatcher:
    """The USB device a driver section selects (see the module documentation for the rules).

    ``UsbMatcher.from_config(section_values)`` reads the settings; ``matches(info)`` checks one
    device; ``mismatch(info)`` says which setting a device fails (for debug logs). A matcher with no
    settings takes the first device its driver accepts (``port = auto`` alone)."""

    def __init__(self, criteria: tuple[Criterion, ...] = ()) -> None:
        self.criteria = criteria

    @classmethod
    def from_config(cls, values: Mapping[str, str | None], where: str = "") -> UsbMatcher:
        """Build from a ups.conf section's values (other keys are ignored, ``port`` included: NUT's
        USB drivers do not look at its value). ``where`` prefixes error messages (``ups.conf [myups]``)."""
        crits = []
        for setting in SETTINGS:
            value = values.get(setting)
            if value is None:
                continue
            if not isinstance(value, str):
                raise UsbConfigError(setting, str(value), "expected a text value", where)
            crits.append(_criterion(setting, value, where))
        return cls(tuple(crits))

    @property
    def needs_strings(self) -> bool:
        """True when a setting looks at the device's strings (which means opening the device)."""
        return any(c.setting in _STRING_SETTINGS for c in self.criteria)

    def mismatch(self, info: UsbDeviceInfo, *, strings: bool = True) -> str | None:
        """None when ``info`` matches, else which setting it fails, e.g. ``product 'Back-UPS 500'
        does not match 'Smart.*'``. With ``strings=False`` the string settings are not checked."""
        for c in self.criteria:
            if not strings and c.setting in _STRING_SETTINGS:
                continue
            if not c.test(info):
                text = info.text(c.setting)
                shown = "no string" if text is None else f"'{text}'"
                if text is None and info.strings_error and c.setting in _STRING_SETTINGS:
                    shown += f" ({info.strings_error})"
                return f"{c.setting} {shown} does not match '{c.value}'"
        return None

    def matches(self, info: UsbDeviceInfo) -> bool:
        return self.mismatch(info) is None

    def first(self, devices: list[UsbDeviceInfo]) -> UsbDeviceInfo | None:
        """``port = auto``: the first device in enumeration order that matches."""
        return next((d for d in devices if self.matches(d)), None)

    def describe(self) -> str:
        """``vendorid=051d, product='Back.*'`` (``any device`` without settings)."""
        if not self.criteria:
            return "any device"
        return ", ".join(f"{c.setting}={c.value}" if c.number is not None else f"{c.setting}='{c.value}'"
                         for c in self.criteria)

    def same_device(self, info: UsbDeviceInfo) -> UsbMatcher:
        """A matcher for finding ``info`` again after it was unplugged or re-enumerated: its ids and the
        strings it gave (equal after trimming, case-insensitively; a string that cannot be read this
        time does not count against it), and this matcher's ``bus`` and ``busport`` settings (what
        tells identical devices apart). Not ``device``: the address changes on every re-enumeration."""
        crits = [c for c in self.criteria if c.setting in ("bus", "busport")]
        crits.append(Criterion("vendorid", f"{info.vendor_id:04x}", number=info.vendor_id))
        crits.append(Criterion("productid", f"{info.product_id:04x}", number=info.product_id))
        for setting in _STRING_SETTINGS:
            text = info.text(setting)
            if text:
                crits.append(Criterion(setting, text, regex=re.compile(re.escape(text), re.IGNORECASE),
                                       absent_ok=True))
        return UsbMatcher(tuple(crits))

    def __repr__(self) -> str:
        return f"UsbMatcher({self.describe()})"
