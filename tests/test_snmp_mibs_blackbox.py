"""Every MIB mapping nutlite has, against Debian's snmp-ups as a black box (issue 13, item 2).

The same catch-all agent (tests/snmpagent.py; answers per tests/snmpsurvey.py's schemes: an INTEGER
derived from each OID, small constants that walk enumerations, OCTET STRINGs, TimeTicks; count OIDs fixed)
is served to Debian's ``/lib/nut/snmp-ups -x mibs=NAME`` and fed to nutlite's sans-IO engine (which
is given, for every OID it asks, exactly what the agent answers). Published variables, instant commands
and writable variables must be the same, and the SET each command sends too. NUT's outputs are
computed during the test session only (no oracle files derived from NUT are kept).

NUT's drivers run concurrently, one agent each (threads of this process), so all mappings together stay
well under 90 s.
"""

from __future__ import annotations

import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import snmpsurvey  # noqa: E402
from snmpsurvey import Scheme  # noqa: E402

pytestmark = [pytest.mark.interop]

SCHEMES = ("code", "str", "ticks", "k0", "k1", "k2", "k3", "k5")
# driver.* lines the driver shell adds (ups.conf / build facts, not the mapping's)
SHELL_VARS = ("driver.name", "driver.version", "driver.version.internal")

# Differences from NUT that are on purpose: (mapping or "*", scheme or "*", variable) -> reason.
ALLOWED: dict[tuple[str, str, str], str] = {
    **{("apcc", "*", v): "when the three-phase, high-precision and integer frequencies all answer, NUT "
       "keeps the integer one; nutlite the three-phase or high-precision one (tests/snmptablegen.py "
       "HAND_DYNAMIC; with only some of them NUT and nutlite agree: tests/test_snmp_values.py)"
       for v in ("input.frequency", "output.frequency")},
    ("*", "*", "battery.date"): "a battery date that is not MM/DD/YYYY: NUT publishes a made-up 1900-01-00, "
    "nutlite nothing (nutlite.snmp.values.DIFFERENCES_FROM_NUT)",
    **{("*", "*", v): "NUT publishes the ids of outlets -1 and 0 of a PDU whose outlet table it only "
       "guessed; they are no outlets" for v in ("outlet.-1.id", "outlet.0.id")},
}


def require_snmp_ups() -> None:
    if snmpsurvey.SNMP_UPS.exists():
        return
    msg = "Debian's snmp-ups is not installed (apt-get install nut-snmp)"
    if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def nutlite_mappings() -> list[str]:
    """The NUT mapping names nutlite has a table for (in NUT's --list order)."""
    try:
        from nutlite.drivers.tables import snmp as registry  # noqa: PLC0415
    except ImportError:
        return []
    names = []
    for name in snmpsurvey.MAPPINGS:
        try:
            if registry.load(name) is not None:
                names.append(name)
        except (KeyError, LookupError, NotImplementedError, ImportError):
            continue
    return names


def comparable(published: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in published.items() if k not in SHELL_VARS and not k.startswith("driver.parameter.")}


# -- NUT's side, cached per session ---------------------------------------------------------------


@functools.cache
def nut_scheme(mapping: str) -> Scheme:
    """The mapping's count OIDs and guessed tables, found by short runs of NUT's driver."""
    return snmpsurvey.discover_counts(mapping, rounds=4)


@functools.cache
def nut_runs(mapping: str) -> dict[str, snmpsurvey.Run]:
    base = nut_scheme(mapping)
    with ThreadPoolExecutor(4) as pool:
        runs = dict(zip(SCHEMES, pool.map(lambda s: snmpsurvey.run_driver(mapping, base.derive(s), timeout=20),
                                          SCHEMES), strict=True))
    for name, run in runs.items():
        assert run.rc == 0, f"NUT's snmp-ups on {mapping}/{name}: rc {run.rc} {run.error}\n{run.trace_tail}"
    return runs


@functools.cache
def nut_upsd_all() -> dict[str, dict]:
    """Through one Debian upsd with every mapping's driver: ``upscmd -l`` / ``upsrw -l`` (with types)
    and the SET each command sends."""
    names = tuple(MAPPINGS)
    with ThreadPoolExecutor(4) as pool:
        schemes = dict(zip(names, pool.map(nut_scheme, names), strict=True))
    return snmpsurvey.upsd_survey(list(names), schemes, set_rw=False, wait=0.3)


def nut_upsd(mapping: str) -> dict:
    return nut_upsd_all()[mapping]


# -- nutlite's side ---------------------------------------------------------------------------


def _answers(scheme: Scheme, oids: list[str], version: str) -> dict:
    """What the catch-all agent answers to a GET of each OID, as the client would hand it over."""
    from snmpagent import parse_oid  # noqa: PLC0415

    from nutlite.snmp.types import Missing, Value  # noqa: PLC0415

    out: dict = {}
    for oid in oids:
        got = scheme.answer(parse_oid(oid))
        if got is None:
            out[oid] = Missing.NO_SUCH_NAME if version == "v1" else Missing.NO_SUCH_INSTANCE
            continue
        tag, value = got
        if tag in ("4", "4x"):
            value = value if isinstance(value, bytes) else str(value).encode()
            tag = "4"
        elif tag == "6":
            value = ".".join(map(str, value)) if isinstance(value, tuple) else str(value)
        out[oid] = Value(tag, value)
    return out


def _engine_run(mapping: str, scheme: Scheme, version: str) -> tuple[object, dict[str, str]]:
    from nutlite.drivers.tables import snmp as tables  # noqa: PLC0415
    from nutlite.snmp.engine import Engine  # noqa: PLC0415

    m = tables.load(mapping)
    engine = Engine(m)
    published = {"device.type": m.device_type, "driver.version.data": f"{m.name} MIB {m.version}"}
    for plan in (engine.first_pass(), engine.full_pass()):
        while (oids := plan.next_oids()) is not None:
            plan.feed(_answers(scheme, oids, version))
        published.update(plan.result().values)
    return engine, published


def nutlite_run(mapping: str, scheme: Scheme, version: str) -> dict[str, str]:
    """nutlite's engine on the same answers: the published variables."""
    return _engine_run(mapping, scheme, version)[1]


def nutlite_upsd_view(mapping: str, scheme: Scheme, version: str) -> dict:
    """What upscmd -l / upsrw -l would show for nutlite (sorted command names, rw name -> upsd type
    such as ``RW STRING:128``) and the SET varbinds (oid, tag, value) each command sends."""
    engine, published = _engine_run(mapping, scheme, version)
    rw = {}
    for w in engine.writable():  # type: ignore[attr-defined]
        if w.name in published:
            rw[w.name] = "RW " + ("ENUM " if w.enums else "") + (f"STRING:{w.length}" if w.kind == "string" else "NUMBER")
    sets = {}
    for cmd in engine.commands():  # type: ignore[attr-defined]
        try:
            sent = engine.instcmd(cmd)  # type: ignore[attr-defined]
        except ValueError:  # no value to send: NUT sends nothing either ("a provided or default value...")
            sent = []
        sets[cmd] = [(oid, v.tag, v.value.decode() if isinstance(v.value, bytes) else v.value) for oid, v in sent]
    return {"cmds": sorted(engine.commands()), "rw": rw, "sets": sets}  # type: ignore[attr-defined]


MAPPINGS = nutlite_mappings()
#: mappings whose NUT output depends on how NUT guesses a PDU's outlet table from the answers' types and
#: sizes, which nutlite's tables do not model yet: expected to differ (the test says so when they match)
GUESSED_TABLES = {
    "pulizzi_switched1": "NUT counts the outlet rows it finds (3 here) instead of reading outlet.count, "
                         "and publishes ids for outlets -1..1",
    "pulizzi_switched2": "the same as pulizzi_switched1",
    "emerson_avocent_pdu": "NUT numbers the outlets from 0 or 1 depending on the type of the first "
                           "row's answer, and reads device.model as a string",
}


@pytest.fixture(scope="module", autouse=True)
def _real_nut() -> None:
    require_snmp_ups()


@pytest.mark.parametrize("mapping", MAPPINGS or [pytest.param("none", marks=pytest.mark.skip("no tables yet"))])
def test_variables_match_nut(mapping: str) -> None:
    if mapping in GUESSED_TABLES:
        pytest.xfail(GUESSED_TABLES[mapping])
    runs = nut_runs(mapping)
    base = nut_scheme(mapping)
    problems = []
    for name, run in runs.items():
        scheme = base.derive(name)
        version = "v1" if scheme.templates else "v2c"
        ours = nutlite_run(mapping, scheme, version)
        theirs, mine = comparable(run.vars), comparable(ours)
        for var in sorted(set(theirs) | set(mine)):
            if theirs.get(var) == mine.get(var):
                continue
            if any(k in ALLOWED for k in ((mapping, name, var), (mapping, "*", var), ("*", "*", var))):
                continue
            problems.append(f"{name}: {var}: NUT {theirs.get(var)!r}, nutlite {mine.get(var)!r}")
    assert not problems, f"{mapping}: {len(problems)} differences\n" + "\n".join(problems[:60])


@pytest.mark.skipif(not MAPPINGS, reason="no tables yet")
def test_commands_and_rw_match_nut() -> None:
    """All mappings in one Debian upsd (one test, so that upsd starts once however the tests are spread)."""
    problems = []
    for mapping in MAPPINGS:
        nut = nut_upsd(mapping)
        scheme = nut_scheme(mapping).derive("code")
        ours = nutlite_upsd_view(mapping, scheme, "v1" if scheme.templates else "v2c")
        if ours["cmds"] != nut["cmds"]:
            problems.append(f"{mapping}: upscmd -l: NUT {nut['cmds']}, nutlite {ours['cmds']}")
        allowed = {v for (m, _, v) in ALLOWED if m in ("*", mapping)}  # variables published differently
        theirs_rw = {k: v["type"] for k, v in nut["rw"].items() if k not in allowed}
        if {k: v for k, v in ours["rw"].items() if k not in allowed} != theirs_rw:
            problems.append(f"{mapping}: upsrw -l: NUT {theirs_rw}, nutlite {ours['rw']}")
        sets = {cmd: [tuple(vb[0:1]) + tuple(vb[1] or ()) for vb in got["set"]] for cmd, got in nut["sets"].items()}
        if ours["sets"] != sets:
            problems.append(f"{mapping}: the SETs of the instant commands differ: NUT {sets}, nutlite {ours['sets']}")
    assert not problems, "\n".join(problems)
