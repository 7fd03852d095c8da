"""What the simulated UPSes share: the script interpreter, the battery drift and the reply faults.

:class:`ScriptedUps` is a mixin for the UPS models (:class:`nutlite.sim.q1.Q1Ups`,
:class:`nutlite.sim.apc.ApcUps`). Their script actions are methods marked with :func:`action`; each
class's :attr:`ScriptedUps.actions` table (built from the marks, the model's own over the shared ones
here) is what :meth:`ScriptedUps.apply` accepts and what ``nutlite sim -h`` lists
(:func:`describe_actions`), so the two cannot disagree. A script line is ``#`` comments aside the action
and its arguments, checked (:meth:`ScriptedUps.parse`) before anything is changed.
"""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

ON_WORDS = ("on", "1", "yes", "true")
OFF_WORDS = ("off", "0", "no", "false")


class ScriptError(ValueError):
    """A script line the simulator cannot carry out; the message says what and why."""


# --------------------------------------------------------------------------------------------------
# Arguments


@dataclass(frozen=True)
class Param:
    """One argument of an action: how the help shows it, and how its text becomes a value."""

    shown: str
    convert: Callable[[str], Any]


def number(shown: str) -> Param:
    def convert(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ScriptError(f"{shown} must be a number, got '{text}'") from None
    return Param(shown, convert)


def _switch(text: str) -> bool:
    word = text.lower()
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    raise ScriptError(f"expected on or off, got '{text}'")


SWITCH = Param("on|off", _switch)


def choice(*words: str) -> Param:
    canonical = {w.lower(): w for w in words}

    def convert(text: str) -> str:
        got = canonical.get(text.lower())
        if got is None:
            raise ScriptError(f"expected {', '.join(words[:-1])} or {words[-1]}, got '{text}'")
        return got
    return Param("|".join(words), convert)


def character(shown: str) -> Param:
    def convert(text: str) -> str:
        if len(text) != 1:
            raise ScriptError(f"{shown} must be one character, got '{text}'")
        return text
    return Param(shown, convert)


def word(shown: str) -> Param:
    return Param(shown, str)


# --------------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True)
class Action:
    """A script action: its name, arguments and help (``{level}``/``{unit}`` name the model's battery
    level), carried out by the model's method ``method``."""

    name: str
    params: tuple[Param, ...]
    help: str
    method: str

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(p.shown for p in self.params)])


def action(name: str, help: str, *params: Param) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a model method as the script action ``name`` (its arguments converted by ``params``)."""
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn._script_action = Action(name, params, help, fn.__name__)  # type: ignore[attr-defined]
        return fn
    return mark


def describe_actions(model: type[ScriptedUps], width: int = 79) -> list[str]:
    """The help lines of ``model``'s script actions: usage, then what it does."""
    actions = sorted(model.actions.values(), key=lambda a: a.name)
    col = max(len(a.usage) for a in actions) + 2
    out = []
    for a in actions:
        text = a.help.format(level=model._battery_level, unit=model._battery_unit)
        out.extend(textwrap.wrap(text, width, initial_indent=f"  {a.usage:<{col}}", subsequent_indent=" " * (col + 2)))
    return out


class ScriptedUps:
    """Mixin of a simulated UPS model (a dataclass that has the attributes below).

    The model sets the class attributes, marks its own script actions with :func:`action` and implements
    :meth:`_on_battery_power` and :meth:`_battery_full` (what the battery drift needs) and
    :meth:`_truncated` (a reply cut short); :meth:`_ticked` and :meth:`_applied` are optional hooks.
    """

    actions: ClassVar[dict[str, Action]] = {}  # script action name -> Action (built per class)
    _log: ClassVar[logging.Logger]  # where shutdowns are logged
    _battery_attr: ClassVar[str]  # the battery level that "battery", "drain" and the charge rate move
    _battery_level: ClassVar[str] = "level"  # what that level is, for the help ("voltage", "charge")
    _battery_unit: ClassVar[str] = ""  # and its unit ("V", "%")
    _load_type: ClassVar[Callable[[float], Any]] = float  # how "load" stores its value
    _garbage_reply: ClassVar[bytes]  # what the UPS sends after "garbage"

    # instance attributes (dataclass fields of the model)
    drain_rate: float
    charge_rate: float
    load: float
    input_voltage: float
    output_voltage: float
    frequency: float
    temperature: float
    muted: bool
    shutdowns: list[Any]
    clock: Callable[[], float]
    _next_fault: str | None
    _last_tick: float | None
    _lock: threading.RLock

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Action] = {}
        for klass in reversed(cls.__mro__):  # the model's own actions over the shared ones
            for member in vars(klass).values():
                act = getattr(member, "_script_action", None)
                if isinstance(act, Action):
                    table[act.name] = act
        cls.actions = table

    # -- model hooks
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
    @classmethod
    def parse(cls, line: str) -> tuple[Action, list[Any]] | None:
        """The action of a script line and its argument values (None for a blank or comment line);
        :class:`ScriptError` if the line is not one this model can carry out."""
        words = line.split("#", 1)[0].split()
        if not words:
            return None
        name, args = words[0].lower(), words[1:]
        act = cls.actions.get(name)
        if act is None:
            raise ScriptError(f"unknown action '{words[0]}' (known: {', '.join(sorted(cls.actions))})")
        if len(args) != len(act.params):
            wanted = f"takes {' '.join(p.shown for p in act.params)}" if act.params else "takes no argument"
            raise ScriptError(f"{name} {wanted}: '{line.strip()}'")
        try:
            return act, [p.convert(a) for p, a in zip(act.params, args, strict=True)]
        except ScriptError as exc:
            raise ScriptError(f"{name}: {exc}") from None

    @classmethod
    def check_script(cls, lines: Iterable[str]) -> list[str]:
        """The problems of a script, one per bad line (``line N: …``); empty if it is good."""
        problems = []
        for n, line in enumerate(lines, 1):
            try:
                cls.parse(line)
            except ScriptError as exc:
                problems.append(f"line {n}: {exc}")
        return problems

    def apply(self, line: str) -> float:
        """Carry out one script line; returns seconds to sleep (``sleep``), else 0."""
        parsed = self.parse(line)
        if parsed is None:
            return 0.0
        act, values = parsed
        with self._lock:
            self.tick()
            pause = getattr(self, act.method)(*values)
            if pause is not None:
                return float(pause)
            self._applied()
        return 0.0

    def run_script(self, lines: Iterable[str], sleep: Callable[[float], None] = time.sleep) -> None:
        for line in lines:
            pause = self.apply(line)
            if pause:
                sleep(pause)

    # -- the actions every model knows
    @action("sleep", "pause the script for SECONDS", number("SECONDS"))
    def _act_sleep(self, seconds: float) -> float:
        return max(0.0, seconds)

    @action("drain", "the battery {level} falls by RATE {unit} a second while on battery", number("RATE"))
    def _act_drain(self, rate: float) -> None:
        self.drain_rate = rate

    @action("battery", "set the battery {level} ({unit})", number("LEVEL"))
    def _act_battery(self, level: float) -> None:
        setattr(self, self._battery_attr, level)

    @action("load", "output load in percent (over 100: overload)", number("PERCENT"))
    def _act_load(self, percent: float) -> None:
        self.load = self._load_type(percent)

    @action("input", "input voltage", number("VOLTS"))
    def _act_input(self, volts: float) -> None:
        self.input_voltage = volts

    @action("output", "output voltage", number("VOLTS"))
    def _act_output(self, volts: float) -> None:
        self.output_voltage = volts

    @action("freq", "line frequency", number("HZ"))
    def _act_freq(self, hz: float) -> None:
        self.frequency = hz

    @action("temp", "UPS temperature", number("CELSIUS"))
    def _act_temp(self, celsius: float) -> None:
        self.temperature = celsius

    @action("mute", "stop answering (a UPS that went silent)")
    def _act_mute(self) -> None:
        self.muted = True

    @action("unmute", "answer again")
    def _act_unmute(self) -> None:
        self.muted = False

    @action("garbage", "the next reply is noise (once)")
    def _act_garbage(self) -> None:
        self._next_fault = "garbage"

    @action("truncate", "the next reply is cut short (once)")
    def _act_truncate(self) -> None:
        self._next_fault = "truncate"
