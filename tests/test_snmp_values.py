"""NUT's conversions of SNMP values (SNMP-FACTS §4), checked on the synthetic probes of
../shared/data/snmp/probes: each variant changes a few OIDs of a base recording, and NUT 2.8.0's output
for it is known (lines removed / added). nutlite runs the ietf and apcc mappings on the same data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nutlite.drivers.tables import snmp as tables
from nutlite.snmp import snmprec, values
from nutlite.snmp.engine import Engine
from nutlite.snmp.types import COUNTER32, GAUGE32, INTEGER, OBJECT_ID, OCTETS, TIMETICKS, Value

PROBES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "snmp" / "probes"

# Where nutlite deliberately differs (values.DIFFERENCES_FROM_NUT): variant -> {variable: ours}
OURS = {
    "p-alarm638oid": {},  # NUT crashes; nutlite reads the OID's last component, 8: no token
    "f-rt35791395": {"battery.runtime": "2147483700"},
    "p-runtime_big": {"battery.runtime": "128849018820"},
}


def test_numbers_follow_nuts_rules() -> None:
    cases = [(2716, 0.1, "271.60"), (2130, 0.1, "213"), (99999, 0.1, "9999.90"), (-15, 0.1, "-1.50"),
             (16777217, 0.1, "1677721.75"), (123456789, 0.1, "12345679.00"), (35791394, 60, "2147483640"),
             (2147483647, 1, "2147483647"), (-5, 1, "-5")]
    for raw, scale, want in cases:
        assert values.scaled(raw, scale) == want, (raw, scale)
    assert values.scaled(24, 1, decimals=1) == "24.0"


def test_value_types() -> None:
    assert values.number(Value(TIMETICKS, 123400)) == 1234
    assert values.number(Value(GAUGE32, 7)) == values.number(Value(COUNTER32, 7)) == 7
    assert values.number(Value(OCTETS, b"88")) == 88
    assert values.number(Value(OCTETS, b"n/a")) == 0
    assert values.text(Value(OCTETS, b"EAST           ")) == "EAST           "
    assert values.text(Value(OCTETS, b"\x00AB\x00")) == "00 41 42 00 "
    assert values.text(Value(OCTETS, "Сервер".encode())) .startswith("D0 A1 D0 B5 ")
    assert values.text(Value(OCTETS, b"x" * 200)) == "x" * 127
    with pytest.raises(values.WrongType, match="OBJECT IDENTIFIER"):
        values.number(Value(OBJECT_ID, "1.3.6"))


def test_conversions() -> None:
    assert values.convert("mdy_date", Value(OCTETS, b"08/17/2024")) == "2024-08-17"
    assert values.convert("mdy_date", Value(OCTETS, b"soon")) is None
    assert values.convert("temperature", Value(INTEGER, 267), Value(INTEGER, 1)) == "26"
    assert values.convert("temperature", Value(INTEGER, 0), Value(INTEGER, 0)) == "-273"
    assert values.convert("temperature", Value(INTEGER, 2), Value(INTEGER, 2)) == "-17"


def parse_change(text: str) -> tuple[str, Value | None]:
    oid, _, rest = text.partition("=")
    if rest == "(removed)":
        return oid, None
    tag, _, raw = rest.partition(":")
    return oid, snmprec._value(tag, raw)


def variants(name: str) -> list[tuple[str, dict[str, Value], str]]:
    out = []
    for line in (PROBES / f"{name}-variants.tsv").read_text().splitlines()[1:]:
        variant, changes, diff = line.split("\t")
        parts = re.split(r" (?=\d+(?:\.\d+)+=)", changes)
        table = {} if changes == "(base)" else dict(parse_change(c) for c in parts)
        out.append((variant, table, diff))
    return out


def run(mapping: str, table: dict[str, Value]) -> tuple[dict[str, str], list[str]]:
    engine = Engine(tables.load(mapping))
    published: dict[str, str] = {}
    problems: list[str] = []
    for plan in (engine.first_pass(), engine.full_pass()):
        while (oids := plan.next_oids()) is not None:
            plan.feed(snmprec.answer(table, oids))
        res = plan.result()
        published.update(res.values)
        problems += res.problems
    return published, problems


def nut_view(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(": ")
        if not k.startswith("driver.") and k != "device.type":
            out[k] = v
    return out


@pytest.mark.parametrize(("mapping", "base", "variant", "changes", "diff"), [
    (m, b, *v) for m, b in (("ietf", "ietf-probe-base"), ("apcc", "apcc-probe-base"))
    for v in variants(m.replace("apcc", "apcc"))] if PROBES.is_dir() else [],
    ids=lambda x: x if isinstance(x, str) and not x.startswith(("-", "+", "(")) else "")
def test_probe_variant(mapping: str, base: str, variant: str, changes: dict[str, Value], diff: str) -> None:
    table = {k: v for k, v in {**snmprec.load(PROBES / f"{base}.snmprec"), **changes}.items() if v is not None}
    want = nut_view(PROBES / f"{base}.nut-2.8.0.vars")
    ours = OURS.get(variant)
    got, problems = run(mapping, table)
    if diff not in ("(no change)", "") and "crashed" not in diff:
        for part in diff.split(" ; "):
            sign, _, line = part.partition(" ")
            k, _, v = line.partition(": ")
            if sign == "-":
                want.pop(k, None)
            else:
                want[k] = v
    if isinstance(ours, dict):
        want.update(ours)
    assert got == want


def test_symmetra_three_phase_scales_the_transfer_limits_as_nut() -> None:
    """SNMP-FACTS §1: with symmetrathreephase NUT showed 253 / 208 V as 178.87 / 147.06."""
    table = snmprec.load(PROBES / "apcc-probe-base.snmprec")
    plain = Engine(tables.load("apcc"))
    flagged = Engine(tables.load("apcc"), {"symmetrathreephase": True})
    got = {}
    for name, engine in (("plain", plain), ("flagged", flagged)):
        plan = engine.first_pass()
        while (oids := plan.next_oids()) is not None:
            plan.feed(snmprec.answer(table, oids))
        got[name] = plan.result().values
    assert (got["plain"]["input.transfer.high"], got["plain"]["input.transfer.low"]) == ("253", "208")
    assert (got["flagged"]["input.transfer.high"], got["flagged"]["input.transfer.low"]) == ("178.87", "147.06")
    skip = Engine(tables.load("apcc"), {"notransferoids": True})
    assert not any(e.var.startswith("input.transfer.") for e in skip._entries)
