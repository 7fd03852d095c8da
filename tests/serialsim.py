"""Shared by the tests of nutlite's serial drivers on the simulated UPSes (:mod:`nutlite.sim`).

* :func:`serial_lockdir`, an autouse fixture for the modules that import it;
* the fault scenarios of ``test_q1.py`` and ``test_apcsmart.py`` (a silent UPS, a garbled reply, the
  port disappearing) and ``nutlite sim`` run from the command line;
* the two simulators and the two stacks (Debian's driver and nutlite's, both behind Debian's upsd) of
  ``test_q1_side_by_side.py`` and ``test_apcsmart_side_by_side.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import serial
from nutenv import FLAVOURS, REPO_ROOT, NutEnv, UpsSpec, compare_vars, get_var, upsd_list, wait_for

from nutlite.sim.pty import PtyServer

Sim = TypeVar("Sim", bound=PtyServer)


@pytest.fixture(autouse=True)
def serial_lockdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Autouse where imported: the serial drivers' lock files go to a folder of the test's own
    (``NUTLITE_LOCKDIR``), not to /run/lock."""
    lock = tmp_path / "lock"
    lock.mkdir()
    monkeypatch.setenv("NUTLITE_LOCKDIR", str(lock))
    return lock


# --------------------------------------------------------------------------------------------------
# One driver on one simulator


def serves(env: NutEnv, ups: str) -> bool:
    """upsd has a status of ``ups`` (the driver's data is not stale)."""
    return get_var(env, ups).startswith(f"VAR {ups} ups.status")


def stale(env: NutEnv, ups: str) -> bool:
    return get_var(env, ups) == "ERR DATA-STALE"


def silent_ups_goes_stale_and_recovers(env: NutEnv, sim: Any, ups: str, recovery: float) -> str:
    """The UPS stops answering: the data goes stale within MAXAGE (5 s, the env's); it answers again: the
    data is back within ``recovery`` seconds. Returns the driver's log."""
    assert serves(env, ups)
    sim.ups.apply("mute")
    t0 = time.monotonic()
    wait_for(lambda: stale(env, ups), 5, "DATA-STALE", env)
    assert time.monotonic() - t0 < 5  # within MAXAGE
    sim.ups.apply("unmute")
    wait_for(lambda: serves(env, ups), recovery, "recovery within 2 polls", env)
    log = env.driver_log(ups)
    assert "the UPS answers again" in log
    assert env.upsd_running()
    return log


def garbled_reply_is_logged(env: NutEnv, sim: Any, ups: str, fault: str, logged: str, timeout: float) -> None:
    """One reply is damaged (``fault``: ``garbage`` or ``truncate``): the driver logs ``logged``, then recovers."""
    sim.ups.apply(fault)
    wait_for(lambda: logged in env.driver_log(ups), timeout, f"log line for {fault}", env)
    wait_for(lambda: "the UPS answers again" in env.driver_log(ups), timeout, "recovery", env)
    assert serves(env, ups)


def port_disappears_and_comes_back(env: NutEnv, sim: Any, ups: str, without_port: float = 0.0) -> None:
    """The serial adapter is unplugged (for ``without_port`` seconds after the data went stale) and plugged
    in again: the driver reopens the port and follows the UPS as before."""
    sim.unplug()
    wait_for(lambda: stale(env, ups), 8, "DATA-STALE after unplug", env)
    assert "lost " in env.driver_log(ups) or "does not exist" in env.driver_log(ups)
    if without_port:
        time.sleep(without_port)
    sim.replug()
    wait_for(lambda: serves(env, ups), 8, "data after replug", env)
    assert "reopened" in env.driver_log(ups)
    sim.ups.apply("mains off")
    wait_for(lambda: get_var(env, ups) == f'VAR {ups} ups.status "OB"', 5, "OB after replug", env)


@contextlib.contextmanager
def sim_cli(tmp_path: Path, kind: str, script: str) -> Iterator[tuple[str, serial.Serial]]:
    """``nutlite sim <kind> --link … --script …`` in a subprocess: its first line of output, and its pty
    opened (half a second after, for the script to run)."""
    script_file = tmp_path / "script"
    script_file.write_text(script)
    link = tmp_path / "tty"
    p = subprocess.Popen([sys.executable, "-m", "nutlite", "sim", kind, "--link", str(link), "--script", str(script_file)],
                         stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert p.stdout is not None
        first = p.stdout.readline()
        with serial.Serial(str(link), 2400, timeout=2) as ser:
            time.sleep(0.5)
            yield first, ser
    finally:
        p.terminate()
        p.wait(10)


# --------------------------------------------------------------------------------------------------
# Side by side: each flavour's driver on a simulator of its own


@contextlib.contextmanager
def sim_pair(make: Callable[[str], Sim]) -> Iterator[dict[str, Sim]]:
    """One started simulator per flavour (``make(flavour)`` builds it); stopped at the end."""
    out = {f: make(f).start() for f in FLAVOURS}
    try:
        yield out
    finally:
        for s in out.values():
            s.stop()


def start_side_by_side(factory: Callable[..., NutEnv], sims: dict[str, Any], ups: str, driver: str,
                       options: dict[str, str]) -> dict[str, NutEnv]:
    """Per flavour a stack of its ``driver`` reading its own simulator, behind Debian's upsd."""
    return {
        flavour: factory([UpsSpec(ups, driver=driver, port=str(sims[flavour].link), options=options)],
                         driver_flavour=flavour, upsd_flavour="debian")
        for flavour in FLAVOURS
    }


def step_through_script(sims: dict[str, Any], envs: dict[str, NutEnv], ups: str,
                        script: Sequence[tuple[str, list[str]]], expected_status: Mapping[str, str],
                        known: Iterable[str], marker_format: str = ".1f") -> dict[str, dict[str, str]]:
    """Carry out ``script`` (steps of (name, simulator actions)) at both simulators and, after each step,
    compare the two variable lists but for the ``known`` differences (and Debian's ``ups.status`` with
    ``expected_status``, to make sure the script does what it says). Each step also sets a unique
    temperature (30, 31, … as ``marker_format`` writes it), to know that both drivers have polled the UPS
    since. Fails with every difference of every step; returns both variable lists after the last step."""
    report = []
    got: dict[str, dict[str, str]] = {}
    for step, (name, actions) in enumerate(script):
        marker = format(30 + step, marker_format)
        for s in sims.values():
            for a in [*actions, f"temp {marker}"]:
                s.ups.apply(a)
        wait_for(lambda marker=marker: all(upsd_list(e, ups).get("ups.temperature") == marker for e in envs.values()),
                 10, f"both drivers polled step {name!r}", *envs.values())
        time.sleep(1.2)  # one more poll each, so nothing from the step is still on its way
        got = {f: upsd_list(e, ups) for f, e in envs.items()}
        if name in expected_status:
            assert got["debian"]["ups.status"] == expected_status[name], (name, got["debian"])
        report.extend(f"[{name}] {p}" for p in compare_vars(got["debian"], got["nutlite"], known))
    assert not report, "\n".join(report)
    return got
