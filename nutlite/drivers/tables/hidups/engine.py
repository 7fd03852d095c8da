"""The sans-IO core of usbhid-ups: a subdriver table applied to one descriptor.

``HidEngine`` finds which table entries the device has, reads their values through a ``read`` callable
(report type, report id -> the report bytes, or None when the device refuses it), turns them into NUT
variables and ``ups.status`` tokens, and builds the SET_REPORT a command or a SET needs. It does no
I/O itself: the driver passes the reads in (from its USB worker thread).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from nutlite.hid import (
    Descriptor,
    Field,
    HidError,
    ReportType,
    decode_field,
    nut_exponent,
    nut_path,
)
from nutlite.hid.report import set_bits

from . import PATH_ONLY_COMMANDS, Entry, Subdriver

Reader = Callable[[ReportType, int], "bytes | None"]
Strings = Callable[[int], "str | None"]

# ups.status tokens in NUT's order, from the status bits
_ORDER = (("lowbatt", "LB"), ("overload", "OVER"), ("replacebatt", "RB"), ("trim", "TRIM"),
          ("boost", "BOOST"), ("bypass", "BYPASS"), ("off", "OFF"), ("cal", "CAL"))
_LB_BITS = ("lowbatt", "timelimitexp", "shutdownimm")


@dataclass
class Quirks:
    """The usbhid-ups options that change how the status is read."""

    onlinedischarge_onbattery: bool = False
    onlinedischarge_calibration: bool = False
    lbrb_log_delay_sec: float = 0.0


@dataclass(frozen=True)
class Reading:
    """What one poll produced: variables to set, the ``ups.status`` words, the alarms and the variables
    to remove."""

    values: dict[str, str]
    status: list[str]
    alarms: list[str]
    removed: tuple[str, ...] = ()


#: variables that status bits stand for: (bit, variable, its value while the bit is set; removed when
#: it is cleared), as NUT 2.8.0 publishes them (through usbsim)
_BIT_VARS = (("vrange", "input.transfer.reason", "input voltage out of range"),)


def _fmt(entry: Entry, value: float, strings: Strings) -> str | None:
    conv = entry.conv
    if entry.string:
        idx = int(value)
        text = strings(idx) if idx > 0 else None
        return (text or "").strip()
    if conv is None:
        return f"{value:.0f}"
    if isinstance(conv, str):
        return conv % value
    if callable(conv):
        return conv(value)
    return conv.get(int(value))


def logical_for(f: Field, value: float) -> int:
    """The logical value NUT writes for ``value``: scaled back from the physical range and unit
    exponent, truncated toward zero (checked through usbsim: CyberPower's 60 s delay steps make
    ondelay 40 a 0, not a 1), and not checked against the logical range, which some devices declare
    too small for their own settings (APC: DelayBeforeReboot -1..0, yet it takes 10)."""
    target = Fraction(value) / Fraction(10) ** nut_exponent(f.unit, f.unit_exponent)
    if f.physical_max > f.physical_min and f.logical_max > f.logical_min:
        target = f.logical_min + (target - f.physical_min) * Fraction(
            f.logical_max - f.logical_min, f.physical_max - f.physical_min)
    return int(target)


class HidEngine:
    def __init__(self, descriptor: Descriptor, sub: Subdriver, quirks: Quirks | None = None) -> None:
        self.descriptor = descriptor
        self.sub = sub
        self.quirks = quirks or Quirks()
        self.head = 1 if descriptor.uses_report_ids else 0
        self._paths: dict[str, Field] = {}
        for rtype in (ReportType.FEATURE, ReportType.INPUT, ReportType.OUTPUT):
            for f in descriptor.fields:
                if f.report_type is rtype and not f.padding and not f.is_array:
                    self._paths.setdefault(nut_path(f, sub.usages), f)
        self.vars: dict[str, Entry] = {}  # name -> the entry that feeds it
        self.flags: list[Entry] = []
        self.cmds: dict[str, Entry] = {}  # name -> the entry of an offered command
        self._known: dict[str, Entry] = {}  # name -> the first command entry whose path the device has
        self.absent: dict[str, str] = {}
        self.bits: dict[str, bool] = {}
        self._lbrb_since: float | None = None

    def field(self, path: str) -> Field | None:
        return self._paths.get(path)

    # ---- reading

    def _read(self, f: Field, read: Reader, cache: dict[tuple[ReportType, int], bytes | None]) -> float | None:
        key = (f.report_type, f.report_id)
        if key not in cache:
            cache[key] = read(f.report_type, f.report_id)
        data = cache[key]
        if data is None:
            return None
        try:
            return decode_field(f, data[self.head:]).value
        except HidError:
            return None

    def discover(self, read: Reader, strings: Strings) -> Reading:
        """The first walk: keep the entries whose path the device has and answers (defaults only
        need the path), and read them all."""
        cache: dict[tuple[ReportType, int], bytes | None] = {}
        values: dict[str, str] = {}
        for e in self.sub.table:
            f = self.field(e.path)
            if f is None:
                continue
            if e.kind == "cmd":
                # as NUT: a command is offered only when its report reads (a device that stalls the
                # report has no such setting, whatever its descriptor declares), but load.off / load.on
                self._known.setdefault(e.name, e)
                if e.name not in self.cmds and (e.name in PATH_ONLY_COMMANDS
                                                or self._read(f, read, cache) is not None):
                    self.cmds[e.name] = e
                continue
            if e.kind == "flag":
                if self._read(f, read, cache) is not None:
                    self.flags.append(e)
                continue
            if e.name in self.vars or e.name in self.absent:
                continue
            if e.kind == "absent":
                self.absent[e.name] = str(e.conv)
                values[e.name] = str(e.conv)
                continue
            v = self._read(f, read, cache)
            if v is None:
                continue
            text = _fmt(e, v, strings)
            if text is None:
                continue
            self.vars[e.name] = e
            values[e.name] = text
        status, alarms = self._status(cache, read)
        return Reading(values, status, alarms, self._bit_vars(values) if status else ())

    def poll(self, read: Reader, strings: Strings, full: bool) -> Reading:
        """A quick (status and timers) or full poll of the entries found by ``discover``."""
        cache: dict[tuple[ReportType, int], bytes | None] = {}
        values: dict[str, str] = {}
        for name, e in self.vars.items():
            if e.static or (not full and not e.quick):
                continue
            f = self.field(e.path)
            assert f is not None
            v = self._read(f, read, cache)
            if v is None:
                continue
            text = _fmt(e, v, strings)
            if text is not None:
                values[name] = text
        status, alarms = self._status(cache, read)
        return Reading(values, status, alarms, self._bit_vars(values) if status else ())

    def interrupt(self, report: bytes, strings: Strings) -> Reading:
        """An Input report from the interrupt endpoint: the variables and status bits it carries."""
        rid = report[0] if self.head else 0
        values: dict[str, str] = {}
        carried = {nut_path(f, self.sub.usages): f for f in self.descriptor.fields_of(ReportType.INPUT, rid)
                   if not f.padding and not f.is_array}

        def value_of(path: str) -> float | None:
            f = carried.get(path)
            if f is None or (f.offset + f.bit_length + 7) // 8 > len(report) - self.head:
                return None
            return decode_field(f, report[self.head:]).value

        for name, e in self.vars.items():
            if e.static:  # strings and ratings: read once, never from an interrupt report
                continue
            v = value_of(e.path)
            if v is not None:
                text = _fmt(e, v, strings)
                if text is not None:
                    values[name] = text
        changed = False
        for e in self.flags:
            v = value_of(e.path)
            if v is not None:
                self._apply_flag(e, v)
                changed = True
        status, alarms = self._compose() if changed else ([], [])
        return Reading(values, status, alarms, self._bit_vars(values) if status else ())

    def read_var(self, name: str, read: Reader, strings: Strings) -> str | None:
        """One variable read afresh (after a SET)."""
        e = self.vars.get(name)
        f = self.field(e.path) if e else None
        if e is None or f is None:
            return None
        v = self._read(f, read, {})
        return None if v is None else _fmt(e, v, strings)

    # ---- status

    def _bit_vars(self, values: dict[str, str]) -> tuple[str, ...]:
        """Adds the variables of the status bits that are set to ``values``; returns those to remove."""
        removed = []
        for bit, name, text in _BIT_VARS:
            if self.bits.get(bit):
                values[name] = text
            elif bit in self.bits:
                removed.append(name)
        return tuple(removed)

    def _apply_flag(self, e: Entry, v: float) -> None:
        conv = e.conv
        if isinstance(conv, dict):
            word = conv.get(int(v))
            if word is None:
                return
        elif v in (0, 1):  # NUT 2.8.0 (through usbsim): an 8-bit status field of 2 or 255 changes nothing
            word = e.name if v else (e.name[1:] if e.name.startswith("!") else "!" + e.name)
        else:
            return
        if word.startswith("!"):
            self.bits[word[1:]] = False
        else:
            self.bits[word] = True

    def _status(self, cache: dict[tuple[ReportType, int], bytes | None], read: Reader) -> tuple[list[str], list[str]]:
        for e in self.flags:
            f = self.field(e.path)
            assert f is not None
            v = self._read(f, read, cache)
            if v is not None:
                self._apply_flag(e, v)
        return self._compose()

    def _compose(self, now: float | None = None) -> tuple[list[str], list[str]]:
        b = {k for k, on in self.bits.items() if on}
        q = self.quirks
        words: list[str] = []
        online = "online" in b
        if online and "dischrg" in b and q.onlinedischarge_onbattery:
            online = False
        words.append("OL" if online else "OB")
        if "dischrg" in b and "depleted" not in b:
            words.append("DISCHRG")
        if "chrg" in b and "fullycharged" not in b:
            words.append("CHRG")
        if "online" in b and "dischrg" in b and q.onlinedischarge_calibration:
            b.add("cal")
        lb = any(x in b for x in _LB_BITS)
        if lb:
            b.add("lowbatt")
        if q.lbrb_log_delay_sec > 0 and "lowbatt" in b and "replacebatt" in b:
            t = time.monotonic() if now is None else now
            if self._lbrb_since is None:
                self._lbrb_since = t
            if t - self._lbrb_since < q.lbrb_log_delay_sec:
                b.discard("lowbatt")
                b.discard("replacebatt")
        else:
            self._lbrb_since = None
        words.extend(tok for bit, tok in _ORDER if bit in b)
        # NUT 2.8.0 publishes no ups.alarm for these bits (checked through usbsim: RB, LB, OVER)
        return words, []

    # ---- writing

    def command_value(self, name: str) -> tuple[Entry, Field] | None:
        """The entry and field a command writes: an offered one, else (for the building blocks of
        shutdown.return) the first whose path the device has."""
        e = self.cmds.get(name) or self._known.get(name)
        if e is None:
            return None
        f = self.field(e.path)
        return (e, f) if f is not None else None

    def can_shutdown(self) -> bool:
        """shutdown.return / shutdown.stayoff, as NUT 2.8.0 offers them (through usbsim): with both delay
        commands, or with load.off and load.on."""
        return all(n in self.cmds for n in ("load.off.delay", "load.on.delay")) or all(
            n in self.cmds for n in PATH_ONLY_COMMANDS)

    def listed_commands(self) -> list[str]:
        names = [n for n, e in self.cmds.items() if not e.hidden]
        if self.can_shutdown():
            names += ["shutdown.return", "shutdown.stayoff"]
        return names

    def build_set(self, f: Field, value: float, read: Reader) -> bytes:
        """The report that sets field ``f`` to ``value``: the report as the device has it (GET_REPORT
        first, as NUT does) with the field's bits replaced; zeros when it cannot be read."""
        length = self.descriptor.report_length(f.report_type, f.report_id)
        base = read(f.report_type, f.report_id)
        report = bytearray(base[:length].ljust(length, b"\0")) if base else bytearray(length)
        if self.head:
            report[0] = f.report_id
        data = bytearray(report[self.head:])
        set_bits(data, f.offset, f.size, logical_for(f, value) & ((1 << f.size) - 1))
        report[self.head:] = data
        return bytes(report)
