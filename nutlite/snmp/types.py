"""The values that pass between the SNMP client shell and the sans-IO cores.

An OID is a dotted string without a leading dot (``"1.3.6.1.2.1.33.1.1.2.0"``). A value carries the
tag that snmpsim's ``.snmprec`` files use for its ASN.1 type, so a recording loads straight into the
same representation that the client produces from the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# snmprec type tags
INTEGER = "2"  # Integer32 / INTEGER: int
OCTETS = "4"  # OCTET STRING: bytes (snmprec "4x" is the same type written in hex)
NULL = "5"  # NULL: None
OBJECT_ID = "6"  # OBJECT IDENTIFIER: dotted str
IPADDRESS = "64"  # IpAddress: dotted-quad str
COUNTER32 = "65"  # int
GAUGE32 = "66"  # int
TIMETICKS = "67"  # int (hundredths of a second)
OPAQUE = "68"  # bytes
COUNTER64 = "70"  # int

TAGS = (INTEGER, OCTETS, NULL, OBJECT_ID, IPADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64)


@dataclass(frozen=True, slots=True)
class Value:
    """One varbind value as the agent sent it."""

    tag: str
    value: int | bytes | str | None

    @property
    def is_number(self) -> bool:
        return self.tag in (INTEGER, COUNTER32, GAUGE32, TIMETICKS, COUNTER64)


class Missing(Enum):
    """Why an OID has no value: v2c exceptions, v1 noSuchName, or no answer for it at all."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB = "endOfMibView"
    NO_SUCH_NAME = "noSuchName"  # SNMPv1 error status for the varbind
    NO_ANSWER = "noAnswer"  # timeout after retries


Answer = Value | Missing


def normalize_oid(text: str) -> str:
    """``.1.3.6`` / ``1.3.6.`` -> ``1.3.6``; raises ValueError naming the text if it is not an OID."""
    body = text.strip().strip(".")
    parts = body.split(".") if body else []
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"not an OID: {text!r}")
    return ".".join(str(int(p)) for p in parts)


def oid_key(oid: str) -> tuple[int, ...]:
    """Sort key: numeric, component by component (``1.10`` after ``1.9``)."""
    return tuple(int(p) for p in oid.split("."))
