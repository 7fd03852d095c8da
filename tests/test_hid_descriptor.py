"""HID report descriptor parser (nutlite.hid.descriptor): real captures, every item kind, bad input.

The captures are read from ../shared/data/hid-captures at test time (skipped when that folder is not
beside the work tree, as on a user's clone).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nutlite.hid import HidError, ReportType, is_power_device, nut_path, parse_descriptor, parse_hex
from nutlite.hid.descriptor import INDEX_NODE, MAX_DEPTH

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CAPTURES_DIR = SHARED / "hid-captures"
CAPTURES = sorted(CAPTURES_DIR.glob("*.capture")) if CAPTURES_DIR.is_dir() else []
needs_captures = pytest.mark.skipif(not CAPTURES, reason="../shared/data/hid-captures is not there")


@dataclass
class PathLine:
    path: str
    rtype: ReportType
    report_id: int
    offset: int
    size: int
    value: float
    note: str


@dataclass
class Capture:
    name: str
    descriptor: bytes
    reports: dict[tuple[str, int], bytes] = field(default_factory=dict)  # ("feature"|"input", id)
    paths: list[PathLine] = field(default_factory=list)
    header: str = ""


def load_capture(path: Path) -> Capture:
    cap = Capture(path.stem, b"")
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            cap.header += line + "\n"
        elif line.startswith("descriptor:"):
            cap.descriptor = bytes.fromhex(line.split(":", 1)[1])
        elif m := re.match(r"report (get|buf|int) ([0-9a-f]+) : (.*)", line):
            kind = "input" if m[1] == "int" else "feature"
            cap.reports[(kind, int(m[2], 16))] = bytes.fromhex(m[3])
        elif m := re.match(
            r"path (\S+) type=(\w+) id=([0-9a-f]+) offset=(\d+) size=(\d+) value=(\S+)\s*(.*)", line
        ):
            cap.paths.append(
                PathLine(m[1], ReportType(m[2]), int(m[3], 16), int(m[4]), int(m[5]), float(m[6]), m[7])
            )
    return cap


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@needs_captures
@pytest.mark.parametrize("capture", CAPTURES, ids=ids(CAPTURES))
def test_capture_descriptor_parses_as_its_header_says(capture: Path) -> None:
    """Every capture parses; report ids per type, usage pages and length agree with the `# verified:`
    line the capture's author wrote from an independent parse."""
    cap = load_capture(capture)
    desc = parse_descriptor(cap.descriptor)
    assert desc.length == len(cap.descriptor)
    assert not [w for w in desc.warnings if "not closed" in w], desc.warnings
    verified = re.search(
        r"# verified: (\d+) bytes.*usage pages ([0-9a-fx ]+); report ids: (\d+) Feature, (\d+) Input, (\d+) Output",
        cap.header,
    )
    if verified is None:  # 5131:2007 has no such line: one id (0x0b) for Feature and Input
        assert desc.report_ids(ReportType.FEATURE) == desc.report_ids(ReportType.INPUT) == [0x0B]
        return
    assert int(verified[1]) == len(cap.descriptor)
    pages = {int(p, 16) for p in verified[2].split()}
    assert desc.pages() - {0} == pages
    counts = [len(desc.report_ids(t)) for t in (ReportType.FEATURE, ReportType.INPUT, ReportType.OUTPUT)]
    assert counts == [int(verified[3]), int(verified[4]), int(verified[5])]


@needs_captures
@pytest.mark.parametrize("capture", CAPTURES, ids=ids(CAPTURES))
def test_capture_power_device_check(capture: Path) -> None:
    """Only the Megatec-over-HID bridge (vendor page 0xff00, 0665:5161) is not a Power Device."""
    cap = load_capture(capture)
    expected = "0665-5161" not in cap.name
    assert is_power_device(parse_descriptor(cap.descriptor)) is expected
    assert is_power_device(cap.descriptor) is expected


@needs_captures
def test_prolink_vendor_page_descriptor() -> None:
    cap = load_capture(CAPTURES_DIR / "Prolink__1250VA_Megatec_over_HID__0665-5161.capture")
    desc = parse_descriptor(cap.descriptor)
    assert desc.pages() == {0xFF00}
    assert desc.report_length(ReportType.INPUT, 0) == 8
    assert desc.report_length(ReportType.OUTPUT, 0) == 8
    assert not desc.uses_report_ids
    assert not is_power_device(desc)


@needs_captures
def test_one_report_id_for_feature_and_input() -> None:
    """5131:2007 uses id 0x0b for a 23-byte Feature report and a 7-byte Input report."""
    cap = load_capture(CAPTURES_DIR / "Unknown__5131-2007__nut-issue-3227.capture")
    desc = parse_descriptor(cap.descriptor)
    assert desc.report_length(ReportType.FEATURE, 0x0B) == 23 == len(cap.reports[("feature", 0x0B)])
    assert desc.report_length(ReportType.INPUT, 0x0B) == 7 == len(cap.reports[("input", 0x0B)])
    inputs = [nut_path(f) for f in desc.fields_of(ReportType.INPUT, 0x0B) if not f.padding]
    assert inputs[:2] == ["UPS.PowerSummary.RemainingCapacity", "UPS.PowerSummary.RunTimeToEmpty"]
    assert "UPS.PowerSummary.PresentStatus.ACPresent" in inputs


@needs_captures
def test_two_byte_main_item_data() -> None:
    """09d6:0001 writes Feature items as `b2 83 00`: flags are 16-bit, the item is 3 bytes long."""
    cap = load_capture(CAPTURES_DIR / "Unknown__UPS_HI__09d6-0001.capture")
    desc = parse_descriptor(cap.descriptor)
    first = desc.fields_of(ReportType.FEATURE, 0x01)
    assert nut_path(first[0]) == "UPS.Voltage"
    assert first[0].flags == 0x83 and first[0].is_constant and first[0].is_variable
    assert first[0].unit == 0x00F0D121 and first[0].unit_exponent == 1
    assert desc.report_ids(ReportType.INPUT) == [0x0F]
    # Current with `55 0e`: the unit exponent nibble 0xE is -2
    current = [f for f in desc.fields if nut_path(f) == "UPS.Current" and f.report_id == 0x65]
    assert current and current[0].unit_exponent == -2


@needs_captures
def test_vendor_collection_index_nodes_and_usage_zero() -> None:
    eaton = parse_descriptor(load_capture(CAPTURES_DIR / "Eaton__3S_700__0463-ffff.capture").descriptor)
    paths = {nut_path(f) for f in eaton.fields}
    assert "UPS.Flow.[4].ConfigVoltage" in paths
    assert "UPS.OutletSystem.Outlet.[1].PresentStatus.SwitchOn/Off" in paths
    liebert = parse_descriptor(load_capture(CAPTURES_DIR / "Liebert__GXT4__10af-0000.capture").descriptor)
    # Feature reports declared with usage 0x00: NUT prints the page's name for id 0
    assert nut_path(liebert.fields_of(ReportType.FEATURE, 0x09)[0]) == "UPS.PowerSummary.Undefined"
    # 4 elements, one usage: one field of 4 elements, as usbhid-ups makes one object
    assert [f.count for f in liebert.fields_of(ReportType.FEATURE, 0x09)] == [4]


# -- synthetic descriptors: every item kind -----------------------------------------------------------

PD = "05 84 09 04 a1 01 09 24 a1 00"  # Usage Page 0x84, UPS Application, PowerSummary Physical
END = "c0 c0"


def test_globals_locals_push_pop_and_long_items() -> None:
    desc = parse_hex(
        PD + " 85 01 75 08 95 01 15 00 26 ff 00"
        " a4"  # Push
        " 15 9c 25 64 09 36 b1 02"  # signed -100..100 Temperature
        " b4"  # Pop: back to 0..255
        " 09 35 b1 02"
        " fe 02 10 aa bb"  # long item (2 data bytes) is skipped
        " 0b 66 00 85 00 b1 02"  # extended usage 0x00850066 RemainingCapacity
        " 05 85 19 42 29 43 75 01 95 02 25 01 81 02"  # Usage Min/Max as 2 variables
        " 95 06 81 03"  # 6 bits of constant padding
        " 79 05 39 03 09 d0 75 08 95 01 b1 02" + " " + END  # String/Designator index
    )
    f = desc.fields_of(ReportType.FEATURE, 1)
    assert [nut_path(x) for x in f] == [
        "UPS.PowerSummary.Temperature",
        "UPS.PowerSummary.PercentLoad",
        "UPS.PowerSummary.RemainingCapacity",
        "UPS.PowerSummary.ACPresent",
    ]
    assert (f[0].logical_min, f[0].logical_max, f[0].is_signed) == (-100, 100, True)
    assert (f[1].logical_min, f[1].logical_max) == (0, 255)
    assert [x.offset for x in f] == [0, 8, 16, 24]
    assert f[3].string_index == 5 and f[3].designator_index == 3
    i = desc.fields_of(ReportType.INPUT, 1)
    assert [nut_path(x) for x in i if not x.padding] == [
        "UPS.PowerSummary.BelowRemainingCapacityLimit",
        "UPS.PowerSummary.RemainingTimeLimitExpired",
    ]
    assert [(x.offset, x.count, x.padding) for x in i] == [(0, 1, False), (1, 1, False), (2, 6, True)]
    assert desc.report_length(ReportType.INPUT, 1) == 2
    assert desc.report_length(ReportType.FEATURE, 1) == 5
    assert any("long item" in w for w in desc.warnings)


def test_logical_max_that_looks_negative_is_read_unsigned() -> None:
    """`15 00 25 ff`: usbhid-ups logs "interpreting LogMax -1 as 255" and so reads 0..255."""
    desc = parse_hex(PD + " 85 01 09 30 75 08 95 01 15 00 25 ff b1 02 85 02 09 31 75 10 26 ff ff b1 02 " + END)
    assert (desc.fields[0].logical_min, desc.fields[0].logical_max) == (0, 255)
    assert (desc.fields[1].logical_min, desc.fields[1].logical_max) == (0, 65535)
    assert any("read as 255" in w for w in desc.warnings)


def test_unit_exponent_nibble_and_byte_forms() -> None:
    desc = parse_hex(PD + " 85 01 75 08 95 01 55 0e 09 30 b1 02 55 fe 09 31 b1 02 55 07 09 32 b1 02 55 08 09 33 b1 02 " + END)
    assert [f.unit_exponent for f in desc.fields] == [-2, -2, 7, -8]


def test_arrays_select_usages() -> None:
    desc = parse_hex(PD + " 05 85 85 0c 19 42 29 47 15 01 25 06 75 08 95 02 b1 00 " + END)
    (arr,) = desc.fields
    assert arr.is_array and arr.count == 2 and arr.usage is None
    assert arr.array_usage(1) == 0x00850042 and arr.array_usage(6) == 0x00850047
    assert arr.array_usage(7) is None and arr.array_usage(0) is None


def test_delimiter_keeps_the_first_usage_of_a_set() -> None:
    desc = parse_hex(PD + " 85 01 75 08 95 01 a9 01 09 30 09 31 a9 00 b1 02 " + END)
    assert [nut_path(f) for f in desc.fields] == ["UPS.PowerSummary.Voltage"]


def test_vendor_collection_type_adds_an_index_node() -> None:
    desc = parse_hex("05 84 09 04 a1 01 09 1e a1 83 85 01 09 40 75 08 95 01 b1 02 c0 c0")
    assert desc.fields[0].usage_path == (0x00840004, 0x0084001E, INDEX_NODE | 3, 0x00840040)
    assert nut_path(desc.fields[0]) == "UPS.Flow.[3].ConfigVoltage"


def test_nested_collections_and_report_sizes_per_type() -> None:
    desc = parse_hex(
        PD + " 09 1a a1 02 85 05 09 30 75 10 95 01 b1 02 09 30 81 02 c0 09 1c a1 02 85 06 09 30 91 02 c0 " + END
    )
    assert [nut_path(f) for f in desc.fields] == ["UPS.PowerSummary.Input.Voltage"] * 2 + [
        "UPS.PowerSummary.Output.Voltage"
    ]
    assert desc.report_bits == {
        (ReportType.FEATURE, 5): 16,
        (ReportType.INPUT, 5): 16,
        (ReportType.OUTPUT, 6): 16,
    }
    assert [c.depth for c in desc.collections] == [0, 1, 2, 2]
    assert desc.collections[0].kind_name == "Application"


# -- malformed descriptors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hexbytes, offset, words",
    [
        ("05 84 09", 2, "needs 1 data bytes"),
        ("05 84 27 ff ff", 2, "needs 4 data bytes"),
        ("b4", 0, "Pop without a matching Push"),
        ("05 84 c0", 2, "End Collection without an open Collection"),
        ("96 ff ff 75 10 b1 02", 5, "grows to"),
        ("97 ff ff ff 7f", 0, "Report Count"),
        ("85 00", 0, "Report ID 0"),
        ("0d 01", 0, "reserved item type"),
        ("f0", 0, "main item tag 0xf is reserved"),
        ("fe 05 00 01", 0, "long item needs 5"),
        ("19 05 29 01 b1 02", 2, "below Usage Minimum"),
        ("a9 00", 0, "Delimiter close"),
        ("a4 " * (MAX_DEPTH + 1), MAX_DEPTH, "Push nested deeper"),
        ("a1 00 " * (MAX_DEPTH + 1), 2 * MAX_DEPTH, "nested deeper"),
        ("", 0, "empty"),
    ],
)
def test_malformed_descriptor_raises_hiderror_naming_the_offset(hexbytes: str, offset: int | None, words: str) -> None:
    with pytest.raises(HidError) as exc:
        parse_hex(hexbytes)
    assert words in str(exc.value)
    if offset is not None:
        assert exc.value.offset == offset
        assert str(exc.value).startswith(f"byte {offset}: ")


def test_not_bytes_and_not_hex() -> None:
    with pytest.raises(HidError):
        parse_descriptor("05 84")  # type: ignore[arg-type]
    with pytest.raises(HidError, match="not hex"):
        parse_hex("05 8g")


def test_unclosed_collection_and_push_are_tolerated_with_a_warning() -> None:
    desc = parse_hex("a4 05 84 09 04 a1 01 85 01 09 30 75 08 95 01 b1 02")
    assert len(desc.fields) == 1
    assert any("not closed" in w for w in desc.warnings)


def test_absurd_usage_range_is_bounded() -> None:
    """Usage Min 0 .. Max 0xffff over Report Count 65535 would declare 65535 fields: refused quickly."""
    t = time.monotonic()
    with pytest.raises(HidError, match="fields"):
        parse_hex("05 84 " + "19 00 2a ff ff 75 01 96 ff ff b1 02 " * 3)
    assert time.monotonic() - t < 2


# -- fuzzing: only HidError or success, quickly -------------------------------------------------------

TIME_LIMIT = 2.0


def _check(data: bytes) -> None:
    t = time.monotonic()
    try:
        desc = parse_descriptor(data)
    except HidError as exc:
        assert str(exc)
    else:
        for f in desc.fields:
            nut_path(f)
        is_power_device(desc)
    assert time.monotonic() - t < TIME_LIMIT


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=600))
def test_random_descriptors(data: bytes) -> None:
    _check(data)


_REAL = [load_capture(p).descriptor for p in CAPTURES]


@needs_captures
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=max(len(_REAL) - 1, 0)),
    st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 16), st.integers(0, 255), st.integers(0, 3)), max_size=8),
)
def test_mutated_real_descriptors(which: int, edits: list[tuple[int, int, int]]) -> None:
    data = bytearray(_REAL[which])
    for pos, byte, op in edits:
        i = pos % (len(data) + 1)
        if op == 0 and i < len(data):
            data[i] = byte
        elif op == 1:
            data.insert(i, byte)
        elif op == 2 and i < len(data):
            del data[i]
        else:
            del data[i:]
    _check(bytes(data))
