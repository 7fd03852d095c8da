"""genericups: contact-closure UPSes on the modem-control lines of a serial port.

Pseudo-terminals have no modem lines, so the lines are faked at the lowest layer: ``tests/fakemodem``
is a small C library preloaded into the driver process; it answers the modem-line ioctls on the port
from a state file and logs every line the driver sets. The same shim serves nutlite's driver and
Debian's ``/lib/nut/genericups``, so everything above libc is the real code path (pyserial included).

* the line parser and the status rules (no processes);
* every cable type (0..23) through a running nutlite stack: all 16 combinations of the input lines
  give the status the manual's table says; the cable power lines are set at start; ``-k`` raises the
  shutdown line(s) and holds them for ``sdtime``;
* side by side with Debian's driver (``interop``): the same line states give the same variables, the
  same lines are raised for ``-k``, for every type and for overrides; :data:`KNOWN_DIFFERENCES`;
* killpower through the running driver (``upsdrvctl shutdown``), bad settings, port faults.

To stay fast, one stack per flavour runs every type at once (one driver per type, all reading the same
input-line state file) and the line states are stepped through for all of them together.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from nutlite.drivers.programs import genericups as gu
from nutlite.drivers.tables.genericups_types import CABLE_TYPES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakemodem import Event, FakeModem, build, write_inputs  # noqa: E402
from nutenv import REAL_NUT_DIR, NutEnv, UpsSpec, real_nut_available, require_real_nut  # noqa: E402

# --------------------------------------------------------------------------------------------------
# The expectations, transcribed from genericups(8) of NUT 2.8.0: CP, OL, LB, SD (None = no shutdown
# known: killpower fails). Two entries follow Debian's 2.8.0 binary where the manual says otherwise.

MANUAL: dict[int, tuple[str, str, str, str | None]] = {
    0: ("DTR RTS", "-CTS", "DCD", "RTS"),  # manual: SD=DTR; Debian 2.8.0 raises RTS
    1: ("DTR", "-RNG", "DCD", "RTS"),
    2: ("RTS", "-CTS", "DCD", "DTR RTS"),
    3: ("DTR", "-CTS", "DCD", "DTR RTS"),  # manual: OL=CTS; Debian 2.8.0 reads OL on CTS low
    4: ("RTS", "CTS", "-DCD", ""),  # SD=-RTS: every output line low
    5: ("DTR", "CTS", "-DCD", "DTR RTS"),
    6: ("DTR", "CTS", "-DCD", "RTS"),
    7: ("RTS", "CTS", "-DCD", "DTR"),
    8: ("DTR", "CTS", "-DCD", None),
    9: ("", "-DCD", "CTS", "RTS"),
    10: ("RTS", "CTS", "-DCD", "DTR"),
    11: ("DTR", "-CTS", "-DCD", "ST"),
    12: ("RTS", "-CTS", "DCD", "DTR"),
    13: ("DTR RTS", "DCD", "-CTS", "ST"),
    14: ("DTR", "DCD", "-CTS", "RTS"),
    15: ("DTR", "CTS", "-DCD", "ST"),
    16: ("DTR RTS", "CTS", "-DCD", None),
    17: ("DTR", "CTS", "-DCD", None),
    18: ("DTR", "CTS", "DCD", None),  # manual: SD=none; Debian 2.8.0 has no shutdown for it
    19: ("DTR", "CTS", "-DCD", "RTS"),
    20: ("DTR", "-CTS", "DCD", "ST"),
    21: ("RTS", "CTS", "-DCD", "DTR RTS"),
    22: ("RTS", "CTS", "-DCD", "DTR"),
    23: ("RTS", "CTS", "-DCD", ""),  # SD=none: every output line low
}
EXTRA_INPUTS = {23: {"RB": "-RNG", "BYPASS": "-DSR"}}

LINES = ("CTS", "DCD", "RNG", "DSR")
COMBOS: list[frozenset[str]] = [frozenset(c) for n in range(5) for c in itertools.combinations(LINES, n)]
SDTIME = 1


def _is(signal: str, high: frozenset[str]) -> bool:
    low = signal.startswith("-")
    return (signal.lstrip("-") in high) != low


def expected_status(t: int, high: frozenset[str]) -> str:
    _, ol, lb, _ = MANUAL[t]
    words = ["LB"] if _is(lb, high) else []
    words.append("OL" if _is(ol, high) else "OB")
    for name in ("RB", "BYPASS"):
        sig = EXTRA_INPUTS.get(t, {}).get(name)
        if sig and _is(sig, high):
            words.append(name)
    return " ".join(words)


# Overrides run next to the cable types, side by side with Debian (all accepted by both drivers).
OVERRIDES: dict[str, dict[str, str]] = {
    "ov-ol": {"upstype": "12", "OL": "-CTS"},  # as the type says (Debian warns: no difference)
    "ov-ol-cts": {"upstype": "1", "OL": "-CTS"},
    "ov-cp-lb": {"upstype": "1", "CP": "DTR+RTS", "LB": "-DSR"},
    "ov-rb-bypass": {"upstype": "1", "RB": "CTS", "BYPASS": "-DCD"},
    "ov-two-lines": {"upstype": "7", "OL": "CTS+DCD", "LB": "none"},
    "ov-mixed": {"upstype": "7", "OL": "-CTS+DCD", "LB": "NULL", "CP": "ST"},
    "ov-names": {"upstype": "23", "OL": "none", "LB": "RNG", "mfr": "Acme", "model": "Contact 1",
                 "serial": "SN 42", "sdtime": "3"},
}

KNOWN_DIFFERENCES = {
    "driver.version": "NUT's release number (2.8.0) against nutlite's own version",
    "driver.parameter.port": "each driver has its own pseudo-terminal",
}

# Behaviour that differs but is not a variable (not compared; what the tests below check instead).
BEHAVIOUR_DIFFERENCES = {
    "opening the port": "pyserial lowers DTR and RTS (TIOCMBIC) while opening, before the cable power "
                        "is set; Debian leaves them as the kernel raised them until its TIOCMSET. From the "
                        "cable power on, the lines are the same (compared).",
    "port fault": "when the modem-line calls fail, Debian keeps its file descriptor and waits; nutlite "
                  "closes the port, reopens it and powers the cable again (a USB adapter that was "
                  "unplugged comes back with every line low): test_port_fault_goes_stale_and_recovers",
    "killpower through the running driver": "Debian 2.8.0's drivers have no driver.killpower on the socket "
                                            "(its upsdrvctl starts 'genericups -k'); nutlite's raises SD in "
                                            "the running driver and keeps it, as NUT 2.8.1+ does: "
                                            "test_upsdrvctl_shutdown",
    "settings Debian ignores": "see STRICTER_THAN_DEBIAN",
}

# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def fakemodem_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lib = build(tmp_path_factory.mktemp("fakemodem"))
    if lib is None:
        msg = "no C compiler (gcc) to build the modem-line test double tests/fakemodem/fakemodem.c"
        if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
            pytest.fail(f"{msg}; install it: apt-get install gcc", pytrace=False)
        pytest.skip(msg)
    return lib


def flavours() -> list[str]:
    return ["nutlite", "debian"] if real_nut_available() else ["nutlite"]


def private_env(base: Path) -> dict[str, str]:
    lock = base / "lock"
    lock.mkdir(parents=True, exist_ok=True)
    return {"NUTLITE_LOCKDIR": str(lock)}


def wait_until(pred: Callable[[], object], timeout: float, what: str, logs: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.05)


def list_vars(env: NutEnv, ups: str) -> dict[str, str]:
    with env.connect() as c:
        lines = c.request_list(f"LIST VAR {ups}")
    if not lines[0].startswith("BEGIN"):
        return {"<error>": lines[0]}
    out = {}
    for line in lines[1:-1]:
        _, _, name, value = line.split(" ", 3)
        out[name] = value[1:-1]
    return out


def start_stack(base: Path, flavour: str, specs: list[UpsSpec], upsd: str | None = None) -> NutEnv:
    """All drivers started at once, then upsd (faster than NutEnv.start's one by one)."""
    return NutEnv(base, specs, driver_flavour=flavour, upsd_flavour=upsd or flavour).start_together()


def outputs_at_first_poll(modem: FakeModem) -> frozenset[str]:
    """The output lines high when the driver first read the inputs (the cable power)."""
    events = modem.events(("SET", "GET"))
    first_get = next(i for i, e in enumerate(events) if e.kind == "GET")
    sets = [e for e in events[:first_get] if e.kind == "SET"]
    return sets[-1].raised if sets else frozenset({"DTR", "RTS"})  # as the kernel opens a port


@dataclass
class Matrix:
    """What every driver published for every input-line combination, per flavour."""

    results: dict[str, dict[str, dict[frozenset[str], dict[str, str]]]] = field(default_factory=dict)
    start_outputs: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"results": {f: {u: {" ".join(sorted(c)): v for c, v in combos.items()} for u, combos in upses.items()}
                            for f, upses in self.results.items()},
                "start": {f"{f}/{u}": sorted(lines) for (f, u), lines in self.start_outputs.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Matrix:
        m = cls()
        m.results = {f: {u: {frozenset(c.split()): v for c, v in combos.items()} for u, combos in upses.items()}
                     for f, upses in data["results"].items()}
        for key, lines in data["start"].items():
            flavour, _, ups = key.partition("/")
            m.start_outputs[(flavour, ups)] = frozenset(lines)
        return m


def ups_options() -> dict[str, dict[str, str]]:
    out = {f"t{t}": {"upstype": str(t)} for t in range(24)}
    out.update(OVERRIDES)
    return {name: {"pollinterval": "1", **opts} for name, opts in out.items()}


def run_matrix(base: Path, lib: Path) -> Matrix:
    """One stack per flavour with a driver per cable type and override case, all reading the same
    input lines; step through every combination of the lines and record what upsd serves."""
    state = base / "inputs.lines"
    write_inputs(state)
    m = Matrix()
    envs: dict[str, NutEnv] = {}
    modems: dict[tuple[str, str], FakeModem] = {}

    def logs() -> str:
        return "\n".join(e.logs(20) for e in envs.values())

    try:
        for flavour in flavours():
            specs = []
            for name, opts in ups_options().items():
                modem = FakeModem(base, f"{flavour}-{name}", lib, state=state)
                modems[(flavour, name)] = modem
                specs.append(UpsSpec(name, driver="genericups", port=str(modem.link), options=opts,
                                     env={**modem.env(), **private_env(base)}))
            envs[flavour] = start_stack(base / flavour, flavour, specs)
            m.results[flavour] = {name: {} for name in ups_options()}
        for key, modem in modems.items():
            m.start_outputs[key] = outputs_at_first_poll(modem)
        for combo in COMBOS:  # all different: a driver that read this combination read it now
            write_inputs(state, *sorted(combo))
            wait_until(lambda combo=combo: all(any(e.inputs == combo for e in md.events(("GET",))[-3:])
                                               for md in modems.values()),
                       15, f"every driver read {sorted(combo)}", logs)
            time.sleep(0.15)  # the change travels to upsd: read until two reads agree
            seen = None
            for _ in range(20):
                now = {(f, name): list_vars(env, name) for f, env in envs.items() for name in ups_options()}
                if now == seen:
                    break
                seen = now
                time.sleep(0.2)
            for (flavour, name), values in now.items():
                m.results[flavour][name][combo] = values
    finally:
        for env in envs.values():
            env.stop()
        for modem in modems.values():
            modem.close()
    return m


T = TypeVar("T")


def computed_once(factory: pytest.TempPathFactory, name: str, compute: Callable[[Path], T],
                  encode: Callable[[T], Any], decode: Callable[[Any], T]) -> T:
    """``compute`` once per test run, also with pytest-xdist: the first worker computes and saves the
    result, the others wait for it and read it (the stacks are heavy for two shared cores)."""
    shared = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    result_file = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result_file.exists():
            return decode(json.loads(result_file.read_text()))
        value = compute(factory.mktemp(name))
        result_file.write_text(json.dumps(encode(value)))
        return value


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, fakemodem_lib: Path) -> Matrix:
    return computed_once(tmp_path_factory, "gu-matrix", lambda base: run_matrix(base, fakemodem_lib),
                         Matrix.to_json, Matrix.from_json)


@dataclass
class KillRun:
    rc: int
    output: str
    events: list[Event]

    @property
    def after_cp(self) -> list[Event]:
        """Everything after the driver powered the cable (its first TIOCMSET)."""
        for i, e in enumerate(self.events):
            if e.kind == "SET" and e.args[0] == "TIOCMSET":
                return self.events[i + 1:]
        return []

    @property
    def cp(self) -> frozenset[str] | None:
        first = next((e for e in self.events if e.kind == "SET" and e.args[0] == "TIOCMSET"), None)
        return None if first is None else first.raised

    @property
    def shutdown(self) -> tuple[str, frozenset[str] | str] | None:
        """("SET", lines high) or ("BREAK", duration), the first thing after the cable power."""
        for e in self.after_cp:
            if e.kind == "SET":
                return ("SET", e.raised)
            if e.kind == "SENDBREAK":
                return ("BREAK", e.args[0])
        return None

    @property
    def hold(self) -> float | None:
        """Seconds from the shutdown signal to the port being closed."""
        evs = [e for e in self.after_cp if e.kind in ("SET", "SENDBREAK", "CLOSE", "EXIT")]
        if len(evs) < 2:
            return None
        return evs[1].time - evs[0].time


KILL_CASES: dict[str, dict[str, str]] = {
    **{f"t{t}": {"upstype": str(t), "sdtime": str(SDTIME)} for t in range(24)},
    "sd-none": {"upstype": "1", "SD": "none"},
    "sd-st-dtr": {"upstype": "1", "SD": "ST+DTR"},
    "sd-low-rts": {"upstype": "1", "SD": "-RTS+DTR", "sdtime": "0"},
    "sd-spaces": {"upstype": "1", "SD": "DTR RTS"},
    "sd-break-hold": {"upstype": "1", "SD": "ST", "sdtime": "2"},
    "cp-st": {"upstype": "1", "CP": "ST"},
    "sd-for-8": {"upstype": "8", "SD": "DTR"},
}


def driver_cmd(flavour: str, *args: str) -> list[str]:
    head = [str(REAL_NUT_DIR / "genericups")] if flavour == "debian" else [sys.executable, "-m", "nutlite", "driver"]
    return [*head, *args, *NutEnv._user_args()]


def run_kills(base: Path, lib: Path) -> dict[str, dict[str, KillRun]]:
    """``driver -a <ups> -k`` for every case and flavour, all at once (no driver running)."""
    out: dict[str, dict[str, KillRun]] = {}
    modems: list[FakeModem] = []
    try:
        procs = []
        for flavour in flavours():
            specs, mods = [], {}
            for name, opts in KILL_CASES.items():
                modem = FakeModem(base, f"{flavour}-{name}", lib)
                modem.set_inputs("RNG")  # on battery for most types
                modems.append(modem)
                mods[name] = modem
                specs.append(UpsSpec(name, driver="genericups", port=str(modem.link), options=opts))
            env = NutEnv(base / flavour, specs)
            env.write_configs()
            for name, modem in mods.items():
                p = subprocess.Popen(driver_cmd(flavour, "-a", name, "-k"),
                                     env={**env.environ(), **modem.env(), **private_env(base)},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                procs.append((flavour, name, modem, p))
        for flavour, name, modem, p in procs:
            text, _ = p.communicate(timeout=60)
            out.setdefault(flavour, {})[name] = KillRun(p.returncode, text, modem.events())
    finally:
        for modem in modems:
            modem.close()
    return out


def _kills_to_json(kills: dict[str, dict[str, KillRun]]) -> Any:
    return {f: {n: [k.rc, k.output, [[e.time, e.pid, e.kind, list(e.args)] for e in k.events]]
                for n, k in runs.items()} for f, runs in kills.items()}


def _kills_from_json(data: Any) -> dict[str, dict[str, KillRun]]:
    return {f: {n: KillRun(rc, text, [Event(t, pid, kind, tuple(args)) for t, pid, kind, args in evs])
                for n, (rc, text, evs) in runs.items()} for f, runs in data.items()}


@pytest.fixture(scope="module")
def kills(tmp_path_factory: pytest.TempPathFactory, fakemodem_lib: Path) -> dict[str, dict[str, KillRun]]:
    return computed_once(tmp_path_factory, "gu-kill", lambda base: run_kills(base, fakemodem_lib),
                         _kills_to_json, _kills_from_json)


# --------------------------------------------------------------------------------------------------
# The parser and the rules (no processes)


def test_table_is_complete() -> None:
    assert [t.number for t in CABLE_TYPES] == list(range(24))
    for t in CABLE_TYPES:
        cable = gu.build_cable(t, {})
        cp, ol, lb, sd = MANUAL[t.number]
        assert gu.line_names(cable.cp, gu.OUTPUT_LINES) == ("+".join(cp.split()) or "none"), t
        assert cable.sd is None if sd is None else gu.line_names(cable.sd, gu.OUTPUT_LINES) == ("+".join(sd.split()) or "none"), t


@pytest.mark.parametrize("value, mask, expect", [
    ("CTS", "CTS", "CTS"), ("-CTS", "CTS", ""), ("CTS+DCD", "CTS DCD", "CTS DCD"), ("-CTS+DCD", "CTS DCD", "DCD"),
    ("CTS DCD", "CTS DCD", "CTS DCD"), ("CTS,-DSR", "CTS DSR", "CTS"), ("--RNG", "RNG", ""), (" DSR ", "DSR", "DSR"),
    ("none", "", ""), ("NULL", "", ""), ("-none", "", ""),
])
def test_parse_input(value: str, mask: str, expect: str) -> None:
    bits = {n: gu.INPUT_LINES[n] for n in gu.INPUT_LINES}
    sig = gu.parse_input(value)
    assert sig.mask == sum(bits[n] for n in mask.split())
    assert sig.expect == sum(bits[n] for n in expect.split())


@pytest.mark.parametrize("value, lines", [
    ("DTR", "DTR"), ("DTR+RTS", "DTR+RTS"), ("RTS DTR", "DTR+RTS"), ("-RTS", "none"), ("-RTS+DTR", "DTR"),
    ("ST", "ST"), ("ST+DTR", "DTR+ST"), ("none", "none"), ("NULL", "none"),
])
def test_parse_output(value: str, lines: str) -> None:
    assert gu.line_names(gu.parse_output(value), gu.OUTPUT_LINES) == lines


@pytest.mark.parametrize("parse, value, message", [
    (gu.parse_input, "DTR", "DTR is an output line, not an input"),
    (gu.parse_input, "-RTS", "RTS is an output line"),
    (gu.parse_input, "-CST", "'CST' is not an input line; use CTS, DCD, RNG, DSR"),
    (gu.parse_input, "cts", "(line names are upper case)"),
    (gu.parse_input, "", "no line given"),
    (gu.parse_input, "CTS+none", "cannot be combined"),
    (gu.parse_input, "CTS+-CTS", "CTS is given twice"),
    (gu.parse_output, "DTR+-DTR", "DTR is given twice"),
    (gu.parse_output, "CTS", "CTS is an input line, not an output"),
    (gu.parse_output, "DTR+RNG", "RNG is an input line"),
    (gu.parse_output, "DTS", "'DTS' is not an output line"),
    (gu.parse_output, "-", "'-' needs a line name"),
    (gu.parse_output, "", "no line given"),
])
def test_parse_errors(parse: Callable[[str], object], value: str, message: str) -> None:
    with pytest.raises(gu.SignalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(value)


def test_status_rules() -> None:
    bits = gu.INPUT_LINES
    cable = gu.build_cable(CABLE_TYPES[23], {})
    assert cable.status(0) == ["LB", "OB", "RB", "BYPASS"]
    assert cable.status(bits["CTS"] | bits["DCD"] | bits["RNG"] | bits["DSR"]) == ["OL"]
    off = gu.build_cable(CABLE_TYPES[1], {"OL": "none", "LB": "none"})
    assert off.status(0) == off.status(bits["RNG"] | bits["DCD"]) == ["OL"]  # unused OL reads on line
    two = gu.build_cable(CABLE_TYPES[1], {"OL": "-CTS+DCD"})
    assert [two.status(b)[-1] for b in (0, bits["CTS"], bits["DCD"], bits["CTS"] | bits["DCD"])] == ["OB", "OB", "OL", "OB"]


# --------------------------------------------------------------------------------------------------
# Every cable type on nutlite's stack


@pytest.mark.parametrize("t", range(24))
def test_cable_type(matrix: Matrix, kills: dict[str, dict[str, KillRun]], t: int) -> None:
    cp, _, _, sd = MANUAL[t]
    name = f"t{t}"
    problems = []
    assert matrix.start_outputs[("nutlite", name)] == frozenset(cp.split()), "cable power at start"
    for combo, got in matrix.results["nutlite"][name].items():
        want = expected_status(t, combo)
        if got.get("ups.status") != want:
            problems.append(f"lines {sorted(combo) or 'none'} high: {got.get('ups.status')!r}, expected {want!r}")
    statuses = {v.get("ups.status") for v in matrix.results["nutlite"][name].values()}
    assert {"OL", "OB", "LB OB"} <= statuses
    assert not problems, "\n".join(problems)
    v = matrix.results["nutlite"][name][frozenset()]
    ct = CABLE_TYPES[t]
    assert (v["ups.mfr"], v["ups.model"], v["device.mfr"], v["driver.parameter.upstype"]) == (ct.mfr, ct.model, ct.mfr, str(t))

    k = kills["nutlite"][name]
    assert k.cp == frozenset(cp.split()), k.output
    if sd is None:
        assert k.rc == 1 and k.shutdown is None, k.output
        assert f"upstype {t} " in k.output and "has no known shutdown line" in k.output
    elif sd == "ST":
        assert (k.rc, k.shutdown) == (0, ("BREAK", "4901")), k.output
        assert k.hold is not None and k.hold < 0.5  # a break is not held
    else:
        assert (k.rc, k.shutdown) == (0, ("SET", frozenset(sd.split()))), k.output
        assert k.hold is not None and SDTIME - 0.05 <= k.hold <= SDTIME + 1.5, k.hold


def test_overrides_on_nutlite(matrix: Matrix, kills: dict[str, dict[str, KillRun]]) -> None:
    r = matrix.results["nutlite"]
    none, all_ = frozenset(), frozenset(LINES)
    assert r["ov-ol-cts"][frozenset({"CTS"})]["ups.status"] == "OB"
    assert r["ov-ol-cts"][none]["ups.status"] == "OL"
    assert matrix.start_outputs[("nutlite", "ov-cp-lb")] == {"DTR", "RTS"}
    assert r["ov-cp-lb"][none]["ups.status"] == "LB OL"
    assert r["ov-rb-bypass"][frozenset({"CTS"})]["ups.status"] == "OL RB BYPASS"
    assert r["ov-two-lines"][frozenset({"CTS"})]["ups.status"] == "OB"
    assert r["ov-two-lines"][frozenset({"CTS", "DCD"})]["ups.status"] == "OL"
    assert r["ov-mixed"][frozenset({"DCD"})]["ups.status"] == "OL"
    assert matrix.start_outputs[("nutlite", "ov-mixed")] == {"ST"}
    names = r["ov-names"][all_]
    assert (names["ups.status"], names["ups.mfr"], names["ups.model"], names["ups.serial"]) == (
        "LB OL", "Acme", "Contact 1", "SN 42")
    assert names["device.serial"] == "SN 42" and names["driver.parameter.sdtime"] == "3"
    k = kills["nutlite"]
    assert (k["sd-none"].rc, k["sd-none"].shutdown) == (0, ("SET", frozenset()))
    assert "SD is none" in k["sd-none"].output
    assert k["sd-st-dtr"].shutdown == ("SET", frozenset({"ST", "DTR"}))
    assert k["sd-low-rts"].shutdown == ("SET", frozenset({"DTR"}))
    assert k["sd-spaces"].shutdown == ("SET", frozenset({"DTR", "RTS"}))
    assert k["sd-break-hold"].shutdown == ("BREAK", "4901") and k["sd-break-hold"].hold < 0.5
    assert k["cp-st"].cp == {"ST"}
    assert (k["sd-for-8"].rc, k["sd-for-8"].shutdown) == (0, ("SET", frozenset({"DTR"})))


# --------------------------------------------------------------------------------------------------
# Side by side with Debian's genericups


def compare(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [f"{n}: Debian {a.get(n)!r}, nutlite {b.get(n)!r}" for n in sorted(set(a) | set(b))
            if n not in KNOWN_DIFFERENCES and a.get(n) != b.get(n)]


@pytest.mark.interop
@pytest.mark.parametrize("name", [*(f"t{t}" for t in range(24)), *OVERRIDES])
def test_same_as_debian(matrix: Matrix, kills: dict[str, dict[str, KillRun]], name: str) -> None:
    require_real_nut()
    problems = []
    for combo in COMBOS:
        d, n = matrix.results["debian"][name][combo], matrix.results["nutlite"][name][combo]
        problems.extend(f"[{' '.join(sorted(combo)) or 'no line'} high] {p}" for p in compare(d, n))
    assert matrix.start_outputs[("debian", name)] == matrix.start_outputs[("nutlite", name)], "cable power"
    assert not problems, "\n".join(problems)


@pytest.mark.interop
@pytest.mark.parametrize("case", list(KILL_CASES))
def test_killpower_same_as_debian(kills: dict[str, dict[str, KillRun]], case: str) -> None:
    require_real_nut()
    d, n = kills["debian"][case], kills["nutlite"][case]
    assert (d.rc, d.cp, d.shutdown) == (n.rc, n.cp, n.shutdown), f"Debian:\n{d.output}\nnutlite:\n{n.output}"
    if d.hold is not None and d.shutdown and d.shutdown[0] == "SET":
        assert n.hold is not None and abs(d.hold - n.hold) < 0.5, (d.hold, n.hold)


# --------------------------------------------------------------------------------------------------
# Killpower through the running driver


def test_upsdrvctl_shutdown(tmp_path: Path, fakemodem_lib: Path) -> None:
    """``upsdrvctl shutdown``: the running driver raises SD (here DTR+RTS, held 2 s) and keeps it."""
    modem = FakeModem(tmp_path, "ups", fakemodem_lib)
    modem.set_inputs("CTS")  # type 2: on battery
    env = start_stack(tmp_path / "env", "nutlite", [UpsSpec(
        "cc", driver="genericups", port=str(modem.link), env={**modem.env(), **private_env(tmp_path)},
        options={"upstype": "2", "sdtime": "2", "pollinterval": "1"})])
    try:
        assert list_vars(env, "cc")["ups.status"] == "OB"
        pid = env.driver_pid("cc")
        start = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "nutlite", "upsdrvctl", "shutdown"], env=env.environ(),
                           capture_output=True, text=True, timeout=60)
        took = time.monotonic() - start
        assert r.returncode == 0, r.stdout + r.stderr + env.logs()
        assert 2 <= took < 10
        sets = [e for e in modem.events(("SET",)) if e.args[0] == "TIOCMSET"]
        assert [e.pid for e in sets] == [pid, pid]  # the running driver did it, no second process
        assert [e.raised for e in sets] == [{"RTS"}, {"DTR", "RTS"}]
        time.sleep(1.5)  # still polling, the shutdown lines stay up
        assert [e.raised for e in modem.events(("SET",)) if e.args[0] == "TIOCMSET"][-1] == {"DTR", "RTS"}
        assert modem.polled_since(time.time() - 1.4)
        assert "Holding the shutdown signal for 2 seconds" in env.driver_log("cc")
    finally:
        env.stop()
        modem.close()


# --------------------------------------------------------------------------------------------------
# Bad settings and port faults

BAD_CONFIGS: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (options, what nutlite says, Debian's reaction: "refused" or "accepted")
    "no-type": ({}, "has no 'upstype' setting", "refused"),
    "type-24": ({"upstype": "24"}, "upstype = '24': there is no UPS type 24; the known types are", "refused"),
    "type-neg": ({"upstype": "-1"}, "there is no UPS type -1", "refused"),
    "type-abc": ({"upstype": "abc"}, "upstype = 'abc': expected a number 0..23", "accepted"),
    "ol-output": ({"upstype": "1", "OL": "DTR"}, "OL = 'DTR': DTR is an output line, not an input", "refused"),
    "rb-output": ({"upstype": "1", "RB": "-ST"}, "RB = '-ST': ST is an output line", "refused"),
    "cp-input": ({"upstype": "1", "CP": "CTS"}, "CP = 'CTS': CTS is an input line, not an output", "refused"),
    "sd-input": ({"upstype": "1", "SD": "-DCD"}, "SD = '-DCD': DCD is an input line", "refused"),
    "ol-typo": ({"upstype": "1", "OL": "-CST"}, "OL = '-CST': 'CST' is not an input line", "refused"),
    "ol-typo2": ({"upstype": "1", "OL": "-CTX"}, "OL = '-CTX': 'CTX' is not an input line", "accepted"),
    "lb-lower": ({"upstype": "1", "LB": "dcd"}, "'dcd' is not an input line (line names are upper case)", "accepted"),
    "sd-typo": ({"upstype": "1", "SD": "DTS"}, "SD = 'DTS': 'DTS' is not an output line", "accepted"),
    "sdtime": ({"upstype": "1", "sdtime": "soon"}, "sdtime = 'soon': expected a whole number of seconds", "accepted"),
}

# What nutlite refuses and Debian 2.8.0 silently accepts (see the list above), and why.
STRICTER_THAN_DEBIAN = {
    "type-abc": "Debian reads a non-number as type 0 (atoi): the wrong lines, with no word said",
    "ol-typo2": "Debian ignores an unknown line name: OL is then unused and reads on line forever, so a "
                "typo hides every power failure (Debian looks for the known names inside the value: '-CST' "
                "is refused there only because it contains 'ST')",
    "lb-lower": "Debian's line names are case-sensitive and a lower-case one is ignored (LB never shows)",
    "sd-typo": "Debian ignores the unknown name: killpower would raise no line at all",
    "sdtime": "Debian reads a non-number as 0 (atoi)",
}


def test_bad_settings(tmp_path: Path, fakemodem_lib: Path) -> None:
    """Each bad setting stops the driver with a message naming ups.conf, the line and the value;
    Debian's driver refuses the same ones (or accepts them silently: :data:`STRICTER_THAN_DEBIAN`)."""
    results: dict[str, dict[str, tuple[int, str]]] = {}
    procs = []
    modems = []
    try:
        for flavour in flavours():
            specs = []
            for name, (opts, _, _) in BAD_CONFIGS.items():
                modem = FakeModem(tmp_path, f"{flavour}-{name}", fakemodem_lib)
                modems.append(modem)
                specs.append(UpsSpec(name, driver="genericups", port=str(modem.link), options=opts))
            env = NutEnv(tmp_path / flavour, specs)
            env.write_configs()
            for name, modem in zip(BAD_CONFIGS, modems[-len(BAD_CONFIGS):], strict=True):
                p = subprocess.Popen(driver_cmd(flavour, "-a", name, "-d", "1"),
                                     env={**env.environ(), **modem.env(), **private_env(tmp_path)},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                procs.append((flavour, name, p))
        for flavour, name, p in procs:
            text, _ = p.communicate(timeout=60)
            results.setdefault(flavour, {})[name] = (p.returncode, text)
    finally:
        for modem in modems:
            modem.close()
    conf_path = tmp_path / "nutlite" / "etc" / "ups.conf"
    conf = conf_path.read_text().splitlines()
    for name, (opts, message, debian) in BAD_CONFIGS.items():
        rc, text = results["nutlite"][name]
        assert rc == 1 and message in text, (name, text)
        assert "Traceback" not in text
        if opts:
            key = list(opts)[-1]
            section = conf.index(f"[{name}]") + 1
            lineno = next(i for i, line in enumerate(conf, 1) if i > section and line.strip().startswith(f"{key} ="))
            assert f"{conf_path}:{lineno}: [{name}] {key}" in text, (name, text)
        if "debian" in results:
            drc, dtext = results["debian"][name]
            assert (drc != 0) == (debian == "refused"), (name, drc, dtext)
            assert debian == "refused" or name in STRICTER_THAN_DEBIAN


def test_port_without_modem_lines_or_missing(tmp_path: Path) -> None:
    """A pty (no modem lines, no test double) and a missing port: a clear error, no traceback."""
    master, slave = os.openpty()
    link = tmp_path / "tty"
    link.symlink_to(os.ttyname(slave))
    try:
        env = NutEnv(tmp_path / "env", [
            UpsSpec("pty", driver="genericups", port=str(link), options={"upstype": "1"}),
            UpsSpec("gone", driver="genericups", port=str(tmp_path / "ttyUSB9"), options={"upstype": "1"})])
        env.write_configs()
        for ups, message in (("pty", "has no modem-control lines"), ("gone", "does not exist")):
            r = subprocess.run(driver_cmd("nutlite", "-a", ups, "-d", "1"), capture_output=True, text=True,
                               env={**env.environ(), **private_env(tmp_path)}, timeout=60)
            assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    finally:
        os.close(master)
        os.close(slave)


def test_port_fault_goes_stale_and_recovers(tmp_path: Path, fakemodem_lib: Path) -> None:
    """The modem-line calls fail (adapter gone): data stale with one log line; when they work again,
    the port is reopened, the cable powered again and the status back."""
    modem = FakeModem(tmp_path, "ups", fakemodem_lib)
    env = start_stack(tmp_path / "env", "nutlite", [UpsSpec(
        "cc", driver="genericups", port=str(modem.link), env={**modem.env(), **private_env(tmp_path)},
        options={"upstype": "7", "pollinterval": "1"})])

    def status() -> str:
        with env.connect() as c:
            return c.request("GET VAR cc ups.status")

    try:
        assert status() == 'VAR cc ups.status "LB OB"'
        modem.set_inputs("EIO")
        wait_until(lambda: status() == "ERR DATA-STALE", 10, "DATA-STALE", env.logs)
        time.sleep(1.5)
        assert env.driver_log("cc").count("Communications with UPS lost") == 1
        t = modem.set_inputs("CTS", "DCD")
        wait_until(lambda: status() == 'VAR cc ups.status "OL"', 10, "OL after the fault", env.logs)
        assert "Communications with UPS re-established" in env.driver_log("cc")
        powered = [e for e in modem.events(("SET",)) if e.time > t and e.args[0] == "TIOCMSET"]
        assert powered and powered[0].raised == {"RTS"}
    finally:
        env.stop()
        modem.close()


def test_permission_problem_names_owner_and_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port the driver may not open: NUT FAQ #4's message (who runs the driver, owner and mode)."""
    import asyncio

    import serial

    from nutlite.drivers.framework.core import DriverError
    from nutlite.drivers.framework.drvconfig import DriverConfig

    def denied(self: serial.Serial) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port: Permission denied")

    master, slave = os.openpty()
    link = tmp_path / "tty"
    link.symlink_to(os.ttyname(slave))
    monkeypatch.setenv("NUTLITE_LOCKDIR", str(tmp_path))
    monkeypatch.setattr(serial.Serial, "open", denied)
    try:
        driver = gu.GenericUps(DriverConfig("cc", "genericups", {"port": str(link), "upstype": "1"}))
        with pytest.raises(DriverError, match=r"is owned by user .* mode 0\d+\n.*fix the permissions"):
            asyncio.run(driver.initups())
    finally:
        os.close(master)
        os.close(slave)
