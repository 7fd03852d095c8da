"""``nutlite scan --snmp``: find the SNMP UPSes of a subnet, as NUT's ``nut-scanner -S`` does.

Each address of the range is asked for ``sysObjectID.0`` and ``sysDescr.0`` with every set of
credentials given (v2c or v1 communities, or SNMPv3 users), in parallel with a bounded number of
probes in flight and a bounded rate of new ones. An agent that answers then goes through the same
MIB detection as ``snmp-ups`` with ``mibs = auto`` (:mod:`nutlite.snmp.detect`), so the section
printed for it names the mapping the driver will use; a device that no mapping fits is reported on
stderr, with its sysObjectID, instead of getting a section the driver would refuse.

Differences from nut-scanner 2.8.0 (which prints one section for every mapping whose probe OID
answers, so an APC card that also speaks RFC 1628 is listed twice, as apcc and as ietf): one section
per device, with ``snmp_version = "v2c"`` when the agent answered v2c, and the UDP port when it is
not 161.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from nutlite.snmp.client import SnmpAuthError, SnmpClient, SnmpError, SnmpSettings, SnmpTimeout
from nutlite.snmp.types import Value

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
MAX_ADDRESSES = 65536  # a /16: more is almost certainly a typing error


class ScanError(ValueError):
    """A range or a credential that cannot be scanned (the message says which and why)."""


def expand(spec: str) -> list[str]:
    """The addresses of ``spec``: ``10.0.0.0/24`` (its hosts), ``10.0.0.5-10.0.0.20``,
    ``10.0.0.5-20`` (the last byte), or one address. IPv6 works the same way."""
    text = spec.strip()
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            if net.num_addresses > MAX_ADDRESSES:
                raise ScanError(f"{spec}: {net.num_addresses} addresses; scan at most {MAX_ADDRESSES} at once")
            hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
            return [str(a) for a in hosts]
        if "-" in text:
            first_text, last_text = (p.strip() for p in text.split("-", 1))
            first = ipaddress.ip_address(first_text)
            if last_text.isdigit() and first.version == 4:
                last = ipaddress.ip_address(".".join(first_text.split(".")[:3] + [last_text]))
            else:
                last = ipaddress.ip_address(last_text)
            if last.version != first.version or last < first:  # type: ignore[operator]
                raise ScanError(f"{spec}: the range must go from a first to a last address of one family")
            count = int(last) - int(first) + 1
            if count > MAX_ADDRESSES:
                raise ScanError(f"{spec}: {count} addresses; scan at most {MAX_ADDRESSES} at once")
            return [str(ipaddress.ip_address(int(first) + i)) for i in range(count)]
        return [str(ipaddress.ip_address(text))]
    except ValueError as exc:
        if isinstance(exc, ScanError):
            raise
        raise ScanError(f"{spec}: not an address, a CIDR network (10.0.0.0/24) or a range "
                        f"(10.0.0.5-10.0.0.20): {exc}") from None


def between(start: str, end: str) -> list[str]:
    """nut-scanner's ``-s START -e END`` (either alone: that one address)."""
    return expand(f"{start}-{end}" if start and end else start or end)


@dataclass(frozen=True)
class Found:
    """An agent the scan can drive, with the mapping that serves it."""

    host: str
    port: int
    settings: SnmpSettings
    mapping: str
    desc: str
    sysobjectid: str


@dataclass(frozen=True)
class Unsupported:
    """An agent that answered but that no mapping serves."""

    host: str
    port: int
    sysobjectid: str
    reason: str


#: the MIB detection of one agent: (mapping name, model) or the one-line refusal
Detect = Callable[[SnmpClient], Awaitable["tuple[str, str] | str"]]


def _text(answer: object) -> str:
    if isinstance(answer, Value) and isinstance(answer.value, bytes):
        return answer.value.decode("utf-8", "replace").strip()
    if isinstance(answer, Value) and answer.value is not None:
        return str(answer.value)
    return ""


class RateLimit:
    """At most ``rate`` starts per second (a token bucket one token deep: evenly spaced starts)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = self.clock()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


async def probe(host: str, port: int, credentials: Sequence[SnmpSettings], detect: Detect,
                engine: object = None) -> Found | Unsupported | None:
    """The first of ``credentials`` the agent at ``host`` answers, and the mapping that fits it
    (``engine``: a pysnmp engine shared by all the probes of a scan, see SnmpClient.new_engine)."""
    for creds in credentials:
        settings = replace(creds, host=host, port=port)
        client = SnmpClient(settings, engine=engine)
        try:
            await client.open()
            try:
                answers = await client.get([SYS_OBJECT_ID, SYS_DESCR])
            except (SnmpTimeout, SnmpAuthError):  # silent, or not these credentials: the next ones
                continue
            oid_answer = answers.get(SYS_OBJECT_ID)
            if not isinstance(oid_answer, Value):
                continue
            sysobjectid = _text(oid_answer)
            try:
                result = await detect(client)
            except SnmpError as exc:
                return Unsupported(host, port, sysobjectid, f"detection failed: {exc}")
            if isinstance(result, str):
                return Unsupported(host, port, sysobjectid, result)
            mapping, model = result
            return Found(host, port, settings, mapping, model or _text(answers.get(SYS_DESCR)), sysobjectid)
        except SnmpError:
            continue
        finally:
            await client.close()
    return None


async def scan(hosts: Iterable[str], port: int, credentials: Sequence[SnmpSettings],
               detect: Detect, *, parallel: int = 64,
               rate: float = 200.0) -> list[Found | Unsupported]:
    """Probe ``hosts`` with at most ``parallel`` in flight and ``rate`` new probes a second; results in
    address order."""
    limit = asyncio.Semaphore(max(1, parallel))
    pace = RateLimit(rate)

    engine = SnmpClient.new_engine()  # one for all probes: making one costs about 70 ms of CPU

    async def one(h: str) -> Found | Unsupported | None:
        async with limit:
            await pace.wait()
            return await probe(h, port, credentials, detect, engine)

    hosts = list(hosts)
    try:
        results = await asyncio.gather(*(one(h) for h in hosts))
    finally:
        SnmpClient.close_engine(engine)
    return [r for r in results if r is not None]


async def detect_mapping(client: SnmpClient) -> tuple[str, str] | str:
    """snmp-ups's ``mibs = auto`` detection on ``client``'s agent: (mapping, model) or the refusal."""
    from nutlite.drivers.tables import snmp as tables
    from nutlite.snmp.detect import Detector

    det = Detector(tables, "auto")
    while (oids := det.next_oids()) is not None:
        det.feed(await client.get(oids))
    if det.error is not None or det.result is None:
        return det.error or "no MIB mapping fits"
    return det.result.name, det.model.strip()


def section_items(found: Found) -> list[tuple[str, str]]:
    """The settings of one ups.conf section, in nut-scanner's order (driver, port, desc, mibs, then
    the credentials)."""
    s = found.settings
    port = found.host if found.port == 161 else (
        f"[{found.host}]:{found.port}" if ":" in found.host else f"{found.host}:{found.port}")
    items = [("driver", "snmp-ups"), ("port", port)]
    if found.desc:
        items.append(("desc", found.desc))
    items.append(("mibs", found.mapping))
    if s.version == "v3":
        items += [("snmp_version", "v3"), ("secLevel", s.sec_level), ("secName", s.sec_name or "")]
        if s.sec_level in ("authNoPriv", "authPriv"):
            items += [("authProtocol", s.auth_protocol), ("authPassword", s.auth_password or "")]
        if s.sec_level == "authPriv":
            items += [("privProtocol", s.priv_protocol), ("privPassword", s.priv_password or "")]
    else:
        items.append(("community", s.community))
        if s.version == "v2c":
            items.append(("snmp_version", "v2c"))
    return items


def format_sections(found: Sequence[Found], parsable: bool = False, first: int = 1) -> str:
    from nutlite.tools.common import scanner_sections

    return scanner_sections("SNMP", [section_items(f) for f in found], parsable, first)
