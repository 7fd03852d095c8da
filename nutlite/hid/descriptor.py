"""HID 1.11 report descriptor parser, without any I/O.

``parse_descriptor(data)`` walks every item of a report descriptor (short and long items; main, global
and local items, Push/Pop, Delimiter, extended 32-bit usages) and returns a ``Descriptor``: the list of
``Field`` objects the descriptor declares, in descriptor order, plus the size of every report per
(report type, report id).

The field list follows the shape usbhid-ups works with (its "HID objects"): a Variable main item with
Report Count N and N usages gives N fields of one element each; with fewer usages than elements, the
last usage's field holds the remaining elements (``count`` > 1; NUT reads its first one). An Array main
item gives one field with ``count`` = N whose ``usage_ranges`` are the usages its values select (NUT
makes no object for it); a constant item without usages gives one padding field. A field's
``usage_path`` is the usage of every enclosing collection, outermost first, then the field's usage.
A collection of a vendor-defined type (0x80-0xFF) adds an index node after its usage, which NUT
renders as ``[n]`` (n = type - 0x80), as in ``UPS.Flow.[4].ConfigVoltage``.

Every malformed or truncated input raises ``HidError`` naming the byte offset; the work is bounded
(limits below) so no input can make the parser run long or use much memory.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field

from .errors import HidError

#: HID class descriptors give the report descriptor length in 16 bits.
MAX_DESCRIPTOR_BYTES = 0xFFFF
#: collection nesting and Push depth; real devices use fewer than 8
MAX_DEPTH = 64
#: biggest report, in bytes without the report id byte (USB control transfers carry at most 64 KiB)
MAX_REPORT_BYTES = 0xFFFF
#: most fields one descriptor may declare (the biggest real UPS descriptors declare about 200)
MAX_FIELDS = 8192
#: Report Count values past this are refused (the item's data would be mostly beyond MAX_REPORT_BYTES)
MAX_REPORT_COUNT = MAX_REPORT_BYTES * 8

#: path node that stands for the index of a vendor-type collection: INDEX_NODE | n renders as "[n]"
INDEX_NODE = 0x00FF0000

POWER_DEVICE_PAGE = 0x84
BATTERY_SYSTEM_PAGE = 0x85


class ReportType(enum.Enum):
    """The three report types; the value is the name NUT prints."""

    INPUT = "Input"
    OUTPUT = "Output"
    FEATURE = "Feature"

    @property
    def wvalue_high(self) -> int:
        """The report type byte of a GET_REPORT/SET_REPORT wValue."""
        return {ReportType.INPUT: 1, ReportType.OUTPUT: 2, ReportType.FEATURE: 3}[self]


# main item data bits (HID 1.11 section 6.2.2.5)
FLAG_CONSTANT = 0x001
FLAG_VARIABLE = 0x002
FLAG_RELATIVE = 0x004
FLAG_WRAP = 0x008
FLAG_NONLINEAR = 0x010
FLAG_NO_PREFERRED = 0x020
FLAG_NULL_STATE = 0x040
FLAG_VOLATILE = 0x080
FLAG_BUFFERED_BYTES = 0x100

COLLECTION_TYPES = {
    0x00: "Physical",
    0x01: "Application",
    0x02: "Logical",
    0x03: "Report",
    0x04: "Named Array",
    0x05: "Usage Switch",
    0x06: "Usage Modifier",
}

# item type codes (bits 2-3 of the prefix)
_MAIN, _GLOBAL, _LOCAL = 0, 1, 2
_MAIN_TAGS = {0x8: ReportType.INPUT, 0x9: ReportType.OUTPUT, 0xB: ReportType.FEATURE}
_TAG_COLLECTION, _TAG_END_COLLECTION = 0xA, 0xC


@dataclass(frozen=True, slots=True)
class Collection:
    """One Collection main item."""

    usage: int
    kind: int  # collection type byte: 0 Physical, 1 Application, 2 Logical, ..., 0x80-0xFF vendor
    depth: int  # 0 for a top-level collection
    item_offset: int  # byte offset of the Collection item in the descriptor

    @property
    def kind_name(self) -> str:
        if self.kind >= 0x80:
            return f"Vendor {self.kind:#04x}"
        return COLLECTION_TYPES.get(self.kind, f"Reserved {self.kind:#04x}")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a report: where its bits are and how to read them.

    ``offset`` is the bit offset from the start of the report data (after the report id byte when the
    report has one), ``size`` the bits per element, ``count`` the number of elements (1 for a
    Variable field, unless its usage is the last of a main item with more elements than usages).
    ``usage_path`` ends with the field's own usage (``usage``), except for Array fields and fields
    without a usage (padding), whose path is that of their collection (Array usages are in
    ``usage_ranges``). ``item_offset`` is the byte offset of the main item that declared the field.
    """

    report_type: ReportType
    report_id: int
    offset: int
    size: int
    count: int
    usage_path: tuple[int, ...]
    logical_min: int
    logical_max: int
    physical_min: int
    physical_max: int
    unit: int
    unit_exponent: int
    flags: int
    item_offset: int
    usage_ranges: tuple[tuple[int, int], ...] = ()
    #: for Array fields: the index of the first usage of each range
    usage_starts: tuple[int, ...] = ()
    designator_index: int | None = None
    string_index: int | None = None
    padding: bool = False
    #: the field's own usage, the last node of usage_path (None for Array fields and fields without usage)
    usage: int | None = None

    @property
    def is_constant(self) -> bool:
        return bool(self.flags & FLAG_CONSTANT)

    @property
    def is_variable(self) -> bool:
        return bool(self.flags & FLAG_VARIABLE)

    @property
    def is_array(self) -> bool:
        return not self.flags & FLAG_VARIABLE

    @property
    def is_relative(self) -> bool:
        return bool(self.flags & FLAG_RELATIVE)

    @property
    def has_null_state(self) -> bool:
        return bool(self.flags & FLAG_NULL_STATE)

    @property
    def is_signed(self) -> bool:
        """Values are two's complement when the logical minimum is negative."""
        return self.logical_min < 0

    @property
    def bit_length(self) -> int:
        return self.size * self.count

    def array_usage(self, value: int) -> int | None:
        """The usage an Array element value selects (value - logical minimum indexes the usages)."""
        index = value - self.logical_min
        if index < 0 or not self.usage_ranges:
            return None
        i = bisect.bisect_right(self.usage_starts, index) - 1
        lo, hi = self.usage_ranges[i]
        offset = index - self.usage_starts[i]
        return lo + offset if offset <= hi - lo else None


@dataclass(slots=True)
class Descriptor:
    """The result of parsing a report descriptor."""

    fields: list[Field]
    collections: list[Collection]
    report_bits: dict[tuple[ReportType, int], int]
    length: int
    warnings: list[str] = field(default_factory=list)

    @property
    def uses_report_ids(self) -> bool:
        return any(rid for (_t, rid) in self.report_bits)

    def report_ids(self, report_type: ReportType) -> list[int]:
        """The report ids declared for one report type, in ascending order."""
        return sorted(rid for (t, rid) in self.report_bits if t is report_type)

    def report_length(self, report_type: ReportType, report_id: int) -> int:
        """Bytes of the whole report, the report id byte included when the report has one."""
        try:
            bits = self.report_bits[(report_type, report_id)]
        except KeyError:
            raise HidError(f"the descriptor declares no {report_type.value} report {report_id:#04x}") from None
        return (bits + 7) // 8 + (1 if report_id else 0)

    def fields_of(self, report_type: ReportType, report_id: int) -> list[Field]:
        """The fields of one report, in bit-offset order."""
        return [f for f in self.fields if f.report_type is report_type and f.report_id == report_id]

    def find(self, usage_path: tuple[int, ...], report_type: ReportType | None = None) -> list[Field]:
        """Fields whose usage path is ``usage_path`` (optionally of one report type)."""
        return [
            f
            for f in self.fields
            if f.usage_path == usage_path and not f.padding and (report_type is None or f.report_type is report_type)
        ]

    def pages(self) -> set[int]:
        """Every usage page used by a collection or field usage."""
        found: set[int] = set()
        for c in self.collections:
            found.add(c.usage >> 16)
        for f in self.fields:
            for u in f.usage_path:
                if u & 0xFFFF0000 != INDEX_NODE:
                    found.add(u >> 16)
            for lo, _hi in f.usage_ranges:
                found.add(lo >> 16)
        return found


@dataclass(slots=True)
class _Globals:
    """The global items of a HID report descriptor, as the parser goes."""

    usage_page: int = 0
    logical_min: int = 0
    logical_max: int = 0
    physical_min: int = 0
    physical_max: int = 0
    unit_exponent: int = 0
    unit: int = 0
    report_size: int = 0
    report_id: int = 0
    report_count: int = 0
    # raw bytes of Logical Maximum, to re-read it unsigned (see _logical_range)
    logical_max_size: int = 0

    def copy(self) -> _Globals:
        return _Globals(
            self.usage_page,
            self.logical_min,
            self.logical_max,
            self.physical_min,
            self.physical_max,
            self.unit_exponent,
            self.unit,
            self.report_size,
            self.report_id,
            self.report_count,
            self.logical_max_size,
        )


class _Locals:
    __slots__ = (
        "ranges",
        "pending_min",
        "pending_max",
        "delimiter",
        "delimited_usages",
        "designator_index",
        "string_index",
    )

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []  # usages as inclusive ranges, in order
        self.pending_min: tuple[int, int] | None = None  # (usage, item offset)
        self.pending_max: tuple[int, int] | None = None
        self.delimiter = False
        self.delimited_usages = 0  # usages seen inside the open delimiter set
        self.designator_index: int | None = None
        self.string_index: int | None = None

    def first_usage(self) -> int | None:
        return self.ranges[0][0] if self.ranges else None

    def usages(self, limit: int) -> list[int]:
        """The first ``limit`` usages, ranges expanded."""
        out: list[int] = []
        for lo, hi in self.ranges:
            take = min(hi - lo + 1, limit - len(out))
            out.extend(range(lo, lo + take))
            if len(out) >= limit:
                break
        return out


def _signed(value: int, nbytes: int) -> int:
    if nbytes == 0:
        return 0
    bits = nbytes * 8
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _unit_exponent(value: int, nbytes: int) -> int:
    """HID 1.11 codes the exponent in a 4-bit two's complement nibble (0x0E = -2); a few devices
    write it as a plain signed byte (0xFE = -2): both read the same way."""
    if value <= 0x0F:
        return value - 16 if value >= 8 else value
    return _signed(value, nbytes)


def _logical_range(g: _Globals) -> tuple[int, int, int, int]:
    """The logical and physical ranges of a main item.

    Extents are signed by their item size. A device that means an unsigned logical maximum but writes
    it with its top bit set (``15 00 25 ff`` for 0..255) gives a maximum below the minimum; usbhid-ups
    then reads that maximum as unsigned ("interpreting LogMax -1 as 255"), and so does this parser.
    The physical maximum is left as written (NUT prints ``PhyMax = -1`` and does not scale).
    """
    lmin, lmax = g.logical_min, g.logical_max
    if lmax < lmin and g.logical_max_size:
        lmax &= (1 << (8 * g.logical_max_size)) - 1
    return lmin, lmax, g.physical_min, g.physical_max


class _Parser:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.g = _Globals()
        self.stack: list[_Globals] = []
        self.locals = _Locals()
        self.path: list[int] = []  # collection path nodes (usage, plus an index node for vendor types)
        self.open: list[tuple[int, int]] = []  # (number of path nodes the collection added, item offset)
        self.fields: list[Field] = []
        self.collections: list[Collection] = []
        self.report_bits: dict[tuple[ReportType, int], int] = {}
        self.warnings: list[str] = []
        self.ids_seen = False
        self.no_id_fields = False

    # -- items -------------------------------------------------------------------------------------
    def run(self) -> Descriptor:
        data = self.data
        n = len(data)
        pos = 0
        while pos < n:
            prefix = data[pos]
            if prefix == 0xFE:  # long item: FE, bDataSize, bLongItemTag, data
                if pos + 3 > n:
                    raise HidError("long item header truncated", pos)
                size = data[pos + 1]
                if pos + 3 + size > n:
                    raise HidError(f"long item needs {size} data bytes, {n - pos - 3} left", pos)
                self.warnings.append(f"byte {pos}: long item (tag {data[pos + 2]:#04x}) ignored")
                pos += 3 + size
                continue
            size = (0, 1, 2, 4)[prefix & 3]
            kind = (prefix >> 2) & 3
            tag = prefix >> 4
            if pos + 1 + size > n:
                raise HidError(f"item {prefix:#04x} needs {size} data bytes, {n - pos - 1} left", pos)
            value = int.from_bytes(data[pos + 1 : pos + 1 + size], "little")
            if kind == _MAIN:
                self.main(tag, value, size, pos)
            elif kind == _GLOBAL:
                self.global_item(tag, value, size, pos)
            elif kind == _LOCAL:
                self.local_item(tag, value, size, pos)
            else:
                raise HidError(f"item {prefix:#04x} has the reserved item type 3", pos)
            pos += 1 + size
        if self.open:
            self.warnings.append(
                f"byte {n}: {len(self.open)} collection(s) not closed (first opened at byte {self.open[0][1]})"
            )
        if self.locals.delimiter:
            self.warnings.append(f"byte {n}: delimiter set not closed")
        if self.ids_seen and self.no_id_fields:
            self.warnings.append("some fields come before any Report ID although the descriptor uses report ids")
        return Descriptor(self.fields, self.collections, self.report_bits, n, self.warnings)

    def global_item(self, tag: int, value: int, size: int, pos: int) -> None:
        g = self.g
        if tag == 0x0:
            g.usage_page = value & 0xFFFF
            if value > 0xFFFF:
                self.warnings.append(f"byte {pos}: Usage Page {value:#x} wider than 16 bits, cut")
        elif tag == 0x1:
            g.logical_min = _signed(value, size)
        elif tag == 0x2:
            g.logical_max = _signed(value, size)
            g.logical_max_size = size
        elif tag == 0x3:
            g.physical_min = _signed(value, size)
        elif tag == 0x4:
            g.physical_max = _signed(value, size)
        elif tag == 0x5:
            g.unit_exponent = _unit_exponent(value, size)
        elif tag == 0x6:
            g.unit = value
        elif tag == 0x7:
            if value > MAX_REPORT_BYTES * 8:
                raise HidError(f"Report Size {value} bits is larger than any report can be", pos)
            g.report_size = value
        elif tag == 0x8:
            if value == 0 or value > 0xFF:
                raise HidError(f"Report ID {value} is outside 1..255", pos)
            g.report_id = value
            self.ids_seen = True
        elif tag == 0x9:
            if value > MAX_REPORT_COUNT:
                raise HidError(f"Report Count {value} is larger than any report can hold", pos)
            g.report_count = value
        elif tag == 0xA:
            if len(self.stack) >= MAX_DEPTH:
                raise HidError(f"Push nested deeper than {MAX_DEPTH}", pos)
            self.stack.append(g.copy())
        elif tag == 0xB:
            if not self.stack:
                raise HidError("Pop without a matching Push", pos)
            self.g = self.stack.pop()
        else:
            self.warnings.append(f"byte {pos}: reserved global item tag {tag:#x} ignored")

    def _usage(self, value: int, size: int) -> int:
        return value if size == 4 else (self.g.usage_page << 16) | value

    def local_item(self, tag: int, value: int, size: int, pos: int) -> None:
        loc = self.locals
        if tag == 0x0:
            if loc.delimiter:
                loc.delimited_usages += 1
                if loc.delimited_usages > 1:  # alternative usages of a delimited set: keep the first
                    return
            u = self._usage(value, size)
            loc.ranges.append((u, u))
        elif tag == 0x1:
            if loc.pending_min is not None:
                raise HidError("Usage Minimum follows Usage Minimum without a Usage Maximum", pos)
            loc.pending_min = (self._usage(value, size), pos)
            self._pair_range(pos)
        elif tag == 0x2:
            if loc.pending_max is not None:
                raise HidError("Usage Maximum follows Usage Maximum without a Usage Minimum", pos)
            loc.pending_max = (self._usage(value, size), pos)
            self._pair_range(pos)
        elif tag == 0x3:
            loc.designator_index = value
        elif tag in (0x4, 0x5):
            if tag == 0x4 and loc.designator_index is None:
                loc.designator_index = value
        elif tag == 0x7:
            loc.string_index = value
        elif tag in (0x8, 0x9):
            if tag == 0x8 and loc.string_index is None:
                loc.string_index = value
        elif tag == 0xA:
            if value == 1:
                if loc.delimiter:
                    raise HidError("Delimiter open inside an open delimiter set", pos)
                loc.delimiter = True
                loc.delimited_usages = 0
            elif value == 0:
                if not loc.delimiter:
                    raise HidError("Delimiter close without an open delimiter set", pos)
                loc.delimiter = False
            else:
                raise HidError(f"Delimiter value {value} is neither 0 (close) nor 1 (open)", pos)
        else:
            self.warnings.append(f"byte {pos}: reserved local item tag {tag:#x} ignored")

    def _pair_range(self, pos: int) -> None:
        loc = self.locals
        if loc.pending_min is None or loc.pending_max is None:
            return
        lo, hi = loc.pending_min[0], loc.pending_max[0]
        loc.pending_min = loc.pending_max = None
        if lo >> 16 != hi >> 16:
            raise HidError(f"Usage Minimum {lo:#010x} and Usage Maximum {hi:#010x} are on different pages", pos)
        if hi < lo:
            raise HidError(f"Usage Maximum {hi:#010x} is below Usage Minimum {lo:#010x}", pos)
        loc.ranges.append((lo, hi))

    def _flush_pending(self) -> None:
        """A lone Usage Minimum or Maximum at a main item stands for that one usage."""
        loc = self.locals
        for pending in (loc.pending_min, loc.pending_max):
            if pending is not None:
                self.warnings.append(f"byte {pending[1]}: Usage Minimum/Maximum without its pair")
                loc.ranges.append((pending[0], pending[0]))
        loc.pending_min = loc.pending_max = None

    def main(self, tag: int, value: int, size: int, pos: int) -> None:
        self._flush_pending()
        if tag in _MAIN_TAGS:
            self.report_item(_MAIN_TAGS[tag], value, pos)
        elif tag == _TAG_COLLECTION:
            if len(self.open) >= MAX_DEPTH:
                raise HidError(f"collections nested deeper than {MAX_DEPTH}", pos)
            kind = value & 0xFF
            usage = self.locals.first_usage()
            usage = usage if usage is not None else 0
            self.collections.append(Collection(usage, kind, len(self.open), pos))
            nodes = [usage]
            if kind >= 0x80:
                nodes.append(INDEX_NODE | (kind - 0x80))
            self.path.extend(nodes)
            self.open.append((len(nodes), pos))
        elif tag == _TAG_END_COLLECTION:
            if not self.open:
                raise HidError("End Collection without an open Collection", pos)
            count, _start = self.open.pop()
            del self.path[len(self.path) - count :]
        else:
            raise HidError(f"main item tag {tag:#x} is reserved", pos)
        self.locals = _Locals()

    def report_item(self, rtype: ReportType, flags: int, pos: int) -> None:
        g = self.g
        loc = self.locals
        key = (rtype, g.report_id)
        if g.report_id == 0:
            self.no_id_fields = True
        start = self.report_bits.get(key, 0)
        size, count = g.report_size, g.report_count
        end = start + size * count
        if end > MAX_REPORT_BYTES * 8:
            raise HidError(
                f"{rtype.value} report {g.report_id:#04x} grows to {(end + 7) // 8} bytes, over {MAX_REPORT_BYTES}",
                pos,
            )
        self.report_bits[key] = end
        if size == 0 or count == 0:
            return
        lmin, lmax, pmin, pmax = _logical_range(g)
        if lmax != g.logical_max:
            self.warnings.append(
                f"byte {pos}: Logical Maximum {g.logical_max} is below Logical Minimum {lmin}; read as {lmax}"
            )
        base = tuple(self.path)
        common = {
            "report_type": rtype,
            "report_id": g.report_id,
            "size": size,
            "logical_min": lmin,
            "logical_max": lmax,
            "physical_min": pmin,
            "physical_max": pmax,
            "unit": g.unit,
            "unit_exponent": g.unit_exponent,
            "flags": flags,
            "item_offset": pos,
            "designator_index": loc.designator_index,
            "string_index": loc.string_index,
        }
        if not loc.ranges:
            # no usage: padding when constant; otherwise a field NUT would name by its collection
            self._add(Field(offset=start, count=count, usage_path=base, padding=bool(flags & FLAG_CONSTANT), **common))
            return
        if not flags & FLAG_VARIABLE:
            starts, total = [], 0
            for lo, hi in loc.ranges:
                starts.append(total)
                total += hi - lo + 1
            self._add(
                Field(
                    offset=start,
                    count=count,
                    usage_path=base,
                    usage_ranges=tuple(loc.ranges),
                    usage_starts=tuple(starts),
                    **common,
                )
            )
            return
        usages = loc.usages(count)
        if len(self.fields) + len(usages) > MAX_FIELDS:
            raise HidError(f"the descriptor declares more than {MAX_FIELDS} fields", pos)
        # one field per usage; the last usage also covers the elements past the usage list, as one
        # field of several elements (usbhid-ups makes one object per usage and reads its first element)
        last = len(usages) - 1
        for i, u in enumerate(usages):
            n = count - last if i == last else 1
            self.fields.append(Field(offset=start + i * size, count=n, usage_path=(*base, u), usage=u, **common))

    def _add(self, f: Field) -> None:
        if len(self.fields) >= MAX_FIELDS:
            raise HidError(f"the descriptor declares more than {MAX_FIELDS} fields", f.item_offset)
        self.fields.append(f)


def parse_descriptor(data: bytes | bytearray | memoryview) -> Descriptor:
    """Parse a HID report descriptor; raises HidError when it is malformed or truncated."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise HidError(f"a report descriptor is bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise HidError("the report descriptor is empty", 0)
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise HidError(f"the report descriptor is {len(data)} bytes, over {MAX_DESCRIPTOR_BYTES}", MAX_DESCRIPTOR_BYTES)
    return _Parser(data).run()


def parse_hex(text: str) -> Descriptor:
    """Parse a descriptor written as hex bytes ("05 84 09 04 ..."), the form captures and logs use."""
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise HidError(f"not hex bytes: {exc}") from None
    return parse_descriptor(data)


def is_power_device(descriptor: Descriptor | bytes | bytearray) -> bool:
    """True when the descriptor has a top-level collection or field usage on the Power Device (0x84) or
    Battery System (0x85) page; a Megatec/Q1 bridge behind a vendor-page HID interface (such as
    0665:5161) has neither and needs nutdrv_qx instead of usbhid-ups."""
    if not isinstance(descriptor, Descriptor):
        descriptor = parse_descriptor(descriptor)
    return bool(descriptor.pages() & {POWER_DEVICE_PAGE, BATTERY_SYSTEM_PAGE})
