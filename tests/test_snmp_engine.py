"""The sans-IO SNMP core (detection, MIB tables, engine) on the real device recordings of
../shared/data/snmp, compared value for value with what Debian's snmp-ups 2.8.0 published for each
(the ``.vars``, ``.cmds`` and ``.rw`` files), for SNMP v2c and v1 answers. No network: the recording
answers the GETs as snmpsim does (v2c noSuchInstance, v1 noSuchName for what it lacks).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nutlite.drivers.tables import snmp as tables
from nutlite.snmp import snmprec
from nutlite.snmp.detect import Detector
from nutlite.snmp.engine import Engine, Pass

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "snmp"
RECORDINGS = sorted(p.name[: -len(".snmprec")] for p in DATA.glob("*.snmprec")) if DATA.is_dir() else []
pytestmark = pytest.mark.skipif(not RECORDINGS, reason="../shared/data/snmp not found")

# Allowed differences from NUT, each with its reason: (recording, version, variable) -> our value
ALLOWED: dict[tuple[str, str, str], str | None] = {}
# Commands NUT lists and nutlite does not, with the reason: (recording, version) -> {command: reason}
COMMANDS_NOT_OFFERED = {
    ("eatonupsm2_9px-empg2", "v1"): {
        "shutdown.return": "NUT 2.8.0 lists it over v1 although the OID it asks for it (534.1.9.6, no "
                           "instance) answers noSuchName, by a rule the black-box survey did not find; "
                           "nutlite offers a command only when its OID answers",
    },
}


def read_vars(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(errors="surrogateescape").splitlines():
        name, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):
            name, sep, value = line[:-1], ":", ""
        if sep:
            out[name] = value
    return out


def read_cmds(path: Path) -> list[str]:
    return sorted(m.group(1) for line in path.read_text().splitlines() if (m := re.match(r"(\S+) - ", line)))


def read_rw(path: Path) -> list[str]:
    return sorted(re.findall(r"^\[(\S+)\]$", path.read_text(), re.M))


def run(plan: Pass, table: dict, version: str) -> dict[str, str]:
    while (oids := plan.next_oids()) is not None:
        plan.feed(snmprec.answer(table, oids, version))
    res = plan.result()
    return res.values


def simulate(name: str, version: str = "v2c", mibs: str = "auto") -> tuple[Detector, Engine | None, dict[str, str]]:
    """Detection, the first pass and one later pass, as the driver does them; the published values."""
    table = snmprec.load(DATA / f"{name}.snmprec")
    detector = Detector(tables, mibs)
    while (oids := detector.next_oids()) is not None:
        detector.feed(snmprec.answer(table, oids, version))
    if detector.result is None:
        return detector, None, {}
    engine = Engine(detector.result)
    published = {"device.type": detector.result.device_type,
                 "driver.version.data": f"{detector.result.name} MIB {detector.result.version}"}
    published.update(run(engine.first_pass(), table, version))
    published.update(run(engine.full_pass(), table, version))
    return detector, engine, published


def expected(name: str, version: str) -> dict[str, str]:
    suffix = ".v1.vars" if version == "v1" else ".vars"
    got = read_vars(DATA / f"{name}.nut-2.8.0{suffix}")
    return {k: v for k, v in got.items()
            if not k.startswith("driver.") or k == "driver.version.data"}


@pytest.mark.parametrize("version", ["v2c", "v1"])
@pytest.mark.parametrize("name", RECORDINGS)
def test_same_variables_as_nut(name: str, version: str) -> None:
    want = expected(name, version)
    detector, engine, got = simulate(name, version)
    if not want:
        assert detector.error, f"{name}: NUT refused the device, nutlite chose {detector.result}"
        assert detector.sysoid in detector.error
        return
    assert detector.error is None, detector.error
    for (rec, ver, var), ours in ALLOWED.items():
        if rec == name and ver == version:
            want.pop(var, None) if ours is None else want.__setitem__(var, ours)
    missing = {k: v for k, v in want.items() if k not in got}
    extra = {k: v for k, v in got.items() if k not in want}
    wrong = {k: (want[k], got[k]) for k in want if k in got and got[k] != want[k]}
    assert not (missing or extra or wrong), f"missing {missing}\nextra {extra}\nwrong (NUT, ours) {wrong}"


@pytest.mark.parametrize("version", ["v2c", "v1"])
@pytest.mark.parametrize("name", RECORDINGS)
def test_same_commands_and_writable_variables(name: str, version: str) -> None:
    suffix = ".v1.cmds" if version == "v1" else ".cmds"
    want = read_cmds(DATA / f"{name}.nut-2.8.0{suffix}")
    _, engine, got = simulate(name, version)
    if engine is None:
        assert not want
        return
    want = [c for c in want if c not in COMMANDS_NOT_OFFERED.get((name, version), {})]
    assert sorted(engine.commands()) == want
    if version == "v2c":
        offered = sorted(w.name for w in engine.writable() if w.name in got)
        assert offered == read_rw(DATA / f"{name}.nut-2.8.0.rw")


def _passes(engine: Engine, table: dict, n: int = 2) -> list:
    out = []
    for i in range(n):
        plan = engine.first_pass() if i == 0 else engine.full_pass()
        while (oids := plan.next_oids()) is not None:
            plan.feed(snmprec.answer(table, oids))
        out.append(plan.result())
    return out


def test_bad_values_are_reported_once_and_skipped() -> None:
    from nutlite.snmp.types import OBJECT_ID, OCTETS, Value

    table = snmprec.load(DATA / "generex-ups_cs141.snmprec")
    table["1.3.6.1.2.1.33.1.2.4.0"] = Value(OBJECT_ID, "1.3.6.1.4.1")  # battery.charge: an OID
    table["1.3.6.1.2.1.33.1.2.5.0"] = Value(OCTETS, b"\xff\xfe")  # battery.voltage: binary junk
    first, second = _passes(Engine(tables.load("ietf")), table)
    assert [p for p in first.problems if "battery.charge" in p] == \
        ["battery.charge (1.3.6.1.2.1.33.1.2.4.0): expected a number, got OBJECT IDENTIFIER '1.3.6.1.4.1'"]
    assert not second.problems  # once per OID
    assert "battery.charge" not in first.values and "battery.charge" not in second.values
    assert first.values["battery.voltage"] == "0"  # a non-numeric string reads as 0, as NUT
    assert first.values["ups.status"] == "OL BYPASS" and second.values["ups.status"] == "OL BYPASS"


def test_an_absurd_outlet_count_is_capped_and_named() -> None:
    from nutlite.snmp.engine import MAX_COUNT
    from nutlite.snmp.types import INTEGER, Value

    mapping = tables.load("apc_pdu")
    count_oid = next(e.oid for e in mapping.entries if e.var == "outlet.count")
    table = {count_oid: Value(INTEGER, 10**9), "1.3.6.1.4.1.318.1.1.4.1.4.0": Value(INTEGER, 1)}
    engine = Engine(mapping)
    (first,) = _passes(engine, table, 1)
    assert engine.counts["outlet.count"] == MAX_COUNT
    assert any("out of range" in p and "outlet.count" in p for p in first.problems)


def test_commands_and_sets() -> None:
    table = snmprec.load(DATA / "apc_smx750.snmprec")
    engine = Engine(tables.load("apcc"))
    _passes(engine, table, 1)
    assert engine.instcmd("shutdown.return")[0][0] == "1.3.6.1.4.1.318.1.1.1.6.1.1.0"
    with pytest.raises(KeyError):
        engine.instcmd("no.such.command")
    oid, value = engine.setvar("device.contact", "ops")[0]
    assert (oid, value.value) == ("1.3.6.1.2.1.1.4.0", b"ops")
    with pytest.raises(ValueError, match="longer than"):
        engine.setvar("device.contact", "x" * 200)
    cyber = Engine(tables.load("cyberpower"))
    _passes(cyber, snmprec.load(DATA / "cyberpower.snmprec"), 1)
    with pytest.raises(ValueError, match="upscmd UPS load.off VALUE"):
        cyber.instcmd("load.off")
    assert cyber.instcmd("load.off", "2")[0][1].value == 2
