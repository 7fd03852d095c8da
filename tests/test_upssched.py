"""upssched: AT rules, timers that run out or are cancelled, EXECUTE, and the CANCEL fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nutlite.upssched import Timers


def test_timer_table() -> None:
    t = Timers()
    assert t.command(["START", "a", "5"], 100.0) == "OK"
    assert t.command(["START", "a", "50"], 101.0) == "OK running"  # a running timer is left alone
    assert t.command(["START", "b", "x"], 101.0) == "ERR bad seconds"
    assert t.next_in(101.0) == 4.0
    assert t.expired(104.9) == []
    assert t.expired(105.0) == ["a"]
    assert t.command(["CANCEL", "a"], 106.0) == "NOTFOUND"
    assert t.command(["START", "c", "1"], 106.0) == "OK"
    assert t.command(["CANCEL", "c"], 106.5) == "OK" and t.next_in(106.5) is None


@pytest.fixture
def sched(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    log = tmp_path / "calls.log"
    script = tmp_path / "cmd.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {log}\n')
    script.chmod(0o755)
    (tmp_path / "upssched.conf").write_text(f"""
CMDSCRIPT {script}
PIPEFN {tmp_path}/upssched.pipe
LOCKFN {tmp_path}/upssched.lock
AT ONBATT * START-TIMER onbatt 1
AT ONLINE * CANCEL-TIMER onbatt back-before-timer
AT LOWBATT ups@localhost EXECUTE lowbatt-now
AT COMMBAD other@host EXECUTE never
""")
    env = dict(os.environ, NUT_CONFPATH=str(tmp_path), UPSNAME="ups@localhost")
    return log, env


def event(env: dict[str, str], notifytype: str) -> None:
    r = subprocess.run([sys.executable, "-m", "nutlite", "upssched", "message text"], env=dict(env, NOTIFYTYPE=notifytype),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def calls(log: Path, wait_for: str | None = None, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().split() if log.exists() else []
        if wait_for is None or wait_for in lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_timer_runs_out(sched: tuple[Path, dict[str, str]]) -> None:
    log, env = sched
    t0 = time.monotonic()
    event(env, "ONBATT")
    assert calls(log) == []
    assert calls(log, "onbatt") == ["onbatt"]
    assert time.monotonic() - t0 >= 0.9


def test_timer_cancelled_and_fallback(sched: tuple[Path, dict[str, str]]) -> None:
    log, env = sched
    event(env, "ONBATT")
    event(env, "ONLINE")  # cancels the running timer: nothing runs
    time.sleep(1.5)
    assert calls(log) == []
    event(env, "ONLINE")  # no timer running now: the fallback argument runs
    assert calls(log, "back-before-timer") == ["back-before-timer"]


def test_execute_matches_the_ups(sched: tuple[Path, dict[str, str]]) -> None:
    log, env = sched
    event(env, "LOWBATT")
    event(env, "COMMBAD")  # rule for another UPS
    assert calls(log, "lowbatt-now") == ["lowbatt-now"]
    time.sleep(0.3)
    assert calls(log) == ["lowbatt-now"]


def test_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "upssched.conf").write_text("AT ONBATT * START-TIMER x 5\n")
    r = subprocess.run([sys.executable, "-m", "nutlite", "upssched"], capture_output=True, text=True,
                       env=dict(os.environ, NUT_CONFPATH=str(tmp_path), NOTIFYTYPE="ONBATT", UPSNAME="u"))
    assert r.returncode == 1 and "CMDSCRIPT is not set" in r.stderr
    (tmp_path / "upssched.conf").write_text("CMDSCRIPT /bin/true\nAT ONBATT * START-TIMER x 5\n")
    r = subprocess.run([sys.executable, "-m", "nutlite", "upssched"], capture_output=True, text=True,
                       env=dict(os.environ, NUT_CONFPATH=str(tmp_path), NOTIFYTYPE="ONBATT", UPSNAME="u"))
    assert r.returncode == 1 and "PIPEFN and LOCKFN" in r.stderr
    r = subprocess.run([sys.executable, "-m", "nutlite", "upssched"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k not in ("NOTIFYTYPE", "UPSNAME")}
                       | {"NUT_CONFPATH": str(tmp_path)})
    assert r.returncode == 1
