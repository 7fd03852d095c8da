"""A small programmable SNMP v1/v2c agent for tests (UDP on loopback).

Built directly on pysnmp's message codec (pysnmp.proto.api + pyasn1 BER), not on snmpsim, so tests
control every answer: a mutable OID -> (type, value) table loadable from a ``.snmprec`` file,
GET / GETNEXT / GETBULK / SET with a request log, community check, loss/resume, tooBig limits,
genErr on multi-varbind requests and a catch-all rule for black-box surveys.

In-process::

    with SnmpAgent.from_snmprec(path, community="public") as agent:
        port = agent.port

As a subprocess::

    python tests/snmpagent.py --snmprec F --port N --community C [--accept-all-sets] [--log FILE]
"""

from __future__ import annotations

import argparse
import bisect
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from nutlite.snmp import snmprec
from nutlite.snmp.snmprec import SnmprecError

Oid = tuple[int, ...]
Entry = tuple[str, object]  # (snmprec type tag such as "2", "4", "4x", python value)
Rule = Callable[[Oid], Entry | None]

TYPE_TAGS = ("2", "4", "4x", "5", "6", "64", "65", "66", "67", "68", "70")
PDU_NAMES = {
    "GetRequestPDU": "GET",
    "GetNextRequestPDU": "GETNEXT",
    "GetBulkRequestPDU": "GETBULK",
    "SetRequestPDU": "SET",
}
# RFC 1905 error-status codes
NO_ERROR, TOO_BIG, NO_SUCH_NAME, BAD_VALUE, READ_ONLY, GEN_ERR, NOT_WRITABLE = 0, 1, 2, 3, 4, 5, 17


def parse_oid(text: str) -> Oid:
    text = text.strip().lstrip(".")
    try:
        return tuple(int(p) for p in text.split(".")) if text else ()
    except ValueError:
        raise ValueError(f"bad OID {text!r}") from None


def oid_str(oid: Oid) -> str:
    return ".".join(str(p) for p in oid)


def load_snmprec(path: str | Path) -> dict[Oid, Entry]:
    """Read a .snmprec file into an OID -> (type, value) table (nutlite.snmp.snmprec reads the file)."""
    table: dict[Oid, Entry] = {}
    for oid, value in snmprec.load(path).items():
        v = value.value
        if value.tag == "4" and isinstance(v, bytes):
            text = v.decode("utf-8", "surrogateescape")
            entry: Entry = ("4", text) if v.isascii() and text == text.rstrip() else ("4x", v)
        elif value.tag == "6":
            entry = ("6", parse_oid(str(v)))
        else:
            entry = (value.tag, v)
        table[parse_oid(oid)] = entry
    return table


def _encode_value(proto: object, entry: Entry) -> object:
    tag, value = entry
    if tag == "2":
        return proto.Integer(value)
    if tag in ("4", "4x"):
        data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
        return proto.OctetString(data)
    if tag == "5":
        return proto.Null("")
    if tag == "6":
        return proto.ObjectIdentifier(value)
    if tag == "64":
        return proto.IpAddress(value)
    if tag == "65":  # SNMPv1 calls them Counter and Gauge
        return (getattr(proto, "Counter32", None) or proto.Counter)(value)
    if tag == "66":
        return (getattr(proto, "Gauge32", None) or proto.Gauge)(value)
    if tag == "67":
        return proto.TimeTicks(value)
    if tag == "68":
        return proto.Opaque(value)
    if tag == "70":
        return api.v2c.Counter64(value)
    raise ValueError(f"unknown type {tag!r}")


def _entry_from_asn1(value: object) -> Entry:
    name = value.__class__.__name__
    if name in ("Integer", "Integer32"):
        return ("2", int(value))
    if name == "OctetString":
        data = bytes(value)
        try:
            return ("4", data.decode("ascii"))
        except UnicodeDecodeError:
            return ("4x", data)
    if name == "Null":
        return ("5", None)
    if name == "ObjectIdentifier":
        return ("6", tuple(value))
    if name == "IpAddress":
        return ("64", ".".join(str(b) for b in bytes(value)))
    tags = {"Counter32": "65", "Gauge32": "66", "Unsigned32": "66", "TimeTicks": "67", "Counter64": "70"}
    if name in tags:
        return (tags[name], int(value))
    if name == "Opaque":
        return ("68", bytes(value))
    return ("4", str(value))


@dataclass
class LogEntry:
    time: float
    pdu: str  # GET, GETNEXT, GETBULK, SET
    version: str  # v1 / v2c
    community: str
    varbinds: list[tuple[str, Entry | None]]  # (oid, value for SET else None)
    answered: bool = True
    error_status: int = 0


@dataclass
class SnmpAgent:
    """An SNMP agent on ``host`` (a loopback address) serving ``table``; ``with`` or start()/stop()."""

    table: dict[Oid, Entry] = field(default_factory=dict)
    host: str = "127.0.0.1"
    community: str | None = "public"  # None accepts any community
    port: int = 0
    writable: set[Oid] = field(default_factory=set)
    accept_all_sets: bool = False
    max_varbinds: int | None = None  # more varbinds in a response -> tooBig
    max_size: int | None = None  # encoded response larger than this -> tooBig
    generr_multi: bool = False  # genErr for any request carrying more than one varbind
    catch_all: Rule | None = None  # GET of an OID missing from the table asks this rule
    answering: bool = True
    log: list[LogEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._keys: list[Oid] = sorted(self.table)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @classmethod
    def from_snmprec(cls, path: str | Path, **kwargs: object) -> SnmpAgent:
        return cls(table=load_snmprec(path), **kwargs)

    # -- table ------------------------------------------------------------------------------
    def set(self, oid: str | Oid, tag: str, value: object) -> None:
        key = parse_oid(oid) if isinstance(oid, str) else tuple(oid)
        if tag not in TYPE_TAGS:
            raise ValueError(f"unknown type {tag!r} for {oid_str(key)}")
        with self._lock:
            if key not in self.table:
                bisect.insort(self._keys, key)
            self.table[key] = (tag, value)

    def get(self, oid: str | Oid) -> Entry | None:
        key = parse_oid(oid) if isinstance(oid, str) else tuple(oid)
        return self.table.get(key)

    def delete(self, oid: str | Oid) -> None:
        key = parse_oid(oid) if isinstance(oid, str) else tuple(oid)
        with self._lock:
            if self.table.pop(key, None) is not None:
                self._keys.remove(key)

    def _next(self, oid: Oid, v1: bool) -> tuple[Oid, Entry] | None:
        i = bisect.bisect_right(self._keys, oid)
        while i < len(self._keys):
            key = self._keys[i]
            entry = self.table[key]
            if not (v1 and entry[0] == "70"):  # v1 cannot carry Counter64: skip it
                return key, entry
            i += 1
        return None

    # -- loss control ------------------------------------------------------------------------
    def stop_answering(self) -> None:
        self.answering = False

    def resume(self) -> None:
        self.answering = True

    def requests(self, pdu: str | None = None) -> list[LogEntry]:
        with self._lock:
            return [e for e in self.log if pdu is None or e.pdu == pdu]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SnmpAgent:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.settimeout(0.2)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=f"snmpagent:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()
        self._sock = self._thread = None

    def __enter__(self) -> SnmpAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                data, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self.handle(data)
            except (PyAsn1Error, ValueError, TypeError, KeyError) as exc:
                print(f"snmpagent: dropped malformed request from {peer}: {exc}", file=sys.stderr)
                continue
            if reply is not None:
                try:
                    self._sock.sendto(reply, peer)
                except OSError:
                    pass

    # -- protocol (sans-IO: request bytes in, response bytes or None out) ---------------------
    def handle(self, data: bytes) -> bytes | None:
        version = int(api.decodeMessageVersion(data))
        if version not in api.PROTOCOL_MODULES:
            return None
        proto = api.PROTOCOL_MODULES[version]
        msg, _ = decoder.decode(data, asn1Spec=proto.Message())
        community = bytes(proto.apiMessage.get_community(msg)).decode("latin-1")
        req = proto.apiMessage.get_pdu(msg)
        pdu_name = PDU_NAMES.get(req.__class__.__name__)
        if pdu_name is None:
            return None
        v1 = version == api.SNMP_VERSION_1
        req_vbs = [(tuple(o), v) for o, v in proto.apiPDU.get_varbinds(req)]
        entry = LogEntry(
            time.time(), pdu_name, "v1" if v1 else "v2c", community,
            [(oid_str(o), _entry_from_asn1(v) if pdu_name == "SET" else None) for o, v in req_vbs],
        )
        with self._lock:
            self.log.append(entry)
        if not self.answering or (self.community is not None and community != self.community):
            entry.answered = False
            return None
        rsp = proto.apiPDU.get_response(req)
        with self._lock:
            status, index, out = self._answer(proto, pdu_name, req, req_vbs, v1)
        if status == NO_ERROR and self.max_varbinds is not None and len(out) > self.max_varbinds:
            status, index = TOO_BIG, 0
        if status != NO_ERROR:
            out = list(req_vbs)
            proto.apiPDU.set_error_status(rsp, status)
            proto.apiPDU.set_error_index(rsp, index)
        entry.error_status = status
        proto.apiPDU.set_varbinds(rsp, out)
        proto.apiMessage.set_pdu(msg, rsp)
        encoded = encoder.encode(msg)
        if self.max_size is not None and len(encoded) > self.max_size and status == NO_ERROR:
            proto.apiPDU.set_error_status(rsp, TOO_BIG)
            proto.apiPDU.set_error_index(rsp, 0)
            proto.apiPDU.set_varbinds(rsp, [(o, proto.Null("")) for o, _ in req_vbs])
            entry.error_status = TOO_BIG
            encoded = encoder.encode(msg)
        return encoded

    def _lookup(self, oid: Oid, v1: bool) -> Entry | None:
        found = self.table.get(oid)
        if found is None and self.catch_all is not None:
            found = self.catch_all(oid)
        if found is not None and v1 and found[0] == "70":
            return None
        return found

    def _get_varbind(self, proto: object, oid: Oid, v1: bool) -> tuple | None:
        """The answer to GET ``oid``: None for v1's noSuchName, noSuchInstance for v2c."""
        found = self._lookup(oid, v1)
        if found is None:
            return None if v1 else (oid, proto.NoSuchInstance(""))
        return oid, _encode_value(proto, found)

    def _next_varbind(self, proto: object, oid: Oid, v1: bool) -> tuple | None:
        """The varbind after ``oid``: None for v1's noSuchName, endOfMibView for v2c."""
        nxt = self._next(oid, v1)
        if nxt is None:
            return None if v1 else (oid, proto.EndOfMibView(""))
        return nxt[0], _encode_value(proto, nxt[1])

    def _answer(self, proto: object, pdu: str, req: object, vbs: list, v1: bool) -> tuple[int, int, list]:
        if self.generr_multi and len(vbs) > 1:
            return GEN_ERR, 1, []
        out: list = []
        if pdu in ("GET", "GETNEXT"):
            one = self._get_varbind if pdu == "GET" else self._next_varbind
            for i, (oid, _) in enumerate(vbs, 1):
                vb = one(proto, oid, v1)
                if vb is None:
                    return NO_SUCH_NAME, i, []
                out.append(vb)
        elif pdu == "GETBULK":
            non_rep = max(0, int(proto.apiBulkPDU.get_non_repeaters(req)))
            reps = max(0, int(proto.apiBulkPDU.get_max_repetitions(req)))
            out.extend(self._next_varbind(proto, oid, False) for oid, _ in vbs[:non_rep])
            cursors = [oid for oid, _ in vbs[non_rep:]]
            for _ in range(reps if cursors else 0):
                for j, oid in enumerate(cursors):
                    vb = self._next_varbind(proto, oid, False)
                    cursors[j] = vb[0]  # at the end of the MIB the cursor stays where it is
                    out.append(vb)
                if self.max_varbinds is not None and len(out) > self.max_varbinds:
                    out = out[: self.max_varbinds]  # GETBULK is truncated rather than refused
                    break
        elif pdu == "SET":
            for i, (oid, _value) in enumerate(vbs, 1):
                if not (self.accept_all_sets or oid in self.writable):
                    return (NO_SUCH_NAME if v1 else NOT_WRITABLE), i, []
            for oid, value in vbs:
                self.set(oid, *_entry_from_asn1(value))
                out.append((oid, value))
        return NO_ERROR, 0, out


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="programmable SNMP v1/v2c test agent on a loopback address")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1)")
    p.add_argument("--snmprec", type=Path, help="recording to serve")
    p.add_argument("--port", type=int, default=16161)
    p.add_argument("--community", default="public", help="'*' accepts any community")
    p.add_argument("--accept-all-sets", action="store_true", help="every SET changes the table")
    p.add_argument("--writable", action="append", default=[], help="OID that SET may change")
    p.add_argument("--max-varbinds", type=int)
    p.add_argument("--max-size", type=int)
    p.add_argument("--generr-multi", action="store_true")
    p.add_argument("--log", type=Path, help="append one JSON line per request to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        table = load_snmprec(args.snmprec) if args.snmprec else {}
    except (OSError, SnmprecError) as exc:
        print(f"snmpagent: {exc}", file=sys.stderr)
        return 2
    agent = SnmpAgent(
        table=table, host=args.host, community=None if args.community == "*" else args.community, port=args.port,
        writable={parse_oid(o) for o in args.writable}, accept_all_sets=args.accept_all_sets,
        max_varbinds=args.max_varbinds, max_size=args.max_size, generr_multi=args.generr_multi,
    )
    if args.log:
        logf = args.log.open("a")
        orig = agent.handle

        def handle(data: bytes) -> bytes | None:
            n = len(agent.log)
            out = orig(data)
            for e in agent.log[n:]:
                logf.write(json.dumps({"time": e.time, "pdu": e.pdu, "varbinds": e.varbinds,
                                       "error": e.error_status}, default=repr) + "\n")
            logf.flush()
            return out

        agent.handle = handle  # type: ignore[method-assign]
    try:
        agent.start()
    except OSError as exc:
        print(f"snmpagent: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"snmpagent: serving {len(table)} OIDs on {args.host}:{agent.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
