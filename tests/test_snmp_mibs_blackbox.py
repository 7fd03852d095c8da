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

SCHEMES = ("code", "str", "ticks", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8")
# driver.* lines the driver shell adds (ups.conf / build facts, not the mapping's)
SHELL_VARS = ("driver.name", "driver.version", "driver.version.internal")

# Differences from NUT that are on purpose: (mapping or "*", scheme or "*", variable) -> reason.
ALLOWED: dict[tuple[str, str, str], str] = {}


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
            if registry.get(name) is not None:
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
def nut_upsd(mapping: str) -> dict:
    """Through Debian's upsd: ``upscmd -l`` / ``upsrw -l`` (with types) and the SET each command sends."""
    return snmpsurvey.upsd_survey([mapping], {mapping: nut_scheme(mapping)}, set_rw=False, wait=0.5)[mapping]


# -- nutlite's side ---------------------------------------------------------------------------


def nutlite_run(mapping: str, scheme: Scheme, version: str) -> dict[str, str]:
    """nutlite's engine on the same answers: the published variables."""
    raise NotImplementedError("wired once the engine API is known")


def nutlite_upsd_view(mapping: str, scheme: Scheme, version: str) -> dict:
    """What upscmd -l / upsrw -l would show for nutlite (sorted command names, rw name -> upsd type
    such as ``RW STRING:128``) and the SET varbinds (oid, tag, value) each command sends."""
    raise NotImplementedError("wired once the engine API is known")


MAPPINGS = nutlite_mappings()


@pytest.fixture(scope="module", autouse=True)
def _real_nut() -> None:
    require_snmp_ups()


@pytest.mark.parametrize("mapping", MAPPINGS or [pytest.param("none", marks=pytest.mark.skip("no tables yet"))])
def test_variables_match_nut(mapping: str) -> None:
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


@pytest.mark.parametrize("mapping", MAPPINGS or [pytest.param("none", marks=pytest.mark.skip("no tables yet"))])
def test_commands_and_rw_match_nut(mapping: str) -> None:
    nut = nut_upsd(mapping)
    scheme = nut_scheme(mapping).derive("code")
    ours = nutlite_upsd_view(mapping, scheme, "v1" if scheme.templates else "v2c")
    assert ours["cmds"] == nut["cmds"], f"{mapping}: upscmd -l differs"
    assert ours["rw"] == {k: v["type"] for k, v in nut["rw"].items()}, f"{mapping}: upsrw -l differs"
    sets = {cmd: [tuple(vb[0:1]) + tuple(vb[1] or ()) for vb in got["set"]] for cmd, got in nut["sets"].items()}
    assert ours["sets"] == sets, f"{mapping}: the SETs of the instant commands differ"
