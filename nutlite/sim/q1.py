"""A Megatec "Q1" UPS simulator (NUT-FACTS §8.4).

:class:`Q1Ups` is the UPS itself, sans-IO: bytes from the serial line go in through :meth:`Q1Ups.feed`,
the reply bytes come out. It keeps a log of every command it was given (``commands``), so a test can
see e.g. the ``S.5R0003`` shutdown it received, and a list of the shutdowns in ``shutdowns``.

:class:`PtyQ1` serves a :class:`Q1Ups` on a pseudo-terminal from a thread; the slave side is what a
driver opens (``link`` makes a stable symlink to it). It can also disappear and come back, like a
USB-serial adapter that is unplugged.

``Q1Ups(dialect="mustek")`` also answers ``QS``; ``dialect="voltronic-qs"`` answers ``M`` with ``V``
and ``QS`` (so nutdrv_qx's probe picks those protocols). Unknown commands are echoed back, as many
Megatec units do.

Scripts (``nutlite sim q1 --script FILE`` or :meth:`Q1Ups.apply`): the actions are the methods marked
with :func:`nutlite.sim.script.action` here and in :mod:`nutlite.sim.script` (``nutlite sim -h`` lists
them).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nutlite.sim.pty import PtyServer
from nutlite.sim.script import SWITCH, ScriptedUps, action, choice, number

log = logging.getLogger("nutlite.sim.q1")


@dataclass
class Shutdown:
    """A shutdown the UPS was told to do: delay before the load goes off, then restore delay."""

    command: str
    off_seconds: float
    restore_minutes: int | None  # None = stay off


@dataclass
class Q1Ups(ScriptedUps):
    """The state of a simulated Megatec UPS and its command interpreter."""

    _log: ClassVar[logging.Logger] = log
    _battery_attr: ClassVar[str] = "battery_voltage"
    _battery_level: ClassVar[str] = "voltage"
    _battery_unit: ClassVar[str] = "V"
    _load_type: ClassVar[Callable[[float], Any]] = int
    _garbage_reply: ClassVar[bytes] = b"\xff\x00#@!garbage?\xfe\r"

    input_voltage: float = 230.0
    fault_voltage: float = 230.0
    output_voltage: float = 230.0
    load: int = 21
    frequency: float = 50.0
    battery_voltage: float = 13.50
    temperature: float = 25.0
    utility_fail: bool = False
    battery_low: bool = False
    avr: bool = False
    failed: bool = False
    offline_type: bool = True
    test: bool = False
    shutdown_active: bool = False
    beeper: bool = True
    nominal_voltage: float = 230.0
    nominal_current: int = 4
    nominal_battery: float = 12.0
    nominal_frequency: float = 50.0
    company: str = "NUTLITE"
    model: str = "SIM-Q1"
    firmware: str = "1.0"
    full_battery: float = 13.50
    drain_rate: float = 0.0
    charge_rate: float = 0.0
    muted: bool = False
    dialect: str = "megatec"  # "mustek": also answers QS; "voltronic-qs": M -> V and QS
    answer_f: bool = True
    answer_i: bool = True
    commands: list[str] = field(default_factory=list)
    shutdowns: list[Shutdown] = field(default_factory=list)
    _buf: bytes = b""
    _next_fault: str | None = None
    _last_tick: float | None = None
    clock: Callable[[], float] = time.monotonic
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- the serial line
    def feed(self, data: bytes) -> bytes:
        """Bytes from the driver in, reply bytes out (commands end with CR)."""
        out = b""
        with self._lock:
            self._buf += data
            while b"\r" in self._buf:
                raw, _, self._buf = self._buf.partition(b"\r")
                cmd = raw.decode("latin-1").strip("\n\x00 ")
                if not cmd:
                    continue
                self.commands.append(cmd)
                reply = self.handle(cmd)
                if reply is None or self.muted:
                    continue
                out += self._damage(reply)
            if len(self._buf) > 256:
                self._buf = b""
        return out

    def _truncated(self, reply: bytes) -> bytes:
        return reply[: len(reply) // 2] + b"\r"

    def handle(self, cmd: str) -> bytes | None:
        """The reply to one command (without its CR), or None for commands the UPS does not answer."""
        self.tick()
        c = cmd.upper()
        if c == "Q1" or (c == "QS" and self.dialect in ("mustek", "voltronic-qs")):
            return self.q1_line().encode() + b"\r"
        if c == "M" and self.dialect == "voltronic-qs":
            return b"V\r"
        if c == "F":
            return f"#{self.nominal_voltage:05.1f} {self.nominal_current:03d} {self.nominal_battery:05.2f} {self.nominal_frequency:04.1f}\r".encode() if self.answer_f else None
        if c == "I":
            return f"#{self.company:<15.15} {self.model:<10.10} {self.firmware:<10.10}\r".encode() if self.answer_i else None
        if c == "Q":
            self.beeper = not self.beeper
            return None
        if c == "T" or c == "TL" or re.fullmatch(r"T\d\d", c):
            self.test = True
            return None
        if c == "CT":
            self.test = False
            return None
        if c == "C":
            self.shutdown_active = False
            return None
        m = re.fullmatch(r"S(\.[2-9]|0[1-9]|10|00)(?:R(\d{4}))?", c)
        if m:
            n = m.group(1)
            off = float(n) * 60
            restore = int(m.group(2)) if m.group(2) is not None else None
            when = "never" if restore is None else f"after {restore} min"
            self._shut_down(Shutdown(cmd, off, restore), f" (off in {off:g}s, restore {when})")
            self.shutdown_active = True
            return None
        # Megatec units echo unknown commands back (NUT's q1 fallback relies on it)
        return cmd.encode("latin-1") + b"\r"

    def q1_line(self) -> str:
        bits = "".join("1" if b else "0" for b in (
            self.utility_fail, self.battery_low, self.avr, self.failed, self.offline_type, self.test,
            self.shutdown_active, self.beeper))
        return (f"({self.input_voltage:05.1f} {self.fault_voltage:05.1f} {self.output_voltage:05.1f} "
                f"{self.load:03d} {self.frequency:04.1f} {battvolt(self.battery_voltage)} "
                f"{self.temperature:04.1f} {bits}")

    # -- the battery drift (ScriptedUps.tick): battery voltage, down on battery, up to full on mains
    def _on_battery_power(self) -> bool:
        return self.utility_fail

    def _battery_full(self) -> float:
        return self.full_battery

    # -- scripting: the actions of a Q1 UPS (the shared ones: nutlite.sim.script)
    @action("mains", "off: the utility-fail bit and 0 V input; on: back on mains, input and output nominal "
                     "(AVR off)", SWITCH)
    def _act_mains(self, on: bool) -> None:
        self.utility_fail = not on
        self.input_voltage = self.fault_voltage = self.nominal_voltage if on else 0.0
        if on:
            self.output_voltage = self.nominal_voltage
            self.avr = False

    @action("charge", "the battery voltage rises by RATE V a second on mains (up to full)", number("RATE"))
    def _act_charge(self, rate: float) -> None:
        self.charge_rate = rate

    @action("lowbatt", "the battery-low bit", SWITCH)
    def _act_lowbatt(self, on: bool) -> None:
        self.battery_low = on

    @action("replace", "the UPS-failed bit (what a worn battery makes Megatec units report)", SWITCH)
    def _act_replace(self, on: bool) -> None:
        self.failed = on

    @action("boost", "AVR active: input 190 V, output 230 V")
    def _act_boost(self) -> None:
        self.avr, self.input_voltage, self.fault_voltage, self.output_voltage = True, 190.0, 190.0, 230.0

    @action("trim", "AVR active: input 250 V, output 220 V")
    def _act_trim(self) -> None:
        self.avr, self.input_voltage, self.fault_voltage, self.output_voltage = True, 250.0, 250.0, 220.0

    @action("bypass", "AVR bit with the output equal to the input")
    def _act_bypass(self) -> None:
        self.avr, self.output_voltage = True, self.input_voltage

    @action("normal", "AVR off, input and output nominal")
    def _act_normal(self) -> None:
        self.avr = False
        self.input_voltage = self.fault_voltage = self.output_voltage = self.nominal_voltage

    @action("input", "input voltage (and the fault voltage)", number("VOLTS"))
    def _act_input(self, volts: float) -> None:
        self.input_voltage = self.fault_voltage = volts

    @action("type", "the UPS-type bit", choice("online", "offline"))
    def _act_type(self, kind: str) -> None:
        self.offline_type = kind != "online"

    @action("beeper", "the beeper bit", SWITCH)
    def _act_beeper(self, on: bool) -> None:
        self.beeper = on

    @action("test", "the battery-test bit (CAL)", SWITCH)
    def _act_test(self, on: bool) -> None:
        self.test = on

    @action("fsd", "the shutdown-active bit (FSD)", SWITCH)
    def _act_fsd(self, on: bool) -> None:
        self.shutdown_active = on


def battvolt(v: float) -> str:
    """The 4-character battery voltage field: ``2.27`` (per cell) or ``13.5`` / ``27.4`` (total)."""
    return f"{v:4.2f}" if v < 9.995 else f"{v:04.1f}"[:4]


class PtyQ1(PtyServer):
    """Serve a :class:`Q1Ups` on a pseudo-terminal (in a thread).

    ``path`` is the slave device; ``link`` (if given) is a symlink to it that survives
    :meth:`unplug`/:meth:`replug` (the pty number may change, the link is updated).
    """

    thread_name = "q1sim"

    def __init__(self, ups: Q1Ups | None = None, link: str | os.PathLike[str] | None = None) -> None:
        super().__init__(link)
        self.ups = ups or Q1Ups()

    def feed(self, data: bytes) -> bytes:
        return self.ups.feed(data)

    def start(self) -> PtyQ1:
        self._open()
        return self

    def __enter__(self) -> PtyQ1:
        return self.start()
