"""`nutlite sim`: its help documents the whole script language (from the same table the interpreter
uses), scripts are checked before the simulator starts, and the demo's and the simulator's help texts
carry no reST markup."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nutlite.sim.apc import ApcUps
from nutlite.sim.q1 import Q1Ups
from nutlite.sim.script import ScriptedUps, ScriptError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serialsim  # noqa: E402
from serialsim import serial_lockdir  # noqa: E402, F401 - autouse fixture: lock files in the test's own folder

MODELS: dict[str, type[ScriptedUps]] = {"q1": Q1Ups, "apc": ApcUps}


def nutlite(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", *args], capture_output=True, text=True, timeout=30)


def help_section(text: str, title: str) -> list[str]:
    """The lines of a section of a help text (from its title to the next blank line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        out.append(line)
    return out


def listed_actions(text: str, kind: str) -> dict[str, list[str]]:
    """The actions of ``kind``'s section of ``nutlite sim -h``: {name: its argument words}."""
    out = {}
    title = next(t for t in text.splitlines() if t.startswith("Script actions of") and t.endswith(f"({kind}):"))
    for line in help_section(text, title):
        if line.startswith("   "):  # the continuation of a description
            continue
        usage = re.split(r"\s{2,}", line.strip())[0].split()
        out[usage[0]] = usage[1:]
    return out


def sample(arg: str) -> str:
    """A valid value for an argument as the help shows it."""
    if "|" in arg:
        return arg.split("|")[0]
    return {"CHAR": "E", "VALUE": "OFF"}.get(arg, "1")


@pytest.mark.parametrize("kind", MODELS)
def test_help_lists_every_script_action(kind: str) -> None:
    """What the help lists for a kind is what its interpreter accepts: every action, with arguments of the
    form shown; and nothing else."""
    r = nutlite("sim", "-h")
    assert r.returncode == 0, r.stderr
    listed = listed_actions(r.stdout, kind)
    model = MODELS[kind]
    assert set(listed) == set(model.actions)
    assert {"mains", "drain", "battery", "load", "mute", "garbage", "truncate", "sleep"} <= set(listed)
    script = [" ".join([name, *map(sample, args)]) for name, args in listed.items()]
    assert model.check_script(script) == []
    ups = model()
    for line in script:
        ups.apply(line)
    with pytest.raises(ScriptError, match="unknown action 'explode'"):
        ups.apply("explode")


def test_example_script_of_the_help_is_valid() -> None:
    text = nutlite("sim", "-h").stdout
    example = help_section(text, "Example script (q1):")
    assert len(example) > 4 and any("mains off" in line for line in example)
    assert Q1Ups.check_script(example) == []


@pytest.mark.parametrize("args", [("demo", "-h"), ("sim", "-h")])
def test_help_has_no_markup(args: tuple[str, ...]) -> None:
    r = nutlite(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: nutlite {args[0]} ")
    for markup in ("``", ":mod:", ":func:", ":class:", ":meth:", "`", "\n* "):
        assert markup not in r.stdout, (markup, r.stdout)


def test_bad_script_is_refused_before_the_simulator_starts(tmp_path: Path) -> None:
    script = tmp_path / "cut.txt"
    script.write_text("mains off  # fine\nmains maybe\nexplode now\ndrain fast\nsleep\n")
    r = nutlite("sim", "q1", "--script", str(script))
    assert r.returncode == 2
    assert r.stdout == ""  # no pty was set up
    for problem in ("line 2: mains: expected on or off, got 'maybe'", "line 3: unknown action 'explode'",
                    "line 4: drain: RATE must be a number, got 'fast'", "line 5: sleep takes SECONDS"):
        assert f"{script}: {problem}" in r.stderr
    assert "line 1" not in r.stderr and "Traceback" not in r.stderr
    r = nutlite("sim", "apc", "--script", str(tmp_path / "missing"))
    assert r.returncode == 2 and f"cannot read the script {tmp_path / 'missing'}" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("kind, line, want", [
    ("q1", "type sideways", "type: expected online or offline, got 'sideways'"),
    ("q1", "boost now", "boost takes no argument"),
    ("apc", "selftest maybe", "selftest: expected OK, NG, BT or NO, got 'maybe'"),
    ("apc", "reason LL", "reason: CHAR must be one character, got 'LL'"),
    ("apc", "eeprom E", "eeprom takes CHAR VALUE"),
    ("apc", "charge 1", "unknown action 'charge'"),  # the Q1 word; an APC UPS recharges
])
def test_script_errors_say_what_is_wrong(kind: str, line: str, want: str) -> None:
    with pytest.raises(ScriptError, match=re.escape(want)):
        MODELS[kind]().apply(line)


def test_apc_sim_cli_and_script(tmp_path: Path) -> None:
    with serialsim.sim_cli(tmp_path, "apc", "mains off\nselftest NG\n") as (first, ser):
        assert "APC Smart-UPS on /dev/pts/" in first
        ser.write(b"X")
        assert ser.read_until(b"NG\r\n").endswith(b"NG\r\n")
        ser.write(b"Q")
        assert ser.read_until(b"\r\n").endswith(b"10\r\n")  # on battery
