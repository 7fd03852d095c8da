"""``nutlite hid-dump``: what a HID UPS says, field by field, and a capture of it for a bug report.

It opens a USB device the way usbhid-ups does (the same matching settings, given as ``-x key=value``)
or replays a capture / NUT debug-log dump, reads the report descriptor and every Feature and Input
report once, and prints the descriptor, its fields and one ``path`` line per field in the format of
the HID captures (``path <usage path> type=<Feature|Input|Output> id=<hex> offset=<n> size=<n>
value=<n>``, the value as usbhid-ups's debug log prints it). ``--record FILE`` writes all of it as
a ``.capture`` that ``replay = FILE`` reproduces.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass, field
from typing import Any

from nutlite import __version__
from nutlite.hid import Descriptor, HidError, ReportType, decode_report, nut_path, parse_descriptor
from nutlite.hid.fixups import fix_cyberpower
from nutlite.usb import SETTINGS, UsbConfigError, UsbError, UsbMatcher

PROG = "nutlite hid-dump"
#: the -x settings besides the matching ones
EXTRA = ("subdriver", "replay", "explore", "disable_fix_report_desc")
#: string-index usages whose strings a capture should carry (the driver reads them)
STRING_USAGES = ("iManufacturer", "iProduct", "iSerialNumber", "iDeviceChemistry", "iOEMInformation", "iName")

HELP = f"""usage: {PROG} [-x key=value ...] [--record FILE] [FILE]

Read a USB HID UPS (the first one usbhid-ups would take, or the one the -x settings match) or a
capture file (a .capture or a NUT debug-log .dev dump), and print its HID report descriptor, each
field, and every field's value as a "path" line, as usbhid-ups's debug log shows them.

Options:
  FILE              read this capture file instead of a USB device (as the replay setting)
  -x key=value      a usbhid-ups matching setting: vendorid, productid, vendor, product, serial,
                    bus, device, busport, subdriver; -x explore takes any HID device of vendorid
  --record FILE     also write what was read as a .capture (descriptor, strings, ids, reports) to
                    attach to a bug report; replay = FILE reproduces the device
  -h, --help        show this help

Examples:
  {PROG}
  {PROG} -x vendorid=0764 --record my-ups.capture
  {PROG} my-ups.capture
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{PROG}: {message}\nTry '{PROG} -h' for more information.", file=sys.stderr)
        raise SystemExit(2)


@dataclass
class Dump:
    """Everything read from one device."""

    source: str
    info: Any
    descriptor_bytes: bytes
    descriptor: Descriptor
    subdriver: str | None
    usages: dict[int, str]
    indexes: dict[str, int]
    bcd: dict[str, int]
    endpoints: dict[str, int | None]
    interface: int
    strings: dict[int, str] = field(default_factory=dict)
    reports: dict[tuple[ReportType, int], bytes] = field(default_factory=dict)
    missing: dict[tuple[ReportType, int], str] = field(default_factory=dict)
    fixes: list[str] = field(default_factory=list)


def _settings(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        key = key.strip().lower()
        if key not in SETTINGS and key not in EXTRA:
            raise UsbConfigError(key, value, f"not a setting of {PROG} (it takes {', '.join(SETTINGS + EXTRA)})",
                                 "-x")
        out[key] = value if sep else ""
    return out


def _accept_for(settings: dict[str, str]) -> Any:
    from nutlite.drivers.tables.hidups import claim

    def accept(info: Any) -> bool:
        if "explore" in settings or "subdriver" in settings:
            return True
        sub, _why = claim(info.vendor_id, info.product_id, any_product="productid" in settings)
        return sub is not None

    return accept


def _subdriver(settings: dict[str, str], vendor_id: int, product_id: int) -> Any:
    from nutlite.drivers.tables.hidups import claim, subdriver_for

    if settings.get("subdriver"):
        return subdriver_for(vendor_id, settings["subdriver"])
    if "explore" in settings:
        return None
    return claim(vendor_id, product_id, any_product="productid" in settings)[0]


def read_device(settings: dict[str, str]) -> Dump:
    """Open the device the settings mean (or replay), read the descriptor, strings and every report."""
    from nutlite.usb.transport import backend_for, open_device

    replay = settings.get("replay") or None
    matcher = UsbMatcher.from_config({k: v for k, v in settings.items() if k in SETTINGS}, "-x")
    backend = backend_for(replay)
    dev = open_device(matcher, backend, accept=None if replay else _accept_for(settings))
    try:
        return _read(dev, settings, replay)
    finally:
        dev.close()


def _read(dev: Any, settings: dict[str, str], replay: str | None) -> Dump:
    info = dev.info
    raw = dev.report_descriptor()
    try:
        descriptor = parse_descriptor(raw)
    except HidError as exc:
        raise UsbError(f"USB device {info.ids}: its HID report descriptor is malformed: {exc}") from None
    sub = _subdriver(settings, info.vendor_id, info.product_id)
    pyusb_dev = dev._dev  # the descriptor fields below are not part of UsbHidDevice's interface
    dump = Dump(
        source=f"replay of {replay}" if replay else f"USB device {info.describe()}",
        info=info, descriptor_bytes=raw, descriptor=descriptor,
        subdriver=sub.version_data if sub is not None else None,
        usages=dict(sub.usages) if sub is not None else {},
        indexes={"imanufacturer": pyusb_dev.iManufacturer, "iproduct": pyusb_dev.iProduct,
                 "iserial": pyusb_dev.iSerialNumber},
        bcd={"bcddevice": pyusb_dev.bcdDevice, "bcdusb": pyusb_dev.bcdUSB},
        endpoints={"ep-in": dev.ep_in, "ep-out": dev.ep_out, "maxpacket": dev.in_packet_size or None},
        interface=dev.interface)
    if sub is not None and sub.extra.get("fix") == "cyberpower" and "disable_fix_report_desc" not in settings:
        dump.fixes = list(fix_cyberpower(descriptor))
    for index in sorted({i for i in dump.indexes.values() if i}):
        _string(dev, dump, index)
    for rtype in (ReportType.FEATURE, ReportType.INPUT):
        for rid in descriptor.report_ids(rtype):
            length = descriptor.report_length(rtype, rid)
            try:
                dump.reports[(rtype, rid)] = dev.get_report(rtype, rid, length)
            except UsbError as exc:
                dump.missing[(rtype, rid)] = str(exc).rsplit(": ", 1)[-1]
    for (rtype, _rid), data in list(dump.reports.items()):
        try:
            values = decode_report(descriptor, rtype, data, strict=False)
        except HidError:
            continue
        for v in values:
            if v.field.usage_path and nut_path(v.field, dump.usages).rsplit(".", 1)[-1] in STRING_USAGES:
                if 0 < v.logical < 256 and v.logical not in dump.strings:
                    _string(dev, dump, v.logical)
    return dump


def _string(dev: Any, dump: Dump, index: int) -> None:
    try:
        text = dev.get_string(index)
    except (UsbError, ValueError):
        return
    if text is not None:
        dump.strings[index] = text


def nut_value(value: float) -> str:
    """A value as usbhid-ups's debug log prints it (C's %g)."""
    return f"{value:g}"


def _report_hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _report_kind(rtype: ReportType) -> str:
    return "int" if rtype is ReportType.INPUT else "get"


def descriptor_lines(dump: Dump) -> list[str]:
    d = dump.descriptor
    ids = "; ".join(f"{t.value} " + (" ".join(f"{i:02x}" for i in d.report_ids(t)) or "none")
                    for t in (ReportType.FEATURE, ReportType.INPUT, ReportType.OUTPUT))
    out = [f"descriptor: {_report_hex(dump.descriptor_bytes)}",
           f"# descriptor: {d.length} bytes, {len(d.fields)} fields, {len(d.collections)} collections; "
           f"report ids: {ids}"]
    out += [f"# descriptor fix: {fix}" for fix in dump.fixes]
    out += [f"# descriptor warning: {w}" for w in d.warnings]
    for f in d.fields:
        if f.padding:
            continue
        kind = "Array" if f.is_array else "Variable"
        out.append(f"# field {nut_path(f, dump.usages) or '(no usage)'} type={f.report_type.value} "
                   f"id={f.report_id:02x} offset={f.offset} size={f.size} count={f.count} {kind} "
                   f"logical={f.logical_min}..{f.logical_max} physical={f.physical_min}..{f.physical_max} "
                   f"unit={f.unit:08x} unitexp={f.unit_exponent}")
    return out


def path_lines(dump: Dump) -> list[str]:
    """The ``report`` lines and, after each, a ``path`` line per field (Variable fields, as NUT)."""
    out: list[str] = []
    d = dump.descriptor
    for rtype in (ReportType.FEATURE, ReportType.INPUT):
        for rid in d.report_ids(rtype):
            data = dump.reports.get((rtype, rid))
            if data is None:
                why = dump.missing.get((rtype, rid), "not read")
                out.append(f"# report {rtype.value} {rid:02x}: not available ({why})")
                continue
            out.append(f"report {_report_kind(rtype)} {rid:02x} : {_report_hex(data)}")
            try:
                values = decode_report(d, rtype, data, strict=False)
            except HidError as exc:
                out.append(f"# report {rtype.value} {rid:02x}: cannot be decoded: {exc}")
                continue
            for v in values:
                if v.field.is_array or not v.field.usage_path:
                    continue
                f = v.field
                out.append(f"path {nut_path(f, dump.usages)} type={f.report_type.value} id={f.report_id:02x} "
                           f"offset={f.offset} size={f.size} value={nut_value(v.value)}")
    return out


def capture_text(dump: Dump) -> str:
    """A .capture of the dump: header, usbsim device lines, descriptor, reports, path lines."""
    info = dump.info
    names = " ".join(f'"{s.strip()}"' for s in (info.vendor, info.product) if s and s.strip()) or "(no strings)"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    missing = ", ".join(f"{t.value} {i:02x}" for t, i in dump.missing)
    lines = [f"# source: recorded by nutlite hid-dump {__version__} from {dump.source}, {now}",
             f"# device: {names}, VID:PID {info.ids}, subdriver {dump.subdriver or 'none (not claimed)'}",
             f"# complete: {'partial (reports the device refused: ' + missing + ')' if missing else 'yes'}",
             f"usb {info.vendor_id:04x}:{info.product_id:04x}",
             f"bcddevice {dump.bcd['bcddevice']:04x}", f"bcdusb {dump.bcd['bcdusb']:04x}"]
    lines += [f"{k} {v}" for k, v in dump.indexes.items()]
    lines += [f"string {i} : {text}" for i, text in sorted(dump.strings.items())]
    lines.append(f"interface {dump.interface}")
    ep_in, ep_out, size = dump.endpoints["ep-in"], dump.endpoints["ep-out"], dump.endpoints["maxpacket"]
    lines.append(f"ep-in {ep_in:02x}" if ep_in is not None else "# no interrupt IN endpoint")
    lines.append(f"ep-out {ep_out:02x}" if ep_out is not None else "ep-out none")
    if size:
        lines.append(f"maxpacket {size}")
    lines += descriptor_lines(dump) + path_lines(dump)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = _Parser(prog=PROG, add_help=False)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("-x", action="append", default=[], metavar="key=value")
    p.add_argument("--record", metavar="FILE")
    p.add_argument("file", nargs="?")
    args = p.parse_args(argv)
    if args.help:
        print(HELP, end="")
        return 0
    try:
        settings = _settings(args.x)
        if args.file:
            settings["replay"] = args.file
        dump = read_device(settings)
    except (UsbError, UsbConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    info = dump.info
    print(f"# {dump.source}; subdriver: {dump.subdriver or 'none'}")
    if info.serial:
        print(f"# serial: {info.serial.strip()}")
    for line in descriptor_lines(dump) + path_lines(dump):
        print(line)
    if args.record:
        try:
            with open(args.record, "w", encoding="utf-8") as f:
                f.write(capture_text(dump))
        except OSError as exc:
            print(f"{PROG}: cannot write {args.record}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"{PROG}: wrote {args.record} (replay it with: -x replay={args.record})", file=sys.stderr)
    return 0
