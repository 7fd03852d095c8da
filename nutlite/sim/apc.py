"""An APC Smart-UPS simulator (the "smart" serial protocol, NUT-FACTS §8.5).

:class:`ApcUps` is the UPS itself, sans-IO: bytes from the serial line go in through
:meth:`ApcUps.feed` (single-character commands), the replies come out (each ends with CR LF). When its
state changes it sends alert characters nobody asked for (``!`` on battery, ``$`` mains back, ``%``
low battery, ``+`` low battery cleared, ``#`` replace battery, ``?`` overload, ``=`` overload cleared,
``|`` EEPROM changed): through ``alert_sink`` when served on a pty (:class:`PtyApc`), else in front of
the next reply.

It keeps a log of everything it was told (``commands``: one entry per command, ``@000`` as one), and
the shutdowns it carried out (``shutdowns``: ``S``, ``@nnn``, ``K``, ``Z``; ``U`` (simulated power
failure) is logged as a command). Settings answer the ``-`` step to their next allowed value (the
Ctrl-Z list), string settings (``c`` UPS id, ``x`` battery date) take up to 8 characters after ``-`` (a CR ends a
shorter one).

Scripts (``nutlite sim apc --script FILE`` or :meth:`ApcUps.apply`): the actions are the methods
marked with :func:`nutlite.sim.script.action` here and in :mod:`nutlite.sim.script` (``nutlite sim -h``
lists them).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from nutlite.sim.pty import PtyServer
from nutlite.sim.script import SWITCH, ScriptedUps, action, character, choice, number, word

log = logging.getLogger("nutlite.sim.apc")

CRLF = b"\r\n"

# Settings stepped with "-": (command character, locale, allowed values). Locale "4" = every unit,
# "I" = 230 V units, "D" = 120 V units (the simulated UPS is a 230 V one; the D rows are there to be
# skipped by the driver).
SETTINGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("u", "I", ("253", "264", "271", "280")),
    ("u", "D", ("127", "130", "133", "136")),
    ("l", "I", ("196", "188", "208", "204")),
    ("l", "D", ("106", "103", "100", "097")),
    ("e", "4", ("00", "15", "50", "90")),
    ("o", "I", ("230", "240", "220", "225")),
    ("o", "D", ("115", "100", "120", "110")),
    ("s", "4", ("H", "M", "L", "L")),
    ("q", "4", ("02", "05", "07", "10")),
    ("p", "4", ("020", "180", "300", "600")),
    ("k", "4", ("0", "T", "L", "N")),
    ("r", "4", ("000", "060", "180", "300")),
    ("E", "4", ("336", "168", "ON ", "OFF")),
)
STRING_SETTINGS = ("c", "x")  # 8 characters after "-"
ALERT_CHARS = "!$%+?=#|"

STATUS_BITS = ("CAL", "TRIM", "BOOST", "OL", "OB", "OVER", "LB", "RB")  # bit 0 .. bit 7


@dataclass
class Shutdown:
    """A shutdown the UPS carried out: ``S``, ``@nnn``, ``K`` or ``Z``."""

    command: str
    on_battery: bool


def capability_reply(locale: str = "I") -> str:
    """The Ctrl-Z reply: ``#`` then per setting: char, locale, number of values, width, the values."""
    out = ["#"]
    for char, loc, values in SETTINGS:
        width = len(values[0])
        out.append(f"{char}{loc}{len(values)}{width}{''.join(values)}")
    return "".join(out)


@dataclass
class ApcUps(ScriptedUps):
    """The state of a simulated APC Smart-UPS and its command interpreter."""

    _log: ClassVar[logging.Logger] = log
    _battery_attr: ClassVar[str] = "charge"
    _battery_level: ClassVar[str] = "charge"
    _battery_unit: ClassVar[str] = "%"
    _garbage_reply: ClassVar[bytes] = b"\xff\x00~#garbage\xfe" + CRLF

    model: str = "Smart-UPS 1000"
    firmware: str = "60.11.I"  # "b": the last letter is the locale
    old_firmware: str = "GWD"  # "V"
    serial: str = "NS0123456789"
    mfr_date: str = "05/21/07"
    battery_date: str = "05/21/07"
    ups_id: str = "UPS_IDEN"
    protocol: str = "3"
    input_voltage: float = 230.0
    output_voltage: float = 230.0
    nominal_voltage: int = 230
    frequency: float = 50.0
    load: float = 21.0
    charge: float = 100.0
    full_runtime: float = 60.0  # minutes at 100 % charge at the reference load
    reference_load: float = 21.0
    battery_full: float = 27.6
    battery_nominal: int = 24
    temperature: float = 31.5
    on_battery: bool = False
    low_battery: bool = False
    replace: bool = False
    boost: bool = False
    trim: bool = False
    calibrating: bool = False
    reason: str = "O"
    selftest: str = "NO"
    line_quality: str = "FF"
    settings: dict[str, str] = field(default_factory=lambda: {
        "u": "253", "l": "196", "e": "00", "o": "230", "s": "H", "q": "02", "p": "020", "k": "0", "r": "000",
        "E": "336"})
    locale: str = "I"
    drain_rate: float = 0.0
    charge_rate: float = 0.0
    muted: bool = False
    alerts: bool = True
    smart: bool = False
    at_digits: int = 3
    simulated_failure_seconds: float = 4.0
    commands: list[str] = field(default_factory=list)
    shutdowns: list[Shutdown] = field(default_factory=list)
    alert_sink: Callable[[bytes], object] | None = None
    clock: Callable[[], float] = time.monotonic
    _pending: bytes = b""  # alerts waiting for the next reply (no alert_sink)
    _last_query: str | None = None
    _string_entry: tuple[str, str] | None = None  # (setting, characters so far)
    _at: str | None = None  # "@" digits so far
    _armed: dict[str, float] = field(default_factory=dict)  # K/Z/Ctrl-N: when the first one came
    _sim_fail_until: float | None = None
    _next_fault: str | None = None
    _last_tick: float | None = None
    _last_bits: int | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- derived values
    @property
    def overload(self) -> bool:
        return self.load > 100

    @property
    def runtime_minutes(self) -> int:
        return max(0, int(self.full_runtime * self.charge / 100 * self.reference_load / max(self.load, 5.0)))

    @property
    def battery_voltage(self) -> float:
        full = self.battery_full - (1.2 if self.effective_on_battery else 0.0)
        return max(0.0, full - (100 - self.charge) * 0.045)

    @property
    def effective_on_battery(self) -> bool:
        return self.on_battery or (self._sim_fail_until is not None and self.clock() < self._sim_fail_until)

    @property
    def lb(self) -> bool:
        try:
            warn = int(self.settings["q"])
        except (KeyError, ValueError):
            warn = 2
        return self.low_battery or (self.effective_on_battery and self.runtime_minutes < warn)

    def status_bits(self) -> int:
        ob = self.effective_on_battery
        flags = (self.calibrating, self.trim and not ob, self.boost and not ob, not ob, ob, self.overload, self.lb,
                 self.replace)
        return sum(1 << i for i, f in enumerate(flags) if f)

    def status_words(self) -> list[str]:
        bits = self.status_bits()
        return [w for i, w in enumerate(STATUS_BITS) if bits & (1 << i)]

    # -- alerts
    def _emit(self, chars: str) -> None:
        if not chars or not self.alerts:
            return
        log.debug("alert %r", chars)
        if self.alert_sink is not None:
            self.alert_sink(chars.encode())
        else:
            self._pending += chars.encode()

    def _check_alerts(self) -> None:
        """Send the alert characters for what changed since the last look."""
        bits = self.status_bits()
        old, self._last_bits = self._last_bits, bits
        if old is None:
            return
        out = ""
        for bit, on, off in ((4, "!", "$"), (6, "%", "+"), (5, "?", "="), (7, "#", "")):
            was, now = bool(old & (1 << bit)), bool(bits & (1 << bit))
            if now != was:
                out += on if now else off
        self._emit(out)

    # -- the serial line
    def feed(self, data: bytes) -> bytes:
        """Bytes from the driver in, reply bytes out."""
        out = b""
        with self._lock:
            self.tick()
            for ch in data.decode("latin-1"):
                reply = self._char(ch)
                if reply is None or self.muted:
                    continue
                out += self._damage(reply.encode("latin-1") + CRLF)
            self._check_alerts()
            if self._pending and not self.muted:
                out, self._pending = self._pending + out, b""
        return out

    def _truncated(self, reply: bytes) -> bytes:
        return reply[: max(1, (len(reply) - 2) // 2)]

    def _char(self, ch: str) -> str | None:
        if self._string_entry is not None:
            name, so_far = self._string_entry
            if ch != "\r":  # CR ends a value shorter than 8 characters
                so_far += ch
            if ch != "\r" and len(so_far) < 8:
                self._string_entry = (name, so_far)
                return None
            self._string_entry = None
            self.commands.append(f"{name}={so_far}")
            if name == "c":
                self.ups_id = so_far
            else:
                self.battery_date = so_far
            self._emit("|")
            return "OK"
        if self._at is not None:
            if ch.isdigit():
                self._at += ch
                if len(self._at) < self.at_digits:
                    return None
                return self._hard_hibernate()
            # anything else ends a short "@nn" (its reply comes first) and is a command of its own
            first = self._hard_hibernate() if self._at else None
            self._at = None
            rest = self._char(ch)
            if first is None:
                return rest
            return first if rest is None else first + "\r\n" + rest
        if ch in "\r\n\x00":
            return None
        self.commands.append(ch)
        return self.handle(ch)

    def _hard_hibernate(self) -> str:
        digits, self._at = self._at or "", None
        cmd = "@" + digits
        self.commands[-1] = cmd
        self._shut_down(Shutdown(cmd, self.effective_on_battery))
        return "OK"

    def handle(self, c: str) -> str | None:
        """The reply (without CR LF) to one command character, or None when it gets none."""
        previous, self._last_query = self._last_query, c
        if c == "Y":
            self.smart = True
            return "SM"
        if c == "R":
            self.smart = False
            return "BYE"
        if c == "\x01":
            return self.model
        if c == "a":
            return f"{self.protocol}.{ALERT_CHARS}.{self.command_set()}"
        if c == "\x1a":
            return capability_reply(self.locale)
        if c == "Q":
            return f"{self.status_bits():02X}"
        if c == "-":
            self._last_query = previous
            return self._step(previous)
        if c == "@":
            self._at = ""
            return None
        if c in ("K", "Z", "\x0e"):
            return self._twice(c)
        if c == "S":
            if not self.effective_on_battery:
                return "NA"
            self._shut_down(Shutdown("S", True))
            return "OK"
        if c == "U":
            self._sim_fail_until = self.clock() + self.simulated_failure_seconds
            return "OK"
        if c == "W":
            self.selftest = "OK"
            return "OK"
        if c == "A":
            return "OK"
        if c == "D":
            self.calibrating = not self.calibrating
            return "OK"
        if c == "^":
            return "BYP"
        value = self.query(c)
        return "NA" if value is None else value

    def _twice(self, c: str) -> str | None:
        """K, Z and Ctrl-N act when they come twice within 5 s (APC wants a pause between the two)."""
        now = self.clock()
        first = self._armed.pop(c, None)
        if first is None or now - first > 5:
            self._armed[c] = now
            return None
        if c == "\x0e":
            return "OK"
        self._shut_down(Shutdown(c, self.effective_on_battery))
        return "OK" if c == "K" else "*"

    def _step(self, name: str | None) -> str:
        if name in STRING_SETTINGS:
            self._string_entry = (name, "")
            return None  # type: ignore[return-value]
        allowed = self.allowed(name) if name else None
        if not allowed or name not in self.settings:
            return "NO"
        current = self.settings[name]
        i = allowed.index(current) if current in allowed else -1
        # as real units: a value listed twice (s: H M L L) steps on from its first place
        self.settings[name] = allowed[(i + 1) % len(allowed)]
        self.commands[-1] = f"-{name}"
        self._emit("|")
        return "OK"

    def allowed(self, name: str) -> tuple[str, ...] | None:
        for char, loc, values in SETTINGS:
            if char == name and loc in ("4", self.locale):
                return values
        return None

    def command_set(self) -> str:
        return "\x01\x0e\x1a-@ABCDEFGKLMNOPQRSUVWXYZabcefgjklmnopqrsuxy9^"

    def query(self, c: str) -> str | None:
        ob = self.effective_on_battery
        vin = 0.0 if ob else self.input_voltage
        if c in self.settings:
            return self.settings[c]
        table: dict[str, Callable[[], str]] = {
            "B": lambda: f"{self.battery_voltage:05.2f}",
            "C": lambda: f"{self.temperature:05.1f}",
            "F": lambda: f"{self.frequency:05.2f}",
            "L": lambda: f"{vin:05.1f}",
            "M": lambda: f"{vin + (1.2 if vin else 0):05.1f}",
            "N": lambda: f"{max(0.0, vin - 1.3):05.1f}",
            "O": lambda: f"{self.output_voltage:05.1f}",
            "P": lambda: f"{self.load:05.1f}",
            "f": lambda: f"{self.charge:05.1f}",
            "j": lambda: f"{self.runtime_minutes:04d}:",
            "g": lambda: f"{self.battery_nominal:03d}",
            "9": lambda: self.line_quality,
            "G": lambda: self.reason,
            "X": lambda: self.selftest,
            "c": lambda: self.ups_id,
            "x": lambda: self.battery_date,
            "n": lambda: self.serial,
            "m": lambda: self.mfr_date,
            "V": lambda: self.old_firmware,
            "b": lambda: self.firmware,
            "y": lambda: "(C) APCC",
        }
        fn = table.get(c)
        return fn() if fn is not None else None

    # -- the battery drift (ScriptedUps.tick): charge, down on battery, up to 100 % on mains; then the end
    # of a simulated power failure and the alerts
    def _on_battery_power(self) -> bool:
        return self.on_battery

    def _battery_full(self) -> float:
        return 100.0

    def _ticked(self, now: float) -> None:
        if self._sim_fail_until is not None and now >= self._sim_fail_until:
            self._sim_fail_until = None
        self._check_alerts()

    # -- scripting: the actions of an APC UPS (the shared ones: nutlite.sim.script)
    @action("mains", "off: on battery (input 0 V, transfer reason L); on: back on line, input and output "
                     "nominal (AVR off)", SWITCH)
    def _act_mains(self, on: bool) -> None:
        self.on_battery = not on
        if on:
            self.input_voltage = self.output_voltage = float(self.nominal_voltage)
            self.boost = self.trim = False
        else:
            self.reason = "L"

    @action("recharge", "the battery charge rises by RATE % a second on mains", number("RATE"))
    def _act_recharge(self, rate: float) -> None:
        self.charge_rate = rate

    @action("lowbatt", "the low-battery bit (also set by itself on battery when the runtime falls under the "
                       "q setting)", SWITCH)
    def _act_lowbatt(self, on: bool) -> None:
        self.low_battery = on

    @action("replace", "the replace-battery bit", SWITCH)
    def _act_replace(self, on: bool) -> None:
        self.replace = on

    @action("boost", "AVR boost: input 190 V, output nominal")
    def _act_boost(self) -> None:
        self.boost, self.trim = True, False
        self.input_voltage, self.output_voltage = 190.0, float(self.nominal_voltage)

    @action("trim", "AVR trim: input 255 V, output nominal")
    def _act_trim(self) -> None:
        self.boost, self.trim = False, True
        self.input_voltage, self.output_voltage = 255.0, float(self.nominal_voltage)

    @action("normal", "AVR off, input and output nominal")
    def _act_normal(self) -> None:
        self.boost = self.trim = False
        self.input_voltage = self.output_voltage = float(self.nominal_voltage)

    @action("calibrate", "the runtime-calibration bit", SWITCH)
    def _act_calibrate(self, on: bool) -> None:
        self.calibrating = on

    @action("eeprom", "set the value of the setting CHAR directly ('_' stands for a space)", character("CHAR"),
            word("VALUE"))
    def _act_eeprom(self, char: str, value: str) -> None:
        self.settings[char] = value.replace("_", " ")

    @action("reason", "the transfer reason character (the answer to G)", character("CHAR"))
    def _act_reason(self, char: str) -> None:
        self.reason = char

    @action("selftest", "the self-test result (the answer to X)", choice("OK", "NG", "BT", "NO"))
    def _act_selftest(self, result: str) -> None:
        self.selftest = result

    @action("alerts", "send alert characters (on at start)", SWITCH)
    def _act_alerts(self, on: bool) -> None:
        self.alerts = on

    def _applied(self) -> None:
        self._check_alerts()


class PtyApc(PtyServer):
    """Serve an :class:`ApcUps` on a pseudo-terminal; its alert characters go out as they happen."""

    thread_name = "apcsim"

    def __init__(self, ups: ApcUps | None = None, link: str | os.PathLike[str] | None = None) -> None:
        super().__init__(link)
        self.ups = ups or ApcUps()
        self.ups.alert_sink = self._alert

    def _alert(self, data: bytes) -> None:
        if not self.ups.muted:
            self.push(data)

    def feed(self, data: bytes) -> bytes:
        return self.ups.feed(data)

    def idle(self) -> None:
        self.ups.tick()

    def start(self) -> PtyApc:
        self._open()
        return self

    def __enter__(self) -> PtyApc:
        return self.start()
