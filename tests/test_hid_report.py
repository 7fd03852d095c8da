"""HID report codec (nutlite.hid.report): the captures' NUT-decoded values, NUT's own log, bad input.

Oracles, read at test time from ../shared (skipped when absent):
* the `path` lines of ../shared/data/hid-captures/*.capture (how usbhid-ups decoded each field);
* the usbhid-ups debug log inside the nut-ddl dump of an APC Back-UPS CS 500, with the ranges, units
  and exponent NUT printed for every field;
* (interop) Debian's NUT 2.8.0 usbhid-ups itself, run in explore mode against every capture (and a few
  made-up descriptors with out-of-range values) through ../shared/tools/usbsim.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import selectors
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nutenv import require_real_nut
from test_hid_descriptor import CAPTURES, CAPTURES_DIR, SHARED, Capture, load_capture, needs_captures

from nutlite.hid import (
    HidError,
    ReportType,
    decode_field,
    decode_report,
    encode_report,
    nut_exponent,
    nut_path,
    parse_descriptor,
    parse_hex,
)
from nutlite.hid.fixups import fix_cyberpower
from nutlite.hid.report import get_bits, logical_value, set_bits
from nutlite.hid.usages import MGE_USAGES

CS500_DEV = SHARED / "ddl" / "APC" / "APC__Back-UPS_CS_500__usbhid-ups__2.8.0__01.dev"
USBSIM = SHARED.parent / "tools" / "usbsim"
NUT_DRIVER = Path("/lib/nut/usbhid-ups")


def same(a: float, b: float) -> bool:
    """Equal as NUT prints it (%g: six significant digits)."""
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)


def report_for(cap: Capture, rtype: ReportType, report_id: int) -> bytes:
    if rtype is ReportType.INPUT and ("input", report_id) in cap.reports:
        return cap.reports[("input", report_id)]
    return cap.reports[("feature", report_id)]  # NUT reads Input fields from the Feature report too


def match_capture(cap: Capture) -> tuple[int, int, list[str]]:
    """(matched, truncated-in-source, problems) over the capture's path lines."""
    desc = parse_descriptor(cap.descriptor)
    if "0764-" in cap.name:  # recorded with NUT's cps subdriver, which fixes this descriptor first
        fix_cyberpower(desc)
    extra = MGE_USAGES if "0463-" in cap.name else None  # recorded with NUT's mge subdriver
    matched = truncated = 0
    problems: list[str] = []
    for line in cap.paths:
        values = decode_report(desc, line.rtype, report_for(cap, line.rtype, line.report_id))
        hits = [v for v in values if v.field.offset == line.offset and v.field.size == line.size]
        if len(hits) != 1 or nut_path(hits[0].field, extra) != line.path:
            problems.append(f"{line.path} id={line.report_id:#04x} offset={line.offset}: got {[nut_path(h.field, extra) for h in hits]}")
            continue
        got = hits[0].value
        if same(got, line.value):
            matched += 1
        elif line.note and math.trunc(got) == line.value:
            # the capture notes the value came from a vectors file that kept only the integer part
            truncated += 1
        else:
            problems.append(f"{line.path}: value {got}, capture says {line.value:g}")
    return matched, truncated, problems


WITH_PATHS = [p for p in CAPTURES if load_capture(p).paths]


@needs_captures
@pytest.mark.parametrize("capture", WITH_PATHS, ids=[p.stem for p in WITH_PATHS])
def test_capture_path_lines_decode_as_nut_decoded_them(capture: Path) -> None:
    cap = load_capture(capture)
    matched, truncated, problems = match_capture(cap)
    assert not problems, "\n".join(problems)
    assert matched + truncated == len(cap.paths)
    # the only lines that differ are those the capture itself marks as truncated by its source
    assert truncated == sum(1 for p in cap.paths if p.note)


@needs_captures
def test_truncated_values_are_what_nut_printed() -> None:
    """APC Back-UPS 500's id 0x0a (iManufacturer) inherits the voltage Unit/Unit Exponent globals, so
    NUT prints raw 3 as 0.03 (the CS 500 debug log shows `Value: 0.03`); the capture's source kept 0."""
    cap = load_capture(CAPTURES_DIR / "APC__Back-UPS_500__051d-0002.capture")
    desc = parse_descriptor(cap.descriptor)
    (v,) = decode_report(desc, ReportType.FEATURE, cap.reports[("feature", 0x0A)])
    assert v.value == 0.03 and v.logical == 3
    assert nut_exponent(v.field.unit, v.field.unit_exponent) == -2


def _dev_log(text: str) -> tuple[bytes, list[tuple[bytes, dict[str, object]]]]:
    """Descriptor and (report, expectations) pairs from a usbhid-ups -DDDDD log."""
    desc_hex: list[str] = []
    entries: list[tuple[bytes, dict[str, object]]] = []
    state = None
    report = b""
    current: dict[str, object] = {}
    rep_hex: list[str] = []
    for line in text.splitlines():
        if m := re.search(r"Report Descriptor: \(\d+ bytes\) => (.*)", line):
            desc_hex, state = [m[1]], "d"
            continue
        if m := re.search(r"Report\[\w+\]: \(\d+ bytes\) => (.*)", line):
            rep_hex, state, current = [m[1]], "r", {}
            report = bytes.fromhex(m[1])
            continue
        if state and (m := re.search(r"\[D3\]\s+((?:[0-9a-f]{2} ?)+)\s*$", line)):
            (desc_hex if state == "d" else rep_hex).append(m[1])
            report = bytes.fromhex(" ".join(rep_hex)) if state == "r" else report
            continue
        state = None
        if m := re.search(r"PhyMax = (-?\d+), PhyMin = (-?\d+), LogMax = (-?\d+), LogMin = (-?\d+)", line):
            current["ranges"] = tuple(int(x) for x in m.groups())
        elif m := re.search(r"Unit = ([0-9a-f]+), UnitExp = (-?\d+)", line):
            current["unit"] = (int(m[1], 16), int(m[2]))
        elif m := re.search(r"\] Exponent = (-?\d+)", line):
            current["exponent"] = int(m[1])
        elif m := re.search(
            r"Path: (\S+), Type: (\w+), ReportID: 0x([0-9a-f]+), Offset: (\d+), Size: (\d+)(?:, Value: (\S+))?", line
        ):
            entry = dict(current, path=m[1], type=ReportType(m[2]), id=int(m[3], 16), offset=int(m[4]), size=int(m[5]))
            entry["value"] = float(m[6]) if m[6] is not None else None
            entries.append((report, entry))
            current = {}  # a Path line without a value (report not readable) comes without D5 lines
    return bytes.fromhex(" ".join(desc_hex)), entries


def check_log(text: str, fix: bool = False) -> tuple[int, int]:
    """Compare every Path line of a usbhid-ups debug log with nutlite's decoding; returns
    (path lines, objects NUT found)."""
    raw, entries = _dev_log(text)
    desc = parse_descriptor(raw)
    if fix:
        fix_cyberpower(desc)
    for report, e in entries:
        fields = [
            f
            for f in desc.fields_of(e["type"], e["id"])  # type: ignore[arg-type]
            if f.offset == e["offset"] and f.size == e["size"] and nut_path(f) == e["path"]
        ]
        assert fields, f"no field for {e}"
        f = fields[0]
        if "ranges" in e:
            assert (f.physical_max, f.physical_min, f.logical_max, f.logical_min) == e["ranges"], e
            assert (f.unit, f.unit_exponent) == e["unit"], e
            assert nut_exponent(f.unit, f.unit_exponent) == e["exponent"], e
        if e["value"] is not None:
            data = report[1:] if desc.uses_report_ids else report
            first = dataclasses.replace(f, count=1)  # NUT reads the first element (and may read a short report)
            assert same(decode_field(first, data).value, e["value"]), (e, decode_field(first, data))  # type: ignore[arg-type]
    objects = re.search(r"(\d+) HID objects found", text)
    if objects:
        assert int(objects[1]) == sum(1 for f in desc.fields if f.is_variable and not f.padding)
    return len(entries), int(objects[1]) if objects else -1


@pytest.mark.skipif(not CS500_DEV.is_file(), reason="../shared/data/ddl is not there")
def test_nut_debug_log_of_back_ups_cs_500() -> None:
    """All 35 Path lines: same field, logical/physical ranges, unit, unit exponent, NUT exponent, value."""
    n, objects = check_log(CS500_DEV.read_text())
    assert (n, objects) == (35, 35)


# -- NUT's reading of out-of-range values and ranges (observed with NUT 2.8.0 through usbsim) ----------

# descriptor, report, value NUT printed
OBSERVED = [
    ("15 00 25 64", "c8", 72),  # 0..100: keeps 7 bits of 200, then clamps
    ("15 00 25 64", "ff", 100),
    ("15 00 25 64", "80", 0),
    ("15 00 25 64", "65", 100),
    ("15 00 25 0a", "1b", 10),
    ("15 f0 25 0f", "1f", -1),  # -16..15: 5 bits, sign-extended
    ("15 f0 25 0f", "10", -16),
    ("15 f0 25 0f", "e0", 0),
    ("15 ff 25 64", "40", 64),
    ("15 fe 25 03", "04", -2),
    ("15 32 25 3c", "2c", 50),
    ("15 00 25 00", "05", 0),
    ("15 9c 25 64", "7f", 100),
    ("15 9c 25 64", "ff", -1),
    ("15 81 25 ff", "05", -1),
    ("15 00 25 ff", "ff", 255),  # LogMax -1 read as 255
    ("15 00 25 64 35 0a 45 00", "05", 5),  # PhyMin > PhyMax: no scaling
    ("15 00 25 64 35 05 45 05", "05", 5),  # PhyMin == PhyMax: no scaling
    ("15 00 26 ff 00 35 00 45 ff", "02", 2),  # PhyMax -1: no scaling
    ("15 00 26 ff 00 65 00 55 0e", "7b", 1.23),  # no unit, exponent -2 still applies
    ("15 00 26 ff 00 65 13 55 00", "05", 5),  # English linear unit: no base correction
    ("15 00 26 ff 00 66 21 d1 55 07", "05", 5),  # watts with unit exponent 7
]


def _observed_descriptor(globals_hex: str) -> str:
    return "05 84 09 04 a1 01 09 24 a1 00 85 01 09 30 75 08 95 01 " + globals_hex + " b1 02 c0 c0"


@pytest.mark.parametrize("globals_hex, report, expected", OBSERVED)
def test_values_as_nut_reads_them(globals_hex: str, report: str, expected: float) -> None:
    desc = parse_hex(_observed_descriptor(globals_hex))
    (v,) = decode_report(desc, ReportType.FEATURE, bytes.fromhex("01 " + report))
    assert same(v.value, expected)


def test_physical_scaling_and_sign_extension() -> None:
    """CyberPower's delay: logical -1..32767, physical -60..1966020 (minutes read as seconds)."""
    desc = parse_hex(_observed_descriptor("75 10 15 ff 26 ff 7f 35 c4 47 c4 ff 1d 00 66 01 10"))
    f = desc.fields[0]
    assert decode_report(desc, ReportType.FEATURE, b"\x01\xff\xff")[0].value == -60
    assert decode_report(desc, ReportType.FEATURE, b"\x01\x02\x00")[0].value == 120
    assert encode_report(desc, ReportType.FEATURE, 1, {f: 120}) == b"\x01\x02\x00"
    assert encode_report(desc, ReportType.FEATURE, 1, {f: -60}) == b"\x01\xff\xff"


def test_bits_across_byte_boundaries() -> None:
    data = bytearray(4)
    set_bits(data, 5, 13, 0x1ABC)
    assert get_bits(data, 5, 13) == 0x1ABC
    assert int.from_bytes(data, "little") == 0x1ABC << 5
    set_bits(data, 0, 5, 0x1F)
    assert get_bits(data, 5, 13) == 0x1ABC and get_bits(data, 0, 5) == 0x1F
    with pytest.raises(HidError, match="past the 4 data bytes"):
        get_bits(data, 30, 4)


def test_encode_keeps_the_other_fields_of_a_base_report() -> None:
    """A SET_REPORT after a GET_REPORT: change AudibleAlarmControl-like bits, keep the rest."""
    cap = load_capture(CAPTURES_DIR / "CyberPower__CP1500PFCLCD__0764-0501.capture") if CAPTURES else None
    if cap is None:
        pytest.skip("../shared/data/hid-captures is not there")
    desc = parse_descriptor(cap.descriptor)
    base = cap.reports[("feature", 0x08)]  # RemainingCapacity, RunTimeToEmpty, RemainingTimeLimit
    limit = next(f for f in desc.fields_of(ReportType.FEATURE, 0x08) if nut_path(f).endswith("RemainingTimeLimit"))
    new = encode_report(desc, ReportType.FEATURE, 0x08, {limit: 120}, base=base)
    assert new == bytes.fromhex("08 64 dc 23 78 00")
    values = {nut_path(v.field): v.value for v in decode_report(desc, ReportType.FEATURE, new)}
    assert values["UPS.PowerSummary.RemainingTimeLimit"] == 120
    assert values["UPS.PowerSummary.RunTimeToEmpty"] == 9180
    with pytest.raises(HidError, match="outside the field's range"):
        encode_report(desc, ReportType.FEATURE, 0x08, {limit: 601}, base=base)  # logical max 600
    with pytest.raises(HidError, match="belongs to"):
        encode_report(desc, ReportType.FEATURE, 0x07, {limit: 1})
    with pytest.raises(HidError, match="no Output report"):
        encode_report(desc, ReportType.OUTPUT, 0x08, {})


def test_encode_scales_back_with_the_exponent() -> None:
    desc = parse_hex(_observed_descriptor("75 10 15 00 27 fe ff 00 00 67 21 d1 f0 00 55 05"))
    f = desc.fields[0]
    report = encode_report(desc, ReportType.FEATURE, 1, {f: 13.58})
    assert report == b"\x01\x4e\x05"  # 1358 centivolts, as the CS 500 reports 13.58 V
    assert decode_report(desc, ReportType.FEATURE, report)[0].value == 13.58
    with pytest.raises(HidError, match="not a number"):
        encode_report(desc, ReportType.FEATURE, 1, {f: "x"})  # type: ignore[dict-item]


def test_truncated_and_unknown_reports() -> None:
    desc = parse_hex(_observed_descriptor("75 10 15 00 26 ff 7f"))
    with pytest.raises(HidError) as exc:
        decode_report(desc, ReportType.FEATURE, b"\x01\x05")
    assert exc.value.offset == 2 and "is 2 bytes, the descriptor says 3" in str(exc.value)
    assert decode_report(desc, ReportType.FEATURE, b"\x01\x05", strict=False) == []
    with pytest.raises(HidError, match="no Feature report 0x02"):
        decode_report(desc, ReportType.FEATURE, b"\x02\x05\x00")
    with pytest.raises(HidError, match="empty"):
        decode_report(desc, ReportType.FEATURE, b"")
    with pytest.raises(HidError, match="no Input report"):
        decode_report(desc, ReportType.INPUT, b"\x01\x05\x00")


def test_array_and_repeated_variable_elements() -> None:
    desc = parse_hex(
        "05 84 09 04 a1 01 05 85 85 0c 19 42 29 47 15 01 25 06 75 08 95 02 b1 00"
        " 85 0d 09 66 15 00 26 ff 00 95 03 b1 02 c0"
    )
    (arr,) = decode_report(desc, ReportType.FEATURE, b"\x0c\x03\x00")
    assert arr.values == (3, 0) and arr.usages == (0x00850044, None)  # Charging; 0 selects nothing
    (rep,) = decode_report(desc, ReportType.FEATURE, b"\x0d\x0a\x14\x1e")
    assert rep.value == 10 and rep.values == (10, 20, 30)  # NUT reads the first element
    assert logical_value(rep.field, 0x1E) == 30
    assert encode_report(desc, ReportType.FEATURE, 0x0D, {rep.field: [1, 2, 3]}) == b"\x0d\x01\x02\x03"
    assert encode_report(desc, ReportType.FEATURE, 0x0C, {arr.field: [6, 0]}) == b"\x0c\x06\x00"
    with pytest.raises(HidError, match="at most 3 values"):
        encode_report(desc, ReportType.FEATURE, 0x0D, {rep.field: [1, 2, 3, 4]})
    with pytest.raises(HidError, match="does not fit"):
        encode_report(desc, ReportType.FEATURE, 0x0C, {arr.field: [256]})


# -- fuzzing reports: only HidError or success --------------------------------------------------------

_DESCS = [(p.stem, parse_descriptor(load_capture(p).descriptor)) for p in CAPTURES]


@needs_captures
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, max(len(_DESCS) - 1, 0)), st.sampled_from(list(ReportType)), st.binary(max_size=80), st.booleans())
def test_random_reports(which: int, rtype: ReportType, report: bytes, strict: bool) -> None:
    _name, desc = _DESCS[which]
    t = time.monotonic()
    try:
        values = decode_report(desc, rtype, report, strict=strict)
    except HidError as exc:
        assert str(exc)
    else:
        for v in values:
            float(v.value)
    assert time.monotonic() - t < 2


_FEATURES = [
    (desc, rid) for _name, desc in _DESCS for rid in desc.report_ids(ReportType.FEATURE) if desc.fields_of(ReportType.FEATURE, rid)
]


@needs_captures
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, max(len(_FEATURES) - 1, 0)), st.randoms(use_true_random=False))
def test_encode_round_trips_every_value_nut_can_read(which: int, rnd: random.Random) -> None:
    """Any value decoded from any report encodes back to bits that decode to the same value."""
    desc, rid = _FEATURES[which]
    n = desc.report_length(ReportType.FEATURE, rid)
    report = bytes([rid] if rid else []) + bytes(rnd.randrange(256) for _ in range(n - (1 if rid else 0)))
    decoded = [v for v in decode_report(desc, ReportType.FEATURE, report) if v.field.is_variable]
    rebuilt = encode_report(desc, ReportType.FEATURE, rid, {v.field: v.value for v in decoded})
    again = {v.field.offset: v.value for v in decode_report(desc, ReportType.FEATURE, rebuilt) if v.field.is_variable}
    assert again == {v.field.offset: v.value for v in decoded}


# -- interop: NUT's usbhid-ups (explore) against every capture, through usbsim ------------------------


@pytest.fixture(scope="module")
def usbsim_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not NUT_DRIVER.is_file():
        require_real_nut()  # fails instead of skipping where the real NUT is required (CI as root)
    if not NUT_DRIVER.is_file() or os.geteuid() != 0:
        pytest.skip("needs Debian's NUT 2.8.0 usbhid-ups, run as root")
    if not (USBSIM / "Makefile").is_file() or not shutil.which("gcc") or not shutil.which("make"):
        pytest.skip("needs ../shared/tools/usbsim and gcc")
    build = tmp_path_factory.mktemp("usbsim")
    subprocess.run(["make", "-s", f"BUILD={build}"], cwd=USBSIM, check=True, capture_output=True, timeout=120)
    return build


def run_explore(lib: Path, work: Path, capture_text: str, vid: str, pid: str) -> str:
    """Run usbhid-ups -x explore -DDDDD once and return its log."""
    (work / "etc").mkdir(parents=True)
    (work / "state").mkdir()
    (work / "etc" / "ups.conf").write_text(f"[ups]\ndriver = usbhid-ups\nport = auto\npollonly\nvendorid = {vid}\n")
    (work / "dev.capture").write_text(capture_text)
    (work / "ov.usbsim").write_text(f"usb {vid}:{pid}\n")
    env = dict(
        os.environ,
        NUT_CONFPATH=str(work / "etc"),
        NUT_STATEPATH=str(work / "state"),
        LD_LIBRARY_PATH=str(lib),
        USBSIM_DEVICE=f"{work / 'dev.capture'}:{work / 'ov.usbsim'}",
    )
    cmd = [str(NUT_DRIVER), "-a", "ups", "-u", "root", "-DDDDD", "-x", "explore"]
    # the driver polls for ever: read its log until its first walk is over ("upsdrv_initinfo"), then stop it
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    deadline = time.monotonic() + 15
    try:
        with selectors.DefaultSelector() as sel:
            assert proc.stdout is not None
            sel.register(proc.stdout, selectors.EVENT_READ)
            buf = b""
            while time.monotonic() < deadline:
                if not sel.select(timeout=0.5):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                if b"upsdrv_initinfo" in buf or b"No matching HID UPS found" in buf:
                    break
            lines.append(buf.decode(errors="replace"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return "".join(lines)


@pytest.mark.interop
@needs_captures
def test_nut_explore_decodes_every_capture_like_nutlite(usbsim_lib: Path, tmp_path: Path) -> None:
    """Every Path line NUT prints for every capture: same field (path, type, id, offset, size), ranges,
    unit, exponent and value; and the same number of HID objects."""
    total = 0
    for i, capture in enumerate(CAPTURES):
        m = re.search(r"__([0-9a-f]{4})-([0-9a-f]{4})\.capture$", capture.name)
        vid, pid = (m[1], m[2]) if m else ("5131", "2007")
        log = run_explore(usbsim_lib, tmp_path / str(i), capture.read_text(), vid, pid)
        n, objects = check_log(log)
        assert n > 0 and objects > 0, f"{capture.name}: NUT printed nothing\n{log[-2000:]}"
        total += n
    assert total > 600


@pytest.mark.interop
def test_nut_reads_out_of_range_values_as_nutlite(usbsim_lib: Path, tmp_path: Path) -> None:
    """The OBSERVED table above, checked against the real driver."""
    for i, (globals_hex, report, expected) in enumerate(OBSERVED):
        text = f"descriptor: {_observed_descriptor(globals_hex)}\nreport get 01 : 01 {report}\n"
        log = run_explore(usbsim_lib, tmp_path / str(i), text, "5131", "0001")
        n, _objects = check_log(log)
        assert n == 1, log[-2000:]
        value = float(re.search(r"Value: (\S+)", log)[1])  # type: ignore[index]
        assert same(value, expected), (globals_hex, report, value)


def random_reports_capture(descriptor: bytes, seed: str) -> str:
    """A capture with random bytes for every report id the descriptor declares (Feature, Input and
    Output ids alike: NUT reads every field with GET_REPORT)."""
    desc = parse_descriptor(descriptor)
    rng = random.Random(seed)
    lengths: dict[int, int] = {}
    for rtype, rid in desc.report_bits:
        if rid:
            lengths[rid] = max(lengths.get(rid, 0), desc.report_length(rtype, rid))
    lines = [f"descriptor: {descriptor.hex(' ')}"]
    for rid, n in sorted(lengths.items()):
        data = bytes([rid]) + bytes(rng.randrange(256) for _ in range(n - 1))
        lines.append(f"report get {rid:02x} : {data.hex(' ')}")
    return "\n".join(lines) + "\n"


@pytest.mark.interop
@needs_captures
def test_nut_explore_decodes_random_reports_like_nutlite(usbsim_lib: Path, tmp_path: Path) -> None:
    """Differential fuzzing: every real descriptor, random bytes in every report, read by NUT and by
    nutlite; every value NUT prints (in range or not, signed or not, scaled or not) must agree."""
    values = 0
    for i, capture in enumerate(CAPTURES):
        cap = load_capture(capture)
        m = re.search(r"__([0-9a-f]{4})-([0-9a-f]{4})$", cap.name)
        vid, pid = (m[1], m[2]) if m else ("5131", "2007")
        for seed in range(5):
            text = random_reports_capture(cap.descriptor, f"{cap.name}/{seed}")
            log = run_explore(usbsim_lib, tmp_path / f"{i}-{seed}", text, vid, pid)
            check_log(log)
            values += len(re.findall(r"Path: .*, Value: ", log))
    assert values > 1000
