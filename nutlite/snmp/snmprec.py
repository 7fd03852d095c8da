"""snmpsim's ``.snmprec`` recordings (``OID|TYPE|VALUE`` lines) as values, and answers from them.

Used by the tests and benchmarks to run the sans-IO core on real device recordings without a network,
with the answers an agent gives: v2c ``noSuchInstance`` or v1 ``noSuchName`` for what is not recorded.
"""

from __future__ import annotations

from pathlib import Path

from nutlite.snmp.types import Answer, Missing, Value, normalize_oid


class SnmprecError(ValueError):
    """A malformed line; the message names the file and line."""


def _value(tag: str, text: str) -> Value:
    if tag in ("2", "65", "66", "67", "70"):
        return Value(tag, int(text))
    if tag == "4":
        return Value("4", text.rstrip().encode("utf-8", "surrogateescape"))  # snmpsim strips trailing blanks
    if tag in ("4x", "68x"):
        return Value("4" if tag == "4x" else "68", bytes.fromhex(text))
    if tag == "68":
        return Value("68", text.encode("utf-8", "surrogateescape"))
    if tag == "5":
        return Value("5", None)
    if tag == "6":
        return Value("6", normalize_oid(text))
    if tag == "64":
        return Value("64", text.strip())
    raise ValueError(f"unknown type tag {tag!r}")


def load(path: str | Path) -> dict[str, Value]:
    """OID -> value for every line of a recording."""
    table: dict[str, Value] = {}
    raw = Path(path).read_bytes().decode("utf-8", errors="surrogateescape")
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("|", 2)
        if len(parts) != 3:
            raise SnmprecError(f"{path}:{lineno}: expected OID|TYPE|VALUE, got {line[:60]!r}")
        try:
            table[normalize_oid(parts[0])] = _value(parts[1], parts[2])
        except ValueError as exc:
            raise SnmprecError(f"{path}:{lineno}: {exc}") from None
    return table


def answer(table: dict[str, Value], oids: list[str], version: str = "v2c") -> dict[str, Answer]:
    """What an agent serving ``table`` answers to a GET of each OID (one varbind per OID)."""
    missing = Missing.NO_SUCH_NAME if version == "v1" else Missing.NO_SUCH_INSTANCE
    return {oid: table.get(oid, missing) for oid in oids}
