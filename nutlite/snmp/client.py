"""The SNMP client shell: a thin asyncio layer over pysnmp 7 (``pysnmp.hlapi.v3arch.asyncio``).

It speaks SNMP v1, v2c and v3 (USM with NUT's protocol names) to one agent and hands the sans-IO cores
plain values (:class:`nutlite.snmp.types.Value` / :class:`~nutlite.snmp.types.Missing`), so nothing
above this module sees a pysnmp object.

* :meth:`SnmpClient.get` puts many OIDs in one GET (``batch`` varbinds at a time). An agent that answers
  ``tooBig`` gets half as many; one that answers an error status for a batch (``genErr``, v1's
  ``noSuchName`` with its error index) gets the batch again around the bad varbind, so one bad OID
  never costs the others their values. The batch size that worked is kept for the next calls, and an
  OID that failed by itself is asked alone from then on.
* :meth:`SnmpClient.walk` reads a subtree with GETBULK (v2c, v3) or GETNEXT (v1).
* :meth:`SnmpClient.set` sends one SET.
* No answer, a v3 credential the agent refuses, an unresolvable host: one :class:`SnmpError` whose
  message says what to check, never a pysnmp traceback.

:attr:`SnmpClient.round_trips` counts the requests sent (pysnmp's retransmissions and the v3 engine
discovery are not counted), for the benchmark and the tests.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nutlite.snmp.types import (
    COUNTER32,
    COUNTER64,
    GAUGE32,
    INTEGER,
    IPADDRESS,
    NULL,
    OBJECT_ID,
    OCTETS,
    OPAQUE,
    TIMETICKS,
    Answer,
    Missing,
    Value,
    normalize_oid,
    oid_key,
)

log = logging.getLogger("nutlite.snmp.client")

DEFAULT_PORT = 161
DEFAULT_BATCH = 48  # varbinds per GET to start with
DEFAULT_REPETITIONS = 25  # GETBULK max-repetitions to start with
VERSIONS = ("v1", "v2c", "v3")
SEC_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")
# NUT's names (as its -h lists them for Net-SNMP 5.9) -> pysnmp's protocol attribute names
AUTH_PROTOCOLS = {
    "MD5": "usmHMACMD5AuthProtocol",
    "SHA": "usmHMACSHAAuthProtocol",
    "SHA224": "usmHMAC128SHA224AuthProtocol",
    "SHA256": "usmHMAC192SHA256AuthProtocol",
    "SHA384": "usmHMAC256SHA384AuthProtocol",
    "SHA512": "usmHMAC384SHA512AuthProtocol",
}
# Net-SNMP's (hence NUT's) AES192/AES256 are the Blumenthal key-extension variants; the "C" names are
# the Reeder/Cisco ones, as Net-SNMP calls them.
PRIV_PROTOCOLS = {
    "DES": "usmDESPrivProtocol",
    "AES": "usmAesCfb128Protocol",
    "AES128": "usmAesCfb128Protocol",
    "AES192": "usmAesBlumenthalCfb192Protocol",
    "AES256": "usmAesBlumenthalCfb256Protocol",
    "AES192C": "usmAesCfb192Protocol",
    "AES256C": "usmAesCfb256Protocol",
}
MIN_PASSWORD = 8  # USM: a pass phrase shorter than 8 characters is refused (RFC 3414 §11.2)

# RFC 3416 error-status codes
TOO_BIG, NO_SUCH_NAME, GEN_ERR = 1, 2, 5
ERROR_STATUS_NAMES = {
    0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess",
    7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue", 11: "noCreation",
    12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
    16: "authorizationError", 17: "notWritable", 18: "inconsistentName",
}


# --------------------------------------------------------------------------------------------------
# Errors


class SnmpError(Exception):
    """A problem talking to the agent; the message names the agent and what to check."""


class SnmpConfigError(SnmpError, ValueError):
    """A setting that cannot work (unknown protocol name, missing v3 user, bad port...)."""


class SnmpTimeout(SnmpError):
    """No answer after timeout x (retries + 1)."""


class SnmpAuthError(SnmpError):
    """The agent refused the SNMPv3 credentials (unknown user, wrong digest, decryption error...)."""


class SnmpRequestError(SnmpError):
    """The agent answered a request with an error status (a SET it refused, for instance)."""

    def __init__(self, message: str, status: int, oid: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.status_name = ERROR_STATUS_NAMES.get(status, str(status))
        self.oid = oid


# --------------------------------------------------------------------------------------------------
# Settings


def parse_target(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6addr]:port`` or a bare IPv6 address -> (host, port)."""
    s = text.strip()
    if not s:
        raise SnmpConfigError("port: expected the agent's address as host[:port], got nothing")
    host, port_text = s, ""
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise SnmpConfigError(f"port = '{text}': missing ']' after the IPv6 address")
        host, rest = s[1:end], s[end + 1:]
        if rest and not rest.startswith(":"):
            raise SnmpConfigError(f"port = '{text}': expected [address]:port")
        port_text = rest[1:]
    elif s.count(":") == 1:
        host, port_text = s.split(":")
    if not host:
        raise SnmpConfigError(f"port = '{text}': no host name or address before the port")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SnmpConfigError(f"port = '{text}': the UDP port must be a number from 1 to 65535")
    return host, int(port_text)


@dataclass(frozen=True)
class SnmpSettings:
    """How to reach one agent. Names and defaults follow NUT's snmp-ups options (SNMP-FACTS §1)."""

    host: str
    port: int = DEFAULT_PORT
    version: str = "v1"
    community: str = "public"
    sec_level: str = "noAuthNoPriv"
    sec_name: str | None = None
    auth_password: str | None = None
    priv_password: str | None = None
    auth_protocol: str = "MD5"
    priv_protocol: str = "DES"
    timeout: float = 1.0
    retries: int = 5

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def patience(self) -> float:
        """Seconds one unanswered request costs: timeout x (retries + 1)."""
        return self.timeout * (self.retries + 1)

    def check(self) -> None:
        """Raise :class:`SnmpConfigError` naming the first setting that cannot work."""
        if self.version not in VERSIONS:
            raise SnmpConfigError(f"snmp_version = '{self.version}': expected one of {', '.join(VERSIONS)}")
        if self.timeout <= 0:
            raise SnmpConfigError(f"snmp_timeout = {self.timeout:g}: expected a positive number of seconds")
        if self.retries < 0:
            raise SnmpConfigError(f"snmp_retries = {self.retries}: expected 0 or more")
        if self.version != "v3":
            return
        if self.sec_level not in SEC_LEVELS:
            raise SnmpConfigError(f"secLevel = '{self.sec_level}': expected one of {', '.join(SEC_LEVELS)}")
        if not self.sec_name:
            raise SnmpConfigError("snmp_version = v3 needs secName (the SNMPv3 user name)")
        if self.sec_level in ("authNoPriv", "authPriv"):
            if self.auth_protocol.upper() not in AUTH_PROTOCOLS:
                raise SnmpConfigError(f"authProtocol = '{self.auth_protocol}': expected one of "
                                      f"{', '.join(AUTH_PROTOCOLS)}")
            _check_password("authPassword", self.auth_password, self.sec_level)
        if self.sec_level == "authPriv":
            if self.priv_protocol.upper() not in PRIV_PROTOCOLS:
                raise SnmpConfigError(f"privProtocol = '{self.priv_protocol}': expected one of "
                                      f"{', '.join(PRIV_PROTOCOLS)}")
            _check_password("privPassword", self.priv_password, self.sec_level)
            _check_cipher(self.priv_protocol)


def _check_cipher(protocol: str) -> None:
    """SNMPv3 privacy needs the Python library cryptography (v1, v2c and v3 authentication do not): when
    pysnmp cannot use it, say so in one line instead of a "Ciphering services not available" per poll."""
    des = protocol.upper() == "DES"
    try:  # pysnmp's cipher modules record whether their cryptography imports worked
        importlib.import_module("pysnmp.hlapi.v3arch.asyncio")  # first: the cipher modules import it back
        cipher = importlib.import_module("pysnmp.proto.secmod." + ("rfc3414.priv.des" if des else "rfc3826.priv.aes"))
    except (ImportError, AttributeError):
        return  # no pysnmp at all: the client's own import says so
    if not getattr(cipher, "PysnmpCryptoError", False):
        return
    try:
        import cryptography  # noqa: PLC0415

        found = f"cryptography {cryptography.__version__} is too old for this pysnmp"
    except ImportError:
        found = "cryptography is not installed"
    # pysnmp 7.1 (as pip installs it) imports TripleDES and CFB from cryptography's 43 and 47 places; the
    # Debian package's copy of pysnmp also takes them from where bookworm's cryptography 38 has them.
    raise SnmpConfigError(f"privProtocol = '{protocol}': SNMPv3 privacy needs the Python library cryptography, "
                          f"and {found}: apt install python3-cryptography, or pip install "
                          f"'cryptography>={43 if des else 47}'")


def _check_password(name: str, value: str | None, level: str) -> None:
    if not value:
        raise SnmpConfigError(f"secLevel = {level} needs {name}")
    if len(value) < MIN_PASSWORD:
        raise SnmpConfigError(f"{name}: SNMPv3 pass phrases have at least {MIN_PASSWORD} characters "
                              f"(this one has {len(value)})")


# --------------------------------------------------------------------------------------------------
# Value conversion (pysnmp objects <-> Value)


def _hl() -> Any:
    """pysnmp's high-level API, imported on first use (it takes a while to load)."""
    import pysnmp.hlapi.v3arch.asyncio as hl  # noqa: PLC0415

    return hl


def _tag_table() -> dict[Any, str]:
    from pyasn1.type import univ  # noqa: PLC0415
    from pysnmp.proto import rfc1902  # noqa: PLC0415

    return {
        rfc1902.Integer32.tagSet: INTEGER, rfc1902.OctetString.tagSet: OCTETS, univ.Null.tagSet: NULL,
        rfc1902.ObjectIdentifier.tagSet: OBJECT_ID, rfc1902.IpAddress.tagSet: IPADDRESS,
        rfc1902.Counter32.tagSet: COUNTER32, rfc1902.Gauge32.tagSet: GAUGE32,
        rfc1902.TimeTicks.tagSet: TIMETICKS, rfc1902.Opaque.tagSet: OPAQUE,
        rfc1902.Counter64.tagSet: COUNTER64,
    }


_TAGS: dict[Any, str] = {}
_MISSING_BY_CLASS = {"NoSuchObject": Missing.NO_SUCH_OBJECT, "NoSuchInstance": Missing.NO_SUCH_INSTANCE,
                     "EndOfMibView": Missing.END_OF_MIB}


def from_pysnmp(value: Any) -> Answer:
    """A pysnmp varbind value -> :class:`Value` (or the :class:`Missing` of a v2c exception)."""
    missing = _MISSING_BY_CLASS.get(type(value).__name__)
    if missing is not None:
        return missing
    if not _TAGS:
        _TAGS.update(_tag_table())
    tag = _TAGS.get(value.tagSet)
    if tag is None:  # an unexpected type: keep its text rather than fail
        return Value(OCTETS, str(value).encode("utf-8", "replace"))
    if tag in (OCTETS, OPAQUE):
        return Value(tag, bytes(value))
    if tag == NULL:
        return Value(NULL, None)
    if tag == OBJECT_ID:
        return Value(OBJECT_ID, ".".join(str(p) for p in tuple(value)))
    if tag == IPADDRESS:
        return Value(IPADDRESS, ".".join(str(b) for b in bytes(value)))
    return Value(tag, int(value))


def to_pysnmp(value: Value) -> Any:
    """A :class:`Value` -> the pysnmp object a SET carries; ValueError naming the value if impossible."""
    from pyasn1.type import univ  # noqa: PLC0415
    from pysnmp.proto import rfc1902  # noqa: PLC0415

    v = value.value
    try:
        if value.tag == INTEGER:
            return rfc1902.Integer32(int(v))  # type: ignore[arg-type]
        if value.tag in (OCTETS, OPAQUE):
            data = v if isinstance(v, bytes) else str(v).encode("utf-8")
            return (rfc1902.OctetString if value.tag == OCTETS else rfc1902.Opaque)(data)
        if value.tag == NULL:
            return univ.Null("")
        if value.tag == OBJECT_ID:
            return rfc1902.ObjectIdentifier(normalize_oid(str(v)))
        if value.tag == IPADDRESS:
            return rfc1902.IpAddress(str(ipaddress.IPv4Address(str(v))))
        kinds = {COUNTER32: rfc1902.Counter32, GAUGE32: rfc1902.Gauge32, TIMETICKS: rfc1902.TimeTicks,
                 COUNTER64: rfc1902.Counter64}
        if value.tag in kinds:
            return kinds[value.tag](int(v))  # type: ignore[arg-type]
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"cannot send {v!r} as SNMP type {value.tag}: {exc}") from None
    except Exception as exc:  # pyasn1's range errors are not ValueErrors
        raise ValueError(f"cannot send {v!r} as SNMP type {value.tag}: {exc}") from None
    raise ValueError(f"unknown SNMP type tag {value.tag!r}")


# --------------------------------------------------------------------------------------------------
# The client


class SnmpClient:
    """One agent. Use ``async with SnmpClient(settings) as c:`` or open()/close().

    Each client has its own pysnmp engine unless ``engine`` (from :meth:`new_engine`) is given: clients
    for many agents (a scan) share one, which the caller closes with :meth:`close_engine`.
    """

    @staticmethod
    def new_engine() -> Any:
        """A pysnmp engine to share between clients (about 70 ms to make one)."""
        return _hl().SnmpEngine()

    @staticmethod
    def close_engine(engine: Any) -> None:
        try:
            engine.close_dispatcher()
        except Exception as exc:  # closing must never fail the caller
            log.debug("closing the SNMP engine: %s", exc)

    def __init__(self, settings: SnmpSettings, *, batch: int = DEFAULT_BATCH,
                 repetitions: int = DEFAULT_REPETITIONS, engine: Any = None) -> None:
        settings.check()
        self.settings = settings
        self.batch = max(1, batch)
        self.repetitions = max(1, repetitions)
        self.round_trips = 0
        self.bulk = True  # GETBULK for walks (v2c/v3) until the agent refuses it
        self.alone: set[str] = set()  # OIDs that failed by themselves: asked in a GET of their own
        self._shared = engine
        self._engine: Any = None
        self._target: Any = None
        self._auth: Any = None
        self._context: Any = None
        self._lcd: Any = None

    # -- life
    async def open(self) -> SnmpClient:
        if self._engine is not None:
            return self
        hl = _hl()
        s = self.settings
        self._auth = self._auth_data(hl)
        self._context = hl.ContextData()
        try:
            six = ":" in s.host
            kind = hl.Udp6TransportTarget if six else hl.UdpTransportTarget
            self._target = await kind.create((s.host, s.port), timeout=s.timeout, retries=s.retries)
        except Exception as exc:
            raise SnmpConfigError(f"cannot use the agent address '{s.host}': {_reason(exc)} "
                                  "(check the port setting: host[:port])") from None
        from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator  # noqa: PLC0415

        self._lcd = CommandGeneratorLcdConfigurator()
        self._engine = self._shared if self._shared is not None else hl.SnmpEngine()
        return self

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None and engine is not self._shared:
            self.close_engine(engine)

    async def __aenter__(self) -> SnmpClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _auth_data(self, hl: Any) -> Any:
        s = self.settings
        if s.version != "v3":
            return hl.CommunityData(s.community, mpModel=0 if s.version == "v1" else 1)
        kwargs: dict[str, Any] = {}
        auth_key = priv_key = None
        if s.sec_level in ("authNoPriv", "authPriv"):
            auth_key = s.auth_password
            kwargs["authProtocol"] = getattr(hl, AUTH_PROTOCOLS[s.auth_protocol.upper()])
        if s.sec_level == "authPriv":
            priv_key = s.priv_password
            kwargs["privProtocol"] = getattr(hl, PRIV_PROTOCOLS[s.priv_protocol.upper()])
        return hl.UsmUserData(s.sec_name, auth_key, priv_key, **kwargs)

    # -- one request
    async def _request(self, kind: str, varbinds: Sequence[tuple[str, Any]], *bulk: int,
                       ) -> tuple[int, int, list[tuple[str, Any]]]:
        """Send one request of raw varbinds [(oid, pysnmp value)]; (error status, error index, [(oid,
        pysnmp value)]) or an SnmpError. pysnmp's command generators are used directly, below the hlapi
        functions, which would look every OID up in the MIBs (slow, and useless here)."""
        if self._engine is None:
            await self.open()
        from pysnmp.entity.rfc3413 import cmdgen  # noqa: PLC0415
        from pysnmp.proto.rfc1902 import ObjectName  # noqa: PLC0415

        generators = {"get": cmdgen.GetCommandGenerator, "next": cmdgen.NextCommandGenerator,
                      "bulk": cmdgen.BulkCommandGenerator, "set": cmdgen.SetCommandGenerator}
        future: asyncio.Future[tuple[Any, Any, Any, Any]] = asyncio.get_running_loop().create_future()

        def done(_engine: Any, _handle: Any, indication: Any, status: Any, index: Any, vbs: Any,
                 _ctx: Any) -> None:
            if not future.done():
                future.set_result((indication, status, index, vbs))

        self.round_trips += 1
        try:
            addr, _params = self._lcd.configure(self._engine, self._auth, self._target, self._context.contextName)
            raw = [(ObjectName(oid), value) for oid, value in varbinds]
            generators[kind]().send_varbinds(self._engine, addr, self._context.contextEngineId,
                                             self._context.contextName, *bulk, raw, done)
            indication, status, index, vbs = await future
        except SnmpError:
            raise
        except Exception as exc:  # pysnmp raises on what it cannot encode or send
            raise SnmpError(f"SNMP request to {self.settings.where} failed: {_reason(exc)}") from None
        if indication:
            raise self._indication_error(indication)
        out = [(".".join(str(p) for p in tuple(oid)), value) for oid, value in vbs]
        return int(status or 0), int(index or 0), out

    def _indication_error(self, indication: Any) -> SnmpError:
        s = self.settings
        name = type(indication).__name__
        user = f"user '{s.sec_name}'"
        if name == "RequestTimedOut":
            if s.version == "v3":
                why = "agent down, SNMPv3 not enabled, or a firewall?"
            else:
                why = "wrong community or agent down?"
            return SnmpTimeout(f"no answer from {s.where} ({why}) in {s.patience:g} s "
                               f"(snmp_timeout {s.timeout:g} s x {s.retries + 1} tries)")
        v3 = {
            "UnknownUserName": f"SNMPv3 {user} is unknown to {s.where} (check secName)",
            "UnknownSecurityName": f"SNMPv3 {user} is unknown to {s.where} (check secName)",
            "WrongDigest": f"SNMPv3 authentication failed at {s.where}: wrong authPassword or authProtocol "
                           f"for {user}",
            "AuthenticationFailure": f"SNMPv3 authentication failed at {s.where}: wrong authPassword or "
                                     f"authProtocol for {user}",
            "DecryptionError": f"SNMPv3 decryption failed at {s.where}: wrong privPassword or privProtocol "
                               f"for {user}",
            "UnsupportedSecurityLevel": f"{s.where} does not accept secLevel {s.sec_level} for {user} "
                                        "(check secLevel)",
            "NotInTimeWindow": f"SNMPv3 time window error from {s.where} for {user} (the agent's engine "
                               "boots/time disagree; try again)",
            "UnknownEngineID": f"SNMPv3 engine discovery failed at {s.where} for {user}",
        }
        if name in v3:
            return SnmpAuthError(v3[name])
        return SnmpError(f"SNMP error from {s.where}: {indication}")

    # -- GET
    async def get(self, oids: Iterable[str]) -> dict[str, Answer]:
        """Values of ``oids`` (dotted, leading dot optional), in as few GETs as the agent allows.

        Every OID asked for is in the result: a :class:`Value`, or a :class:`Missing` saying why not
        (v2c exception, v1 noSuchName, or an error status for that OID alone). No answer at all raises
        :class:`SnmpTimeout` (the values already read are lost with it: the poll failed).
        """
        wanted: list[str] = []
        seen: set[str] = set()
        for o in oids:
            oid = normalize_oid(o)
            if oid not in seen:
                seen.add(oid)
                wanted.append(oid)
        result: dict[str, Answer] = {}
        grouped = [o for o in wanted if o not in self.alone]
        i = 0  # self.batch may shrink on the way: the next slices use the new size
        while i < len(grouped):
            chunk = grouped[i:i + self.batch]
            await self._get_chunk(chunk, result)
            i += len(chunk)
        for oid in wanted:
            if oid in self.alone:
                await self._get_chunk([oid], result)
        return {o: result[o] for o in wanted}

    async def get_one(self, oid: str) -> Answer:
        return (await self.get([oid]))[normalize_oid(oid)]

    async def _get_chunk(self, chunk: list[str], result: dict[str, Answer]) -> None:
        stats = _Bisect()
        await self._get_some(chunk, result, stats)
        if stats.oversize and stats.ok_sizes:
            self._shrink(max(stats.ok_sizes), "tooBig")
        elif stats.rejected and not stats.bad_oids and stats.ok_sizes:
            # the agent refused the batch, yet every OID alone was fine: it wants smaller requests
            self._shrink(max(stats.ok_sizes), "an error status for the batch")

    def _shrink(self, size: int, why: str) -> None:
        if size < self.batch:
            log.info("%s answered %s: asking for %d OID%s per GET from now on", self.settings.where, why,
                     size, "" if size == 1 else "s")
            self.batch = size

    async def _get_some(self, todo: list[str], result: dict[str, Answer], stats: _Bisect) -> None:
        todo = list(todo)
        while todo:
            status, index, vbs = await self._request("get", [(o, _null()) for o in todo])
            if status == 0 and len(vbs) == len(todo):
                for oid, (_, value) in zip(todo, vbs, strict=True):
                    result[oid] = from_pysnmp(value)
                stats.ok_sizes.append(len(todo))
                return
            if status == 0:  # a malformed answer (varbinds missing): treat as refused
                status = GEN_ERR
            if status == NO_SUCH_NAME and 1 <= index <= len(todo):
                # v1: the agent named the OID it does not have; ask again for the others
                result[todo.pop(index - 1)] = Missing.NO_SUCH_NAME
                continue
            if len(todo) == 1:
                oid = todo[0]
                result[oid] = Missing.NO_SUCH_NAME
                self.alone.add(oid)
                stats.bad_oids.append(oid)
                log.debug("%s answered %s for %s", self.settings.where, ERROR_STATUS_NAMES.get(status, status), oid)
                return
            if status == TOO_BIG:
                stats.oversize = True
            else:
                stats.rejected = True
            half = len(todo) // 2
            await self._get_some(todo[:half], result, stats)
            await self._get_some(todo[half:], result, stats)
            return

    # -- WALK
    async def walk(self, base: str) -> dict[str, Answer]:
        """Every OID below ``base`` with its value, in OID order (GETBULK for v2c/v3, GETNEXT for v1)."""
        root = normalize_oid(base)
        prefix = root + "."
        cursor = root
        out: dict[str, Answer] = {}
        while True:
            vb = (cursor, _null())
            nextonly = self.settings.version == "v1" or not self.bulk
            if nextonly:
                status, _index, vbs = await self._request("next", [vb])
            else:
                status, _index, vbs = await self._request("bulk", [vb], 0, self.repetitions)
            if status == TOO_BIG and not nextonly and self.repetitions > 1:
                self.repetitions = max(1, self.repetitions // 2)
                continue
            if status != 0 and not nextonly and not out:
                log.info("%s answered %s to GETBULK: walking with GETNEXT from now on", self.settings.where,
                         ERROR_STATUS_NAMES.get(status, status))
                self.bulk = False
                continue
            if status != 0:  # v1 noSuchName: the end of the MIB; anything else ends the walk too
                if status != NO_SUCH_NAME:
                    log.debug("%s answered %s walking %s", self.settings.where,
                              ERROR_STATUS_NAMES.get(status, status), root)
                return out
            if not vbs:
                return out
            for oid, value in vbs:
                answer = from_pysnmp(value)
                if isinstance(answer, Missing) or not oid.startswith(prefix) or oid_key(oid) <= oid_key(cursor):
                    return out  # end of the MIB, left the subtree, or an agent going backwards
                out[oid] = answer
                cursor = oid

    # -- SET
    async def set(self, varbinds: Sequence[tuple[str, Value]]) -> dict[str, Answer]:
        """Send one SET; the agent's echo of each varbind, or :class:`SnmpRequestError` if it refused."""
        items = [(normalize_oid(oid), value) for oid, value in varbinds]
        request = [(oid, to_pysnmp(value)) for oid, value in items]
        status, index, vbs = await self._request("set", request)
        if status:
            oid = items[index - 1][0] if 1 <= index <= len(items) else None
            name = ERROR_STATUS_NAMES.get(status, str(status))
            target = f" {oid}" if oid else ""
            what = target or f" {', '.join(o for o, _ in items)}"
            raise SnmpRequestError(f"{self.settings.where} refused the SET of{what}: {name}", status, oid)
        return {oid: from_pysnmp(v) for oid, v in vbs}


@dataclass
class _Bisect:
    """What happened while one batch was split up (to decide whether to keep a smaller batch size)."""

    ok_sizes: list[int] = field(default_factory=list)
    bad_oids: list[str] = field(default_factory=list)
    oversize: bool = False
    rejected: bool = False


def _null() -> Any:
    from pyasn1.type import univ  # noqa: PLC0415

    return univ.Null("")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
