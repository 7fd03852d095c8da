"""nutlite's apcsmart next to Debian's NUT 2.8.0 apcsmart, on the same simulated APC Smart-UPS.

Each driver gets its own simulator (same script) on its own pseudo-terminal, and its own private
stack (Debian's upsd in both, so only the driver differs). After every step of the script the two
variable lists are compared value for value, and the writable variables, their allowed values and
the instant commands once; :data:`KNOWN_DIFFERENCES` lists what may differ, and why. Killpower (``-k``
with each ``sdtype``), the instant commands and SET are compared by what each simulator was told.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nutlite.sim.apc import ApcUps, PtyApc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serialsim  # noqa: E402
from nutenv import REAL_NUT_DIR, NutEnv, UpsSpec, upsd_list, wait_for  # noqa: E402
from serialsim import serial_lockdir  # noqa: E402, F401 - autouse fixture: lock files in the test's own folder

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("real_nut")]

KNOWN_DIFFERENCES = {
    "driver.version": "NUT's release number (2.8.0) against nutlite's own version",
    "driver.parameter.port": "each driver reads its own simulator, on its own pty link",
}

# Behaviour (not variables) that differs, checked by the tests named:
BEHAVIOUR_DIFFERENCES = {
    "alert timing": "Debian's 2.8.0 driver reads the port in canonical mode, so an alert character (sent "
                    "without a line end) is only seen in front of the next reply, at the next poll; nutlite "
                    "reads it when it arrives and polls at once (test_apcsmart.py::test_alerts_act_before_the_next_poll). "
                    "After the poll both publish the same.",
    "killpower on line power": "Debian 2.8.0's shutdown always logs 'status read failed, assuming LB+OB' (even "
                               "with a good Q reply) and so sends S, which a UPS on line power refuses (NA): "
                               "the UPS never powers down if the mains came back during the shutdown (NUT FAQ "
                               "#58). nutlite reads the status and does what man apcsmart documents: sdtype "
                               "0/1 send @nnn on line power, sdtype 4 sends U, waits cshdelay, then S "
                               "(test_killpower_on_line_power).",
}

# (name, simulator actions); each step also sets a unique temperature, used to know that both
# drivers have polled the UPS since the step.
SCRIPT: list[tuple[str, list[str]]] = [
    ("OL", []),
    ("OB", ["mains off", "battery 80"]),
    ("OB LB", ["lowbatt on", "battery 20"]),
    ("overload", ["mains on", "lowbatt off", "battery 60", "load 115"]),
    ("boost", ["load 40", "boost", "reason L"]),
    ("trim", ["trim", "reason H"]),
    ("replace battery", ["normal", "replace on", "selftest NG"]),
    ("calibration", ["replace off", "calibrate on", "reason S", "selftest OK"]),
    ("odd values", ["calibrate off", "reason Z", "selftest BT", "eeprom E OFF", "eeprom q 05"]),
    ("mains back, full battery", ["battery 100", "load 21", "reason O", "selftest NO", "eeprom E 168"]),
]

EXPECTED_STATUS = {  # what Debian's driver showed, to make sure the script does what it says
    "OL": "OL", "OB": "OB", "OB LB": "OB LB", "overload": "OL OVER", "boost": "BOOST OL", "trim": "TRIM OL",
    "replace battery": "OL RB", "calibration": "CAL OL",
}


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[dict[str, PtyApc]]:
    with serialsim.sim_pair(lambda f: PtyApc(ApcUps(), link=tmp_path / f"tty-{f}")) as out:
        yield out


def listing(env: NutEnv, what: str) -> dict[str, str]:
    """LIST VAR / LIST RW as {name: value}, LIST CMD as {name: ""}."""
    return upsd_list(env, "apc", what)


def enums(env: NutEnv, names: list[str]) -> dict[str, list[str]]:
    out = {}
    with env.connect() as c:
        for name in names:
            out[name] = [*c.request_list(f"LIST ENUM apc {name}")[1:-1], c.request(f"GET TYPE apc {name}")]
    return out


def start_pair(factory: Callable[..., NutEnv], sims: dict[str, PtyApc],
               options: dict[str, str] | None = None) -> dict[str, NutEnv]:
    opts = {"pollinterval": "1", **(options or {})}
    return serialsim.start_side_by_side(factory, sims, "apc", "apcsmart", opts)


def test_same_variables_through_a_script(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyApc]) -> None:
    envs = start_pair(nut_env_factory, sims)
    got = {f: listing(e, "RW") for f, e in envs.items()}
    assert len(got["debian"]) == 12
    assert got["debian"] == got["nutlite"]
    rw = sorted(got["debian"])
    got_enums = {f: enums(e, rw) for f, e in envs.items()}
    assert got_enums["debian"] == got_enums["nutlite"]
    got = {f: listing(e, "CMD") for f, e in envs.items()}
    assert len(got["debian"]) == 12 and got["debian"] == got["nutlite"]
    got = serialsim.step_through_script(sims, envs, "apc", SCRIPT, EXPECTED_STATUS, KNOWN_DIFFERENCES, "05.1f")
    # the settings changed by "eeprom" are read at start (and after an EEPROM change), by both
    assert got["nutlite"]["ups.test.interval"] == "1209600"


def run_k(flavour: str, link: Path, tmp: Path, options: dict[str, str]) -> int:
    env = NutEnv(tmp / f"k-{flavour}-{time.monotonic_ns()}",
                 [UpsSpec("apc", driver="apcsmart", port=str(link), options=options)])
    env.write_configs()
    argv = [str(REAL_NUT_DIR / "apcsmart")] if flavour == "debian" else [sys.executable, "-m", "nutlite", "driver"]
    r = subprocess.run([*argv, "-a", "apc", "-k", *NutEnv._user_args()], env=env.environ(), capture_output=True,
                       text=True, timeout=60)
    return r.returncode


SHUTDOWN_CHARS = ("S", "K", "Z", "U", "R")


def shutdown_log(ups: ApcUps) -> list[str]:
    """What the UPS was told that matters for a shutdown (not the queries)."""
    return [c for c in ups.commands if c in SHUTDOWN_CHARS or c.startswith("@")]


def run_both_k(sims: dict[str, PtyApc], tmp: Path, options: dict[str, str]) -> dict[str, tuple[int, list[str]]]:
    results: dict[str, tuple[int, list[str]]] = {}

    def one(flavour: str) -> None:
        rc = run_k(flavour, sims[flavour].link, tmp, options)  # type: ignore[arg-type]
        results[flavour] = (rc, shutdown_log(sims[flavour].ups))

    threads = [threading.Thread(target=one, args=(f,)) for f in sims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results


@pytest.mark.parametrize("options, wire", [
    ({}, ["S", "R"]),
    ({"sdtype": "0"}, ["S", "R"]),
    ({"sdtype": "1"}, ["S", "R"]),
    ({"sdtype": "2"}, ["Z", "Z", "R"]),
    ({"sdtype": "3"}, ["K", "K", "R"]),
    ({"sdtype": "4"}, ["S", "R"]),  # on battery the CS hack needs no simulated power failure
    ({"sdtype": "5", "awd": "3"}, ["@003", "R"]),
    ({"advorder": "3", "sdtype": "5"}, ["Z", "Z", "R"]),  # advorder wins over sdtype
])
def test_killpower_sends_the_same(tmp_path: Path, sims: dict[str, PtyApc], options: dict[str, str],
                                  wire: list[str]) -> None:
    """On battery (where upsmon's shutdown happens) both send the sdtype's command sequence."""
    for s in sims.values():
        s.ups.apply("mains off")
    results = run_both_k(sims, tmp_path, options)
    assert results["debian"] == results["nutlite"], results
    assert results["nutlite"] == (0, wire)
    assert len(sims["nutlite"].ups.shutdowns) == 1


@pytest.mark.parametrize("options, debian, nutlite", [
    ({"sdtype": "0"}, ["S", "R"], ["@000", "R"]),
    ({"sdtype": "1"}, ["S", "@000", "R"], ["@000", "R"]),
    ({"sdtype": "4", "cshdelay": "1.0"}, ["S", "R"], ["U", "S", "R"]),
])
def test_killpower_on_line_power(tmp_path: Path, sims: dict[str, PtyApc], options: dict[str, str],
                                 debian: list[str], nutlite: list[str]) -> None:
    """See BEHAVIOUR_DIFFERENCES["killpower on line power"]: nutlite's UPS really powers down."""
    results = run_both_k(sims, tmp_path, options)
    assert results["debian"][1] == debian
    assert results["nutlite"] == (0, nutlite)
    assert [s.command for s in sims["nutlite"].ups.shutdowns] == [nutlite[-2]]
    if options["sdtype"] == "0":
        assert sims["debian"].ups.shutdowns == []  # the UPS refused S on line power


def test_killpower_with_the_940_0095b_cable_on_a_pty(tmp_path: Path, sims: dict[str, PtyApc]) -> None:
    """cable=940-0095B needs DTR/RTS control, which a pty does not have: both refuse, and tell."""
    results = run_both_k(sims, tmp_path, {"cable": "940-0095B", "sdtype": "3"})
    assert results["debian"][0] != 0 and results["nutlite"][0] != 0
    assert results["debian"][1] == results["nutlite"][1] == []


COMMANDS = ["test.battery.start", "test.battery.stop", "test.panel.start", "calibrate.start", "calibrate.stop",
            "bypass.start", "bypass.stop", "load.on", "test.failure.start"]


def _wait_told(sim: PtyApc, since: int, char: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while sim.ups.commands[since:].count(char) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def send_commands(env: NutEnv, sim: PtyApc) -> None:
    """Each command once (the nasty ones twice, 3.2 s apart), the next one when the UPS got it."""
    with env.connect(timeout=15) as c:
        assert c.request("USERNAME admin") == "OK"
        assert c.request("PASSWORD adminpw") == "OK"
        for cmd in COMMANDS:
            n = len(sim.ups.commands)
            assert c.request(f"INSTCMD apc {cmd}") == "OK", cmd
            char = {"test.battery.start": "W", "test.battery.stop": "W", "test.panel.start": "A",
                    "calibrate.start": "D", "calibrate.stop": "D", "bypass.start": "^", "bypass.stop": "^",
                    "load.on": "\x0e", "test.failure.start": "U"}[cmd]
            _wait_told(sim, n, char, 2 if cmd == "load.on" else 1)
        # asked once: nothing happens; asked again 3.2 s later: carried out (once)
        for cmd, char, count in (("shutdown.stayoff", "K", 2), ("load.off", "Z", 2), ("shutdown.return", "S", 1)):
            n = len(sim.ups.commands)
            assert c.request(f"INSTCMD apc {cmd}") == "OK", cmd
            time.sleep(3.2)
            assert char not in sim.ups.commands[n:]
            assert c.request(f"INSTCMD apc {cmd}") == "OK", cmd
            _wait_told(sim, n, char, count)
            time.sleep(0.2)  # the reply to the second K/Z


COMMAND_CHARS = ("W", "A", "D", "^", "\x0e", "U", "Z", "K", "S")


def test_instant_commands_send_the_same(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyApc]) -> None:
    for s in sims.values():
        s.ups.apply("mains off")
    envs = start_pair(nut_env_factory, sims, {"pollinterval": "5"})
    marks = {f: len(s.ups.commands) for f, s in sims.items()}
    threads = [threading.Thread(target=send_commands, args=(e, sims[f])) for f, e in envs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    wait_for(lambda: all(s.ups.commands.count("S") >= 1 for s in sims.values()), 10, "shutdown.return at both",
             *envs.values())
    sent = {f: [c for c in s.ups.commands[marks[f]:] if c in COMMAND_CHARS] for f, s in sims.items()}
    assert sent["debian"] == sent["nutlite"], repr(sent)
    assert sent["nutlite"] == ["W", "W", "A", "D", "D", "^", "^", "\x0e", "\x0e", "U", "K", "K", "Z", "Z", "S"]


def test_set_steps_the_same(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyApc]) -> None:
    envs = start_pair(nut_env_factory, sims, {"pollinterval": "5"})
    marks = {f: len(s.ups.commands) for f, s in sims.items()}
    sets = [("input.transfer.high", "271"), ("input.transfer.low", "999"), ("ups.test.interval", "0"),
            ("input.sensitivity", "L"), ("ups.id", "NEWNAME"), ("battery.date", "01/02/23")]

    def run(env: NutEnv) -> None:
        with env.connect(timeout=15) as c:
            assert c.request("USERNAME admin") == "OK"
            assert c.request("PASSWORD adminpw") == "OK"
            for name, value in sets:
                c.request(f'SET VAR apc {name} "{value}"')
                time.sleep(0.8)

    threads = [threading.Thread(target=run, args=(e,)) for e in envs.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    time.sleep(1)
    got = {f: listing(e, "RW") for f, e in envs.items()}
    assert got["debian"] == got["nutlite"]
    assert (got["nutlite"]["input.transfer.high"], got["nutlite"]["ups.id"]) == ("271", "NEWNAME")
    told = {f: [c for c in s.ups.commands[marks[f]:] if c.startswith("-") or "=" in c] for f, s in sims.items()}
    assert told["debian"] == told["nutlite"], told
    assert sims["nutlite"].ups.settings["E"] == "ON "  # as Debian: "0" is what ON (and OFF) read as
