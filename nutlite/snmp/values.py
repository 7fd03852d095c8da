"""SNMP values as NUT's snmp-ups prints them (SNMP-FACTS §4), with the few places where we do better.

Numbers: INTEGER, Counter32, Gauge32, Counter64 alike; TimeTicks become whole seconds first; a numeric
OCTET STRING ("88") is read as a number, any other string as 0. Unscaled values print as integers.
Scaled ones follow NUT: a whole result that fits 32 bits is printed as an integer, anything else is
rounded to single precision and printed with two decimals (16777217 x 0.1 is ``1677721.75``).

Strings: published as received (at most 127 characters, as NUT); a value with any byte outside printable ASCII is published as
upper-case hex pairs, each followed by a space (``00 41 42 00 ``).
"""

from __future__ import annotations

import re
import struct

from nutlite.snmp.types import IPADDRESS, OBJECT_ID, OCTETS, OPAQUE, TIMETICKS, Value

#: where nutlite deliberately differs from NUT 2.8.0's snmp-ups (the tests print and check these)
DIFFERENCES_FROM_NUT = (
    "whole-number scalings (minutes x 60, x 3, ...) are computed exactly: 4294967295 minutes is "
    "battery.runtime 257698037700, where NUT's single-precision float prints 257698037760.00",
    "notransferoids leaves input.transfer.* out, as NUT's manual says; NUT 2.8.0 logs that it does but "
    "still publishes them",
    "a battery date that is not MM/DD/YYYY is not published; NUT publishes a made-up 1900-01-00",
    "an OBJECT IDENTIFIER where a status code is expected counts as its last component everywhere; NUT "
    "does so for upsTestId but crashes (SIGSEGV) on one in upsAlarmOutputOverload",
)

#: NUT keeps at most this many characters of a string value (its 128-byte buffer)
MAX_TEXT = 127
INT32 = range(-(2**31), 2**31)
_NUMERIC = re.compile(rb"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


class WrongType(ValueError):
    """The agent sent a type that cannot stand for the value the mapping expects."""


def _float32(x: float) -> float:
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")


def number(value: Value) -> int | float:
    """The numeric reading of a value (TimeTicks in whole seconds); WrongType if there is none."""
    v = value.value
    if value.tag == TIMETICKS and isinstance(v, int):
        return v // 100
    if value.is_number and isinstance(v, int):
        return v
    if value.tag in (OCTETS, OPAQUE) and isinstance(v, bytes | bytearray):
        m = _NUMERIC.match(bytes(v))
        if not m:
            return 0
        text = m.group(1).decode()
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    raise WrongType(f"expected a number, got {describe(value)}")


def scaled(raw: int | float, scale: float = 1.0, decimals: int | None = None) -> str:
    """``raw`` times ``scale`` in NUT's notation (see the module text)."""
    if decimals is not None:
        return f"{_float32(raw * scale):.{decimals}f}"
    if scale == 1 and isinstance(raw, int):
        return str(raw)
    if float(scale).is_integer() and isinstance(raw, int):
        return str(raw * int(scale))  # exact (NUT: float, see DIFFERENCES_FROM_NUT)
    divisor = round(1 / scale) if 0 < scale < 1 else 0
    if isinstance(raw, int) and divisor and abs(1 / divisor - scale) < 1e-12:
        exact: float = raw / divisor  # a tenth is a division by ten: 2130 x 0.1 is exactly 213
        whole = raw % divisor == 0
    else:
        exact = raw * scale
        whole = float(exact).is_integer()
    if (whole and int(exact) in INT32) or (divisor and raw not in INT32):
        return str(int(exact))  # (the second: what NUT prints for an unsigned 32-bit value past 2**31)
    return f"{_float32(exact):.2f}"


def text(value: Value) -> str:
    """A value where the mapping expects a string."""
    v = value.value
    if value.tag in (OCTETS, OPAQUE) and isinstance(v, bytes | bytearray):
        raw = bytes(v)
        if all(0x20 <= b < 0x7F for b in raw):
            return raw[:MAX_TEXT].decode("ascii")
        return "".join(f"{b:02X} " for b in raw)
    if value.tag == TIMETICKS and isinstance(v, int):
        return str(v // 100)
    if isinstance(v, int):
        return str(v)
    if value.tag in (OBJECT_ID, IPADDRESS) and isinstance(v, str):
        return v
    raise WrongType(f"expected a string, got {describe(value)}")


def integer(value: Value) -> int:
    """A value used as an enumeration key or status code (whole number); an OBJECT IDENTIFIER counts
    as its last component, as NUT reads upsTestId (``...7.7.3`` is test 3)."""
    if value.tag == OBJECT_ID and isinstance(value.value, str):
        return int(value.value.rsplit(".", 1)[-1])
    n = number(value)
    return int(n)


def describe(value: Value) -> str:
    names = {"2": "INTEGER", "4": "OCTET STRING", "5": "NULL", "6": "OBJECT IDENTIFIER", "64": "IpAddress",
             "65": "Counter32", "66": "Gauge32", "67": "TimeTicks", "68": "Opaque", "70": "Counter64"}
    shown = value.value if not isinstance(value.value, bytes) else value.value[:32]
    return f"{names.get(value.tag, 'type ' + value.tag)} {shown!r}"


def _mdy_date(value: Value, unit: Value | None) -> str | None:
    m = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*", text(value))
    return f"{m.group(3)}-{int(m.group(1)):02d}-{int(m.group(2)):02d}" if m else None


def _celsius(value: Value, unit: Value | None) -> str | None:
    return "celsius"  # the temperatures below are converted to it


def _temperature(value: Value, unit: Value | None) -> str | None:
    """Tenths of a degree in the unit the sensor reports (0 kelvin, 1 celsius, 2 fahrenheit), as whole
    degrees Celsius (truncated, as NUT); an unknown unit gives an empty value, as NUT."""
    tenths = number(value) / 10
    code = integer(unit) if unit is not None else 1
    if code == 0:
        return str(int(tenths - 273.15))
    if code == 1:
        return str(int(tenths))
    if code == 2:
        return str(int((tenths - 32) * 5 / 9))
    return ""


def _unit_fahrenheit(value: Value, unit: Value | None) -> str | None:
    """APC's universal sensor: degrees in the unit its unit OID names (2: Fahrenheit, shown in Celsius)."""
    degrees = number(value)
    if unit is not None and integer(unit) == 2:
        degrees = (degrees - 32) * 5 / 9
    return f"{_float32(degrees):.1f}"


#: conversions NUT's mappings do with a function rather than a scale or a table
CONVERSIONS = {"mdy_date": _mdy_date, "celsius": _celsius, "temperature": _temperature,
               "unit_fahrenheit": _unit_fahrenheit}


def convert(how: str, value: Value, unit: Value | None = None) -> str | None:
    """Run a named conversion; None: nothing to publish."""
    return CONVERSIONS[how](value, unit)
