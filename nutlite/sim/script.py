"""What the simulated UPSes share: the script interpreter, the battery drift and the reply faults.

:class:`ScriptedUps` is a mixin for the UPS models (:class:`nutlite.sim.q1.Q1Ups`,
:class:`nutlite.sim.apc.ApcUps`). It reads script lines (``#`` starts a comment, the first word is the
action, ``on``/``1``/``yes``/``true`` switch on), carries out the actions every model knows and hands
the others to the model's :meth:`ScriptedUps._apply_op`. Each model's docstring lists its whole script
vocabulary; the actions handled here are:

=========================  =====================================================================
``drain <rate/s>``         the battery level falls by that much per second while on battery
``battery <level>``        set the battery level (a voltage or a charge, per model)
``load <percent>``         output load (> 100 = overload)
``input <V>`` ``output <V>`` ``freq <Hz>`` ``temp <C>``
``mute`` / ``unmute``      stop / start answering
``garbage`` / ``truncate`` the next reply is noise / cut short (once)
``sleep <s>``              pause the script
=========================  =====================================================================

The rise of the battery level on mains (``charge_rate``) is set by an action of each model's own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

ON_WORDS = ("on", "1", "yes", "true")

# script action -> the model's attribute (the same in every model)
READINGS = {"input": "input_voltage", "output": "output_voltage", "freq": "frequency", "temp": "temperature"}


class ScriptedUps:
    """Mixin of a simulated UPS model (a dataclass that has the attributes below).

    The model sets the class attributes and implements :meth:`_apply_op` (its own script actions),
    :meth:`_on_battery_power` and :meth:`_battery_full` (what the battery drift needs) and
    :meth:`_truncated` (a reply cut short); :meth:`_ticked` and :meth:`_applied` are optional hooks.
    """

    _log: ClassVar[logging.Logger]  # where shutdowns are logged
    _battery_attr: ClassVar[str]  # the battery level that "battery", "drain" and the charge rate move
    _load_type: ClassVar[Callable[[str], Any]] = float  # how "load" reads its value
    _garbage_reply: ClassVar[bytes]  # what the UPS sends after "garbage"

    # instance attributes (dataclass fields of the model)
    drain_rate: float
    charge_rate: float
    load: float
    muted: bool
    shutdowns: list[Any]
    clock: Callable[[], float]
    _next_fault: str | None
    _last_tick: float | None
    _lock: threading.RLock

    # -- model hooks
    def _apply_op(self, op: str, arg: str, args: list[str], on: bool) -> bool:
        """Carry out one of the model's own script actions; False if ``op`` is not one."""
        raise NotImplementedError

    def _on_battery_power(self) -> bool:
        """Whether the battery drains (else it charges)."""
        raise NotImplementedError

    def _battery_full(self) -> float:
        """The battery level charging stops at."""
        raise NotImplementedError

    def _truncated(self, reply: bytes) -> bytes:
        """``reply`` cut short (``truncate``)."""
        raise NotImplementedError

    def _ticked(self, now: float) -> None:
        """Called by :meth:`tick` (under the lock) after the battery moved."""

    def _applied(self) -> None:
        """Called by :meth:`apply` (under the lock) after an action was carried out (not after ``sleep``)."""

    # -- time
    def tick(self, now: float | None = None) -> None:
        """Move the battery on by the time passed."""
        now = self.clock() if now is None else now
        with self._lock:
            if self._last_tick is not None:
                dt = now - self._last_tick
                level = getattr(self, self._battery_attr)
                if self._on_battery_power() and self.drain_rate:
                    setattr(self, self._battery_attr, max(0.0, level - self.drain_rate * dt))
                elif not self._on_battery_power() and self.charge_rate:
                    setattr(self, self._battery_attr, min(self._battery_full(), level + self.charge_rate * dt))
            self._last_tick = now
            self._ticked(now)

    # -- the serial line
    def _damage(self, reply: bytes) -> bytes:
        """The reply as the fault set by ``garbage`` / ``truncate`` (once) makes it."""
        fault, self._next_fault = self._next_fault, None
        if fault == "garbage":
            return self._garbage_reply
        if fault == "truncate":
            return self._truncated(reply)
        return reply

    def _shut_down(self, shutdown: Any, detail: str = "") -> None:
        """Log a shutdown the UPS was told to do (``shutdown.command`` is what it was told)."""
        self.shutdowns.append(shutdown)
        self._log.info("shutdown received: %s%s", shutdown.command, detail)

    # -- scripting
    def apply(self, line: str) -> float:
        """Carry out one script line; returns seconds to sleep (``sleep``), else 0."""
        words = line.split("#", 1)[0].split()
        if not words:
            return 0.0
        op, args = words[0].lower(), words[1:]
        arg = args[0] if args else ""
        on = arg.lower() in ON_WORDS
        with self._lock:
            self.tick()
            if op == "sleep":
                return float(arg)
            if not (self._apply_op(op, arg, args, on) or self._apply_common(op, arg)):
                raise ValueError(f"unknown simulator action: {line.strip()!r}")
            self._applied()
        return 0.0

    def _apply_common(self, op: str, arg: str) -> bool:
        if op == "drain":
            self.drain_rate = float(arg)
        elif op == "battery":
            setattr(self, self._battery_attr, float(arg))
        elif op == "load":
            self.load = self._load_type(arg)
        elif op in READINGS:
            setattr(self, READINGS[op], float(arg))
        elif op == "mute":
            self.muted = True
        elif op == "unmute":
            self.muted = False
        elif op in ("garbage", "truncate"):
            self._next_fault = op
        else:
            return False
        return True

    def run_script(self, lines: Iterable[str], sleep: Callable[[float], None] = time.sleep) -> None:
        for line in lines:
            pause = self.apply(line)
            if pause:
                sleep(pause)
