"""``nutlite scan``: NUT's ``nut-scanner`` for the USB UPSes nutlite's drivers can drive (``-U``) and
the SNMP UPSes of a subnet (``-S``, :mod:`nutlite.snmp.scan`).

It lists the USB devices (pyusb, as the drivers see them), keeps those a nutlite driver takes
(usbhid-ups by its subdriver tables; nutdrv_qx for the Q1-over-USB ids when that transport is in this
build) and prints a ups.conf section for each in nut-scanner 2.8.0's layout (checked against Debian's
nut-scanner through usbsim): ``[nutdevN]``, then tab-indented ``key = "value"`` lines in the order
driver, port, vendorid, productid, product, serial, vendor, bus. ``-P`` prints nut-scanner's
parsable ``USB:key="value",...`` lines instead.
"""

from __future__ import annotations

import sys
from typing import Any

from nutlite.tools.common import NUT_VERSION, GetoptError, getopt, scanner_sections
from nutlite.usb import UsbDeviceInfo, UsbError

PROG = "nutlite scan"

HELP = f"""usage: {PROG} [-U] [-S -m CIDR | -s START -e END | --snmp RANGE] [options] [-N | -P] [-q] [-V]

List the UPSes a nutlite driver can drive, and print a ready ups.conf section for each, as
nut-scanner does: the USB UPSes attached to this machine (-U, the default), and the SNMP UPSes of
a network (-S).

Options:
  -U, --usb_scan            scan USB devices (the default without -S)
  -S, --snmp_scan           scan SNMP agents in the range of -m, or -s and -e
  --snmp RANGE              the same as -S -m RANGE
  -C, --complete_scan       scan USB, and SNMP if a range is given
  -m, --mask_cidr CIDR      SNMP: the addresses of a network (10.0.0.0/24), or a range
                            (10.0.0.5-10.0.0.20, 10.0.0.5-20)
  -s, --start_ip ADDR       SNMP: the first address to scan
  -e, --end_ip ADDR         SNMP: the last address to scan
  -t, --timeout SECONDS     SNMP: seconds to wait for an answer (1; each probe is tried twice)
  -T, --thread N            SNMP: at most N agents probed at once (256)
  --rate N                  SNMP: at most N new probes a second (500)
  --snmp-port PORT          SNMP: the agents' UDP port (161)
  -c, --community NAME      SNMP v1/v2c community (public; repeat it to try several)
  -l, --secLevel LEVEL      SNMPv3: noAuthNoPriv, authNoPriv or authPriv (scans with v3 instead)
  -u, --secName USER        SNMPv3: the user name
  -w, --authProtocol P      SNMPv3: MD5, SHA, SHA224, SHA256, SHA384 or SHA512 (MD5)
  -W, --authPassword PW     SNMPv3: the authentication pass phrase
  -x, --privProtocol P      SNMPv3: DES, AES, AES192 or AES256 (DES)
  -X, --privPassword PW     SNMPv3: the privacy pass phrase
  -N, --disp_nut_conf       print the result in the ups.conf format (the default)
  -P, --disp_parsable       print the result in nut-scanner's parsable format
  -q, --quiet               print only the result, not the bus being scanned
  -V, --version             print the version
  -h, --help                show this help

An SNMP agent is asked with SNMP v2c, then v1, for each community; a section names the MIB mapping
that snmp-ups detects for it (one section per device: nut-scanner lists every mapping whose probe
answers). Scan only networks you are responsible for.
"""

_OPTSTRING = "UCSNPqVhm:s:e:t:T:c:l:u:w:W:x:X:"
_LONG = {"--usb_scan": "U", "--complete_scan": "C", "--snmp_scan": "S", "--disp_nut_conf": "N",
         "--disp_parsable": "P", "--quiet": "q", "--version": "V", "--help": "h", "--mask_cidr": "m",
         "--start_ip": "s", "--end_ip": "e", "--timeout": "t", "--thread": "T", "--community": "c",
         "--secLevel": "l", "--secName": "u", "--authProtocol": "w", "--authPassword": "W",
         "--privProtocol": "x", "--privPassword": "X"}
_OWN_LONG = ("--snmp", "--rate", "--snmp-port")  # nutlite's, with an argument


def _q1_ids() -> dict[tuple[int, int], str]:
    """The Q1-over-USB ids and the driver to suggest for each: nutdrv_qx where it takes the id (as
    nut-scanner suggests), else blazer_usb (ffff:0000, which nutlite's nutdrv_qx does not drive)."""
    from nutlite.drivers.transports.q1usb import usb_ids

    out: dict[tuple[int, int], str] = {}
    for vid, pid, driver, _ in usb_ids():
        if pid is not None and out.get((vid, pid)) != "nutdrv_qx":
            out[(vid, pid)] = driver
    return out


def driver_for(info: UsbDeviceInfo, q1_ids: dict[tuple[int, int], str]) -> str | None:
    """The nutlite driver that takes a device with ``port = auto`` and its ids, or None."""
    from nutlite.drivers.programs.usbhid_ups import MEGATEC_BRIDGES
    from nutlite.drivers.tables.hidups import claim

    ids = (info.vendor_id, info.product_id)
    if ids in q1_ids:
        return q1_ids[ids]
    if ids not in MEGATEC_BRIDGES and claim(*ids)[0] is not None:
        return "usbhid-ups"
    return None


def section_items(info: UsbDeviceInfo, driver: str) -> list[tuple[str, str]]:
    """The settings of one section, in nut-scanner's order (strings only when the device has them)."""
    items = [("driver", driver), ("port", "auto"), ("vendorid", f"{info.vendor_id:04X}"),
             ("productid", f"{info.product_id:04X}")]
    for key in ("product", "serial", "vendor"):
        value = (getattr(info, key) or "").strip()
        if value:
            items.append((key, value))
    items.append(("bus", f"{info.bus:03d}"))
    return items


def format_sections(found: list[tuple[UsbDeviceInfo, str]], parsable: bool = False) -> str:
    return scanner_sections("USB", [section_items(info, driver) for info, driver in found], parsable)


def scan(backend: Any = None) -> tuple[list[tuple[UsbDeviceInfo, str]], list[str]]:
    """(device, driver) for every USB UPS a nutlite driver takes, and notes for the user."""
    from nutlite.drivers.tables.hidups import OTHER_DRIVER
    from nutlite.usb.transport import list_devices

    q1 = _q1_ids()
    found, notes = [], []
    for info in list_devices(backend):
        driver = driver_for(info, q1)
        if driver is None:
            other = OTHER_DRIVER.get((info.vendor_id, info.product_id))
            if other:  # nut-scanner lists it with a driver nutlite does not have
                notes.append(f"USB device {info.describe()} is a UPS, but {other}, which nutlite does not "
                             "have: not listed")
            continue
        if info.strings_error:
            notes.append(f"USB device {info.ids} at bus {info.bus:03d}: {info.strings_error}; its section has "
                         "no vendor, product or serial (run as root, or install nutlite's udev rules)")
        found.append((info, driver))
    return found, notes


def _options(argv: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    """(option, value) pairs; long options become their short letters (nutlite's own keep their name)."""
    short: list[str] = []
    own: list[tuple[str, str]] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in _OWN_LONG:
                if not eq:
                    if not args:
                        return own, f"option '{name}' requires an argument"
                    value = args.pop(0)
                own.append((name, value))
                continue
            letter = _LONG.get(name)
            if letter is None:
                return own, f"unrecognized option '{name}'"
            short.append(f"-{letter}")
            takes = f"{letter}:" in _OPTSTRING
            if takes:
                if not eq:
                    if not args:
                        return own, f"option '{name}' requires an argument"
                    value = args.pop(0)
                short.append(value)
            elif eq:
                return own, f"option '{name}' doesn't allow an argument"
        else:
            short.append(arg)
    try:
        opts, rest = getopt(short, _OPTSTRING)
    except GetoptError as exc:
        return own, exc.message
    if rest:
        return own, f"unrecognized argument '{rest[0]}'"
    return opts + own, None


def _number(text: str, what: str, minimum: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{what}: expected a number of at least {minimum:g}, got '{text}'")
    return value


def snmp_main(opts: dict[str, list[str]], flags: set[str], first: int = 1) -> int:
    """The SNMP part of a scan; prints sections numbered after the USB ones."""
    import asyncio

    from nutlite.snmp import scan as snmpscan
    from nutlite.snmp.client import SnmpConfigError, SnmpSettings

    def last(key: str, default: str = "") -> str:
        return opts[key][-1] if opts.get(key) else default

    try:
        ranges = opts.get("m", []) + opts.get("--snmp", [])
        hosts: list[str] = []
        for spec in ranges:
            hosts += snmpscan.expand(spec)
        if opts.get("s") or opts.get("e"):
            hosts += snmpscan.between(last("s"), last("e"))
        if not hosts:
            raise ValueError("-S needs the addresses to scan: -m CIDR, -s START -e END, or --snmp RANGE")
        timeout = _number(last("t", "1"), "-t (timeout)", 0.05)
        parallel = int(_number(last("T", "256"), "-T (threads)", 1))
        rate = _number(last("--rate", "500"), "--rate", 1)
        port = int(_number(last("--snmp-port", "161"), "--snmp-port", 1))
        if port > 65535:
            raise ValueError(f"--snmp-port: expected 1 to 65535, got {port}")
        credentials: list[SnmpSettings] = []
        if opts.get("u") or opts.get("l"):
            v3 = SnmpSettings(host="0.0.0.0", version="v3", sec_level=last("l", "noAuthNoPriv"),
                              sec_name=last("u") or None, auth_protocol=last("w", "MD5"),
                              auth_password=last("W") or None, priv_protocol=last("x", "DES"),
                              priv_password=last("X") or None, timeout=timeout, retries=1)
            v3.check()
            credentials.append(v3)
        if opts.get("c") or not credentials:
            for community in opts.get("c") or ["public"]:
                for version in ("v2c", "v1"):
                    credentials.append(SnmpSettings(host="0.0.0.0", version=version, community=community,
                                                    timeout=timeout, retries=1))
    except (ValueError, SnmpConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    if "q" not in flags:
        print("Scanning SNMP bus.", file=sys.stderr)
    results = asyncio.run(snmpscan.scan(hosts, port, credentials, snmpscan.detect_mapping,
                                        parallel=parallel, rate=rate))
    found = [r for r in results if isinstance(r, snmpscan.Found)]
    for r in results:
        if isinstance(r, snmpscan.Unsupported):
            print(f"{PROG}: SNMP agent {r.host}:{r.port} (sysObjectID {r.sysobjectid}): {r.reason}",
                  file=sys.stderr)
    if not found and "q" not in flags:
        print(f"{PROG}: no SNMP UPS found in {len(hosts)} address(es)", file=sys.stderr)
    sys.stdout.write(snmpscan.format_sections(found, "P" in flags, first=first))
    return 0


def main(argv: list[str]) -> int:
    pairs, problem = _options(argv)
    if problem:
        print(f"{PROG}: {problem}\nTry '{PROG} -h' for more information.", file=sys.stderr)
        return 1
    opts: dict[str, list[str]] = {}
    for key, value in pairs:
        opts.setdefault(key, []).append(value)
    flags = set(opts)
    if "h" in flags:
        print(HELP, end="")
        return 0
    if "V" in flags:
        print(f"Network UPS Tools - {NUT_VERSION} ({PROG})")
        return 0
    snmp = "S" in flags or "--snmp" in flags or ("C" in flags and ("m" in flags or "s" in flags))
    usb = "U" in flags or "C" in flags or not snmp
    count = 0
    if usb:
        rc = usb_main(flags, quiet_empty=snmp)
        if rc < 0:
            return 1
        count = rc
    if snmp:
        return snmp_main(opts, flags, first=count + 1)
    return 0


def usb_main(flags: set[str], quiet_empty: bool = False) -> int:
    """The USB part of a scan: prints its sections and returns how many (-1 when the bus cannot be read)."""
    if "q" not in flags:
        print("Scanning USB bus.", file=sys.stderr)
    try:
        found, notes = scan()
    except UsbError as exc:
        print(f"{PROG}: cannot scan the USB bus: {exc}", file=sys.stderr)
        return -1
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    if not found:
        if not quiet_empty:  # nut-scanner prints nothing and exits 0; say so plainly
            print(f"{PROG}: no USB UPS found that a nutlite driver can drive (lsusb lists what is attached)",
                  file=sys.stderr)
        return 0
    sys.stdout.write(format_sections(found, "P" in flags))
    return len(found)
