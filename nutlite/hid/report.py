"""Decode HID reports into field values and encode values into reports, without any I/O.

A report is the bytes a GET_REPORT answer or an interrupt IN transfer carries: when the descriptor uses
report ids the first byte is the id and the field offsets count from the byte after it.

Fields are little-endian bit strings that may cross byte boundaries. The logical value is the field's
bits, read as two's complement when the logical minimum is negative. The value usbhid-ups prints (its
``Path: ..., Value: v`` debug lines) is then

* scaled into the physical range when the descriptor gives one (physical min/max not both 0 and
  different from each other; logical min/max different):
  ``pmin + (logical - lmin) * (pmax - pmin) / (lmax - lmin)`` (CyberPower's delays: logical -1..32767,
  physical -60..1966020, so -1 reads -60 s);
* multiplied by 10 ** ``nut_exponent(unit, unit_exponent)``: the unit exponent, corrected for the SI
  base units the HID units are in (centimetre, gram): a voltage (unit 0x00f0d121, g·cm²/(s³·A)) with
  unit exponent 5 has exponent 5 - 7 = -2, so 1358 reads 13.58 V.

The unit exponent applies whatever the usage: a Feature item that inherits the Unit and Unit Exponent
globals of a voltage before it reads 3 as 0.03, as NUT prints APC's iManufacturer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from .descriptor import Descriptor, Field, ReportType
from .errors import HidError

Number = int | float


def nut_exponent(unit: int, unit_exponent: int) -> int:
    """The power of ten between a field's physical value and the value in SI units (volt, watt, ...).

    HID units of the SI systems (system nibble 1 linear, 2 rotation) are built on the centimetre and
    the gram; every length dimension costs 10^-2 and every mass dimension 10^-3 to reach metres and
    kilograms. Other systems (none, English) keep the unit exponent as it is.
    """
    system = unit & 0xF
    if system not in (1, 2):
        return unit_exponent

    def nibble(i: int) -> int:
        v = (unit >> (4 * i)) & 0xF
        return v - 16 if v >= 8 else v

    length, mass = nibble(1), nibble(2)
    return unit_exponent - 2 * length - 3 * mass


def get_bits(data: bytes | bytearray, offset: int, size: int) -> int:
    """``size`` bits starting at bit ``offset`` of ``data`` (bit 0 = least significant bit of byte 0)."""
    if size <= 0:
        return 0
    first = offset >> 3
    last = (offset + size - 1) >> 3
    if offset < 0 or last >= len(data):
        raise HidError(f"bits {offset}..{offset + size - 1} are past the {len(data)} data bytes", first)
    chunk = int.from_bytes(data[first : last + 1], "little")
    return (chunk >> (offset & 7)) & ((1 << size) - 1)


def set_bits(data: bytearray, offset: int, size: int, value: int) -> None:
    """Store the low ``size`` bits of ``value`` at bit ``offset`` of ``data``."""
    if size <= 0:
        return
    first = offset >> 3
    last = (offset + size - 1) >> 3
    if offset < 0 or last >= len(data):
        raise HidError(f"bits {offset}..{offset + size - 1} are past the {len(data)} data bytes", first)
    shift = offset & 7
    mask = ((1 << size) - 1) << shift
    chunk = int.from_bytes(data[first : last + 1], "little")
    chunk = (chunk & ~mask) | ((value << shift) & mask)
    data[first : last + 1] = chunk.to_bytes(last - first + 1, "little")


def _to_signed(raw: int, size: int) -> int:
    return raw - (1 << size) if size > 0 and raw >> (size - 1) & 1 else raw


def hid_logical(f: Field, raw: int) -> int:
    """A field element's logical value per HID 1.11: its bits, two's complement when the logical
    minimum is negative."""
    return _to_signed(raw, f.size) if f.is_signed else raw


def _signed_width(v: int) -> int:
    return (v if v >= 0 else -v - 1).bit_length() + 1


def value_width(f: Field) -> int:
    """The bits usbhid-ups keeps of a field's raw value: as many as the logical range needs
    (0..100 keeps 7 bits, -16..15 keeps 5), at most the field size."""
    if f.logical_min < 0:
        width = max(_signed_width(f.logical_min), _signed_width(f.logical_max))
    else:
        width = max(f.logical_max, 0).bit_length()
    return min(width, f.size)


def logical_value(f: Field, raw: int) -> int:
    """A field element's logical value as usbhid-ups reads it.

    For values inside the logical range this is the HID 1.11 value. For others NUT (2.8.0, checked
    through usbsim) keeps only the low bits the logical range needs (``value_width``), sign-extends
    them when the minimum is negative, and clamps the result into the range: with range 0..100 a raw
    200 reads 72 and a raw 255 reads 100; with range 0..0 every value reads 0.
    """
    width = value_width(f)
    v = raw & ((1 << width) - 1)
    if f.logical_min < 0:
        v = _to_signed(v, width)
    if f.logical_min <= f.logical_max:
        v = min(max(v, f.logical_min), f.logical_max)
    return v


def in_range(f: Field, raw: int) -> bool:
    """Whether the raw bits hold a value inside the logical range (HID 1.11: outside it a field with
    the Null State flag reports "no data")."""
    return f.logical_min <= hid_logical(f, raw) <= f.logical_max


def _scaled(f: Field) -> bool:
    # NUT scales only into a proper range: PhyMax > PhyMin (0/0 means "no physical range")
    return f.physical_max > f.physical_min and f.logical_max > f.logical_min


def _simplify(x: Fraction) -> Number:
    return x.numerator if x.denominator == 1 else float(x)


def physical_fraction(f: Field, logical: int) -> Fraction:
    """A logical value in SI units, exactly."""
    value = Fraction(logical)
    if _scaled(f):
        value = f.physical_min + (value - f.logical_min) * Fraction(
            f.physical_max - f.physical_min, f.logical_max - f.logical_min
        )
    exp = nut_exponent(f.unit, f.unit_exponent)
    return value * Fraction(10) ** exp


def physical_value(f: Field, logical: int) -> Number:
    """A logical value as usbhid-ups reports it (an int when the result is whole)."""
    if not _scaled(f) and nut_exponent(f.unit, f.unit_exponent) == 0:
        return logical
    return _simplify(physical_fraction(f, logical))


def logical_from_value(f: Field, value: Number) -> int:
    """The logical value that reads back as ``value`` (rounded to the nearest step); HidError when it
    falls outside the logical range."""
    try:
        target = Fraction(value)
    except (TypeError, ValueError, OverflowError):
        raise HidError(f"{value!r} is not a number") from None
    exp = nut_exponent(f.unit, f.unit_exponent)
    target = target / Fraction(10) ** exp
    if _scaled(f):
        target = f.logical_min + (target - f.physical_min) * Fraction(
            f.logical_max - f.logical_min, f.physical_max - f.physical_min
        )
    logical = round(target)
    lo, hi = sorted((f.logical_min, f.logical_max))
    if (lo, hi) != (0, 0) and not lo <= logical <= hi:
        raise HidError(f"{value!r} is outside the field's range (logical {logical} not in {lo}..{hi})")
    if (lo, hi) == (0, 0):
        lo, hi = (-(1 << (f.size - 1)), (1 << f.size) - 1)
        if not lo <= logical <= hi:
            raise HidError(f"{value!r} does not fit {f.size} bits")
    return logical


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One decoded field: ``value`` as usbhid-ups prints it; for an Array field, ``values`` lists the
    element values and ``usages`` the usages they select."""

    field: Field
    raw: int
    logical: int
    value: Number
    values: tuple[int, ...] = ()
    usages: tuple[int | None, ...] = ()


def _split(descriptor: Descriptor, report: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    if not isinstance(report, bytes | bytearray | memoryview):
        raise HidError(f"a report is bytes, not {type(report).__name__}")
    report = bytes(report)
    if descriptor.uses_report_ids:
        if not report:
            raise HidError("the report is empty: no report id byte", 0)
        return report[0], report[1:]
    return 0, report


def decode_field(f: Field, data: bytes | bytearray) -> FieldValue:
    """Decode one field from report data (the bytes after the report id byte).

    ``value`` is the first element (what usbhid-ups prints); ``values`` holds every element's logical
    value when the field has more than one (an Array, or a Variable whose last usage repeats)."""
    if f.padding:
        raw = get_bits(data, f.offset, f.bit_length)
        return FieldValue(f, raw, raw, raw)
    raws = [get_bits(data, f.offset + i * f.size, f.size) for i in range(f.count)]
    if f.is_array:
        # an Array element outside the logical range selects no usage (HID 1.11 6.2.2.5); NUT makes
        # no object for Array items, so there is no NUT reading to follow here
        elements = tuple(hid_logical(f, r) for r in raws)
        return FieldValue(f, raws[0], elements[0], elements[0], elements, tuple(f.array_usage(v) for v in elements))
    logicals = tuple(logical_value(f, r) for r in raws)
    return FieldValue(f, raws[0], logicals[0], physical_value(f, logicals[0]), logicals if f.count > 1 else ())


def decode_report(
    descriptor: Descriptor,
    report_type: ReportType,
    report: bytes | bytearray | memoryview,
    *,
    strict: bool = True,
    padding: bool = False,
) -> list[FieldValue]:
    """Decode every field of one report (the report id byte first when the descriptor uses ids).

    HidError when the report id is not declared for this report type or, with ``strict``, when the
    report is shorter than the descriptor says; without ``strict`` the fields a short report does not
    reach are left out. Padding fields are left out unless ``padding``.
    """
    report_id, data = _split(descriptor, report)
    key = (report_type, report_id)
    if key not in descriptor.report_bits:
        raise HidError(f"the descriptor declares no {report_type.value} report {report_id:#04x}", 0)
    need = (descriptor.report_bits[key] + 7) // 8
    head = 1 if descriptor.uses_report_ids else 0
    if strict and len(data) < need:
        raise HidError(
            f"{report_type.value} report {report_id:#04x} is {len(data) + head} bytes, "
            f"the descriptor says {need + head}",
            len(data) + head,
        )
    out = []
    for f in descriptor.fields_of(report_type, report_id):
        if f.padding and not padding:
            continue
        if (f.offset + f.bit_length + 7) // 8 > len(data):
            continue
        out.append(decode_field(f, data))
    return out


def encode_report(
    descriptor: Descriptor,
    report_type: ReportType,
    report_id: int,
    values: Mapping[Field, Number | list[int] | tuple[int, ...]],
    base: bytes | bytearray | None = None,
) -> bytes:
    """Build a report for SET_REPORT (or an interrupt OUT transfer): the report id byte when the
    descriptor uses ids, then the data with every field of ``values`` set; the other bits come from
    ``base`` (a report read before, id byte included) or are zero.

    A value is the number usbhid-ups would print (scaled back to the logical value); a field of
    several elements also takes a list (for an Array field: logical element values, usage indexes). HidError when a field is not in this report or a value
    does not fit.
    """
    key = (report_type, report_id)
    if key not in descriptor.report_bits:
        raise HidError(f"the descriptor declares no {report_type.value} report {report_id:#04x}")
    if report_id and not descriptor.uses_report_ids:
        raise HidError(f"report id {report_id} given but the descriptor uses no report ids")
    length = descriptor.report_length(report_type, report_id)
    head = 1 if descriptor.uses_report_ids else 0
    if base is not None:
        base = bytes(base)
        if head and base[:1] != bytes([report_id]):
            raise HidError(f"the base report does not start with report id {report_id:#04x}", 0)
        report = bytearray(base[:length].ljust(length, b"\0"))
    else:
        report = bytearray(length)
        if head:
            report[0] = report_id
    data = bytearray(report[head:])
    for f, value in values.items():
        if f.report_type is not report_type or f.report_id != report_id:
            raise HidError(
                f"field at bit {f.offset} belongs to {f.report_type.value} report {f.report_id:#04x}, "
                f"not {report_type.value} {report_id:#04x}"
            )
        if f.count > 1 and not f.padding and isinstance(value, list | tuple):
            if len(value) > f.count:
                raise HidError(f"a field of {f.count} elements takes at most {f.count} values, not {len(value)}")
            for i, v in enumerate(value):
                if f.is_array:  # Array elements are usage indexes: logical values as they are
                    if not isinstance(v, int):
                        raise HidError(f"an Array element is an integer, not {v!r}")
                    logical = v
                else:
                    logical = logical_from_value(f, v)
                set_bits(data, f.offset + i * f.size, f.size, _check_bits(f, logical))
            continue
        if isinstance(value, list | tuple):
            raise HidError("a field of one element takes one number")
        logical = logical_from_value(f, value)
        set_bits(data, f.offset, f.size * f.count if f.padding else f.size, _check_bits(f, logical))
    report[head:] = data
    return bytes(report)


def _check_bits(f: Field, logical: int) -> int:
    lo = -(1 << (f.size - 1)) if f.is_signed else 0
    hi = (1 << (f.size - 1)) - 1 if f.is_signed else (1 << f.size) - 1
    if not lo <= logical <= hi:
        raise HidError(f"logical value {logical} does not fit the field's {f.size} bits")
    return logical & ((1 << f.size) - 1)
