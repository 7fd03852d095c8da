"""genericups: contact-closure ("dumb") UPSes on a serial port's modem-control lines (NUT-FACTS §8.6).

Such a UPS has no protocol: the cable closes contacts between serial lines. The computer powers the
cable by holding some output lines high (``CP``: DTR, RTS, ST), reads on line / low battery (and on some
units replace battery and bypass) from the input lines (CTS, DCD, RI, DSR), and asks the UPS to cut
power by raising the shutdown lines (``SD``) -- or by sending a break when ``SD`` is ``ST`` alone.

``upstype`` picks a cable from :mod:`nutlite.drivers.tables.genericups_types`; ``CP``, ``OL``, ``LB``, ``RB``,
``BYPASS`` and ``SD`` override single signals in the same syntax: line names joined by ``+`` (or spaces,
commas), ``-`` in front for active low, ``none`` (or ``NULL``) for not used. A disabled ``OL`` always
reads on line, the other disabled inputs never show. An input signal of several lines is true when every
line has its level. ``-`` before an output line means it stays low.

Killpower (``-k``, or ``upsdrvctl shutdown`` through the running driver) sets the output lines to exactly
``SD`` and holds them for ``sdtime`` seconds (the running driver then keeps them so, as NUT does); the
cable power lines stay on only if they are part of ``SD``. Such UPSes mostly obey only while on battery:
see NUT FAQ #58 for the power race this leaves.

Where Debian's genericups 2.8.0 silently ignores a mistake (an unknown line name, ``upstype = abc``), this
driver refuses to start and names the ups.conf line: a typo in ``OL`` would otherwise hide every power
failure.
"""

from __future__ import annotations

import asyncio
import re
import termios
from dataclasses import dataclass
from typing import ClassVar

from nutlite.drivers.framework.core import Driver, DriverError, DriverState
from nutlite.drivers.framework.drvconfig import DriverConfig, Option
from nutlite.drivers.tables.genericups_types import CABLE_TYPES, CableType
from nutlite.drivers.transports.serialport import PortError, SerialPort

INPUT_LINES: dict[str, int] = {
    "CTS": termios.TIOCM_CTS,
    "DCD": termios.TIOCM_CAR,
    "RNG": termios.TIOCM_RNG,
    "DSR": termios.TIOCM_DSR,
}
OUTPUT_LINES: dict[str, int] = {
    "DTR": termios.TIOCM_DTR,
    "RTS": termios.TIOCM_RTS,
    "ST": termios.TIOCM_ST,
}
DISABLED = ("none", "NULL")
# tcsendbreak()'s duration for SD=ST, as Debian's genericups asks for it (with glibc on Linux: 4901 is
# rounded up to 50 tenths of a second, a break of about 5 s).
BREAK_DURATION = 4901

INPUT_SIGNALS = ("OL", "LB", "RB", "BYPASS")
OUTPUT_SIGNALS = ("CP", "SD")


class SignalError(ValueError):
    """A signal setting that cannot be used; the message says why (without where), ``signal`` which."""

    def __init__(self, message: str, signal: str = "") -> None:
        super().__init__(message)
        self.signal = signal


@dataclass(frozen=True)
class InputSignal:
    """An input signal: true when the lines in ``mask`` read ``expect`` (``mask`` 0 = not used)."""

    mask: int = 0
    expect: int = 0

    @property
    def used(self) -> bool:
        return self.mask != 0

    def active(self, bits: int, unused: bool = False) -> bool:
        if not self.mask:
            return unused
        return (bits & self.mask) == self.expect


def _tokens(value: str) -> list[str]:
    return [t for t in re.split(r"[\s,+]+", value.strip()) if t]


def _split(token: str) -> tuple[bool, str]:
    name = token.lstrip("-")
    if not name:
        raise SignalError(f"'{token}' needs a line name after the '-'")
    return name != token, name


def _unknown(name: str, wanted: dict[str, int], kind: str) -> SignalError:
    hint = " (line names are upper case)" if name.upper() in {**INPUT_LINES, **OUTPUT_LINES} else ""
    names = ", ".join(wanted)
    return SignalError(f"'{name}' is not {kind} line{hint}; use {names} ('-' in front for active low, "
                       "'+' between several), or none")


def parse_input(value: str) -> InputSignal:
    """``OL``/``LB``/``RB``/``BYPASS`` syntax -> :class:`InputSignal`; SignalError if unusable."""
    tokens = _tokens(value)
    if not tokens:
        raise SignalError("no line given; use CTS, DCD, RNG or DSR ('-' in front for active low), or none")
    if len(tokens) == 1 and _split(tokens[0])[1] in DISABLED:
        return InputSignal()
    mask = expect = 0
    for token in tokens:
        low, name = _split(token)
        if name in OUTPUT_LINES:
            raise SignalError(f"{name} is an output line, not an input (inputs: {', '.join(INPUT_LINES)})")
        if name in DISABLED:
            raise SignalError(f"'{name}' cannot be combined with lines: give either lines or none alone")
        if name not in INPUT_LINES:
            raise _unknown(name, INPUT_LINES, "an input")
        bit = INPUT_LINES[name]
        if mask & bit:
            raise SignalError(f"{name} is given twice")
        mask |= bit
        expect = expect & ~bit if low else expect | bit
    return InputSignal(mask, expect)


def parse_output(value: str) -> int:
    """``CP``/``SD`` syntax -> the output bits to set (lines with ``-`` stay low); SignalError if unusable."""
    tokens = _tokens(value)
    if not tokens:
        raise SignalError("no line given; use DTR, RTS or ST ('+' between several, '-' for low), or none")
    if len(tokens) == 1 and _split(tokens[0])[1] in DISABLED:
        return 0
    bits = 0
    seen: set[str] = set()
    for token in tokens:
        low, name = _split(token)
        if name in INPUT_LINES:
            raise SignalError(f"{name} is an input line, not an output (outputs: {', '.join(OUTPUT_LINES)})")
        if name in DISABLED:
            raise SignalError(f"'{name}' cannot be combined with lines: give either lines or none alone")
        if name not in OUTPUT_LINES:
            raise _unknown(name, OUTPUT_LINES, "an output")
        if name in seen:
            raise SignalError(f"{name} is given twice")
        seen.add(name)
        if not low:
            bits |= OUTPUT_LINES[name]
    return bits


def line_names(bits: int, lines: dict[str, int] | None = None) -> str:
    """``DTR+RTS`` for the given bits ("none" if no line)."""
    table = lines if lines is not None else {**OUTPUT_LINES, **INPUT_LINES}
    names = [n for n, b in table.items() if bits & b]
    return "+".join(names) if names else "none"


@dataclass(frozen=True)
class Cable:
    """A cable type with the overrides applied: what the driver does."""

    type: CableType
    cp: int
    ol: InputSignal
    lb: InputSignal
    rb: InputSignal
    bypass: InputSignal
    sd: int | None  # None: no shutdown known for this cable

    def status(self, bits: int) -> list[str]:
        """``ups.status`` words for the modem bits read, in NUT's order."""
        words = []
        if self.lb.active(bits):
            words.append("LB")
        words.append("OL" if self.ol.active(bits, unused=True) else "OB")
        if self.rb.active(bits):
            words.append("RB")
        if self.bypass.active(bits):
            words.append("BYPASS")
        return words


def cable_type(number: int) -> CableType:
    if not 0 <= number < len(CABLE_TYPES):
        raise SignalError(f"there is no UPS type {number}")
    return CABLE_TYPES[number]


def type_list() -> str:
    return "\n".join(f"  {t.number:2d}: {t.description}" for t in CABLE_TYPES)


def build_cable(ctype: CableType, overrides: dict[str, str]) -> Cable:
    """The cable of ``ctype`` with ``overrides`` (signal name -> setting); SignalError naming the signal."""
    def pick_in(name: str, preset: str) -> InputSignal:
        value = overrides.get(name, preset)
        try:
            return parse_input(value)
        except SignalError as exc:
            raise SignalError(str(exc), name) from None

    def pick_out(name: str, preset: str | None) -> int | None:
        value = overrides.get(name, preset)
        if value is None:
            return None
        try:
            return parse_output(value)
        except SignalError as exc:
            raise SignalError(str(exc), name) from None

    cp = pick_out("CP", ctype.cp)
    return Cable(ctype, cp or 0, pick_in("OL", ctype.ol), pick_in("LB", ctype.lb), pick_in("RB", ctype.rb),
                 pick_in("BYPASS", ctype.bypass), pick_out("SD", ctype.sd))


class GenericUps(Driver):
    """``genericups``."""

    name: ClassVar[str] = "genericups"
    description: ClassVar[str] = "Generic contact-closure UPS driver"
    version: ClassVar[str] = "1.38"
    options: ClassVar[tuple[Option, ...]] = (
        Option("upstype", "UPS/cable type, 0..23 (required; the types are listed below)"),
        Option("mfr", "manufacturer name to publish instead of the type's"),
        Option("model", "model name to publish instead of the type's"),
        Option("serial", "serial number to publish"),
        Option("CP", "cable power lines (DTR, RTS, ST; '+' between several; none)"),
        Option("OL", "on line input (CTS, DCD, RNG, DSR; '-' for active low; none)"),
        Option("LB", "low battery input"),
        Option("RB", "replace battery input"),
        Option("BYPASS", "bypass input"),
        Option("SD", "shutdown lines (DTR, RTS; ST alone sends a break; none)"),
        Option("sdtime", "seconds to hold the shutdown lines (default 0)"),
    )

    @classmethod
    def help_sections(cls) -> str:
        return f"UPS/cable types (upstype):\n{type_list()}"

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        self.serial: SerialPort | None = None
        self._fault: str | None = None
        raw = self.getval("upstype")
        if raw is None:
            raise DriverError(f"[{self.upsname}] has no 'upstype' setting: genericups needs the cable type "
                              f"(upstype = 0..23, also listed by 'nutlite genericups -h'):\n{type_list()}")
        try:
            number = int(raw.strip())
        except ValueError:
            raise DriverError(self._bad("upstype", raw, f"expected a number 0..{len(CABLE_TYPES) - 1}")) from None
        try:
            ctype = cable_type(number)
        except SignalError as exc:
            raise DriverError(self._bad("upstype", raw, f"{exc}; the known types are:\n{type_list()}")) from None
        overrides: dict[str, str] = {}
        for name in (*OUTPUT_SIGNALS, *INPUT_SIGNALS):
            value = self.getval(name)
            if value is not None:
                overrides[name] = value
        try:
            self.cable = build_cable(ctype, overrides)
        except SignalError as exc:
            raise DriverError(self._bad(exc.signal, overrides.get(exc.signal, "?"), str(exc))) from None
        self.sdtime = 0
        sdtime = self.getval("sdtime")
        if sdtime is not None:
            try:
                self.sdtime = int(sdtime.strip())
            except ValueError:
                raise DriverError(self._bad("sdtime", sdtime, "expected a whole number of seconds")) from None
            if self.sdtime < 0:
                raise DriverError(self._bad("sdtime", sdtime, "expected 0 or more seconds"))
        self._warn_no_effect(ctype, overrides)

    # -- configuration messages
    def _where(self, key: str) -> str | None:
        """``/etc/nut/ups.conf:12`` when ``key`` comes from ups.conf (None: from ``-x``)."""
        try:
            from nutlite.config import load_ups_conf

            conf = load_ups_conf(self.config.confpath / "ups.conf")
            sec = conf.find(self.upsname)
            if sec is not None:
                for k, line in sec.lines.items():
                    if k.lower() == key.lower() and sec.values.get(k) == self.getval(key):
                        return f"{conf.path}:{line}"
        except Exception:  # where is only a hint
            pass
        return None

    def _bad(self, key: str, value: str, why: str) -> str:
        where = self._where(key)
        if where is None:
            return f"[{self.upsname}] -x {key}='{value}': {why}"
        return f"{where}: [{self.upsname}] {key} = '{value}': {why}"

    def _warn_no_effect(self, ctype: CableType, overrides: dict[str, str]) -> None:
        if not overrides:
            return
        preset = build_cable(ctype, {})
        if self.cable == preset:
            self.log.warning("%s given, but the lines are the same as upstype %d's: check for typos?",
                             ", ".join(f"{k}={v}" for k, v in overrides.items()), ctype.number)

    # -- port
    def _open(self) -> None:
        sp = SerialPort(self.port, lock=not self.testvar("nolock"), cablepower="none")
        sp.open()
        self.serial = sp
        self._cable_power(sp)

    def _cable_power(self, sp: SerialPort) -> None:
        sp.set_modem_bits(self.cable.cp)
        self.log.debug("cable power: %s", line_names(self.cable.cp, OUTPUT_LINES))

    def _read(self) -> int:
        sp = self.serial
        assert sp is not None
        if sp.ser is None:  # lost: reopen, and power the cable again
            try:
                sp.ensure_open()
            except OSError as exc:  # pyserial lets some errors of its own modem-line calls through
                sp.close()
                raise PortError(f"cannot reopen {self.port}: {exc.strerror or exc}") from None
            self._cable_power(sp)
        return sp.modem_bits()

    # -- hooks
    async def initups(self) -> None:
        t = self.cable.type
        self.log.info("UPS type %d: %s", t.number, t.description)
        try:
            await self.run_blocking(self._open)
        except PortError as exc:
            raise DriverError(str(exc)) from None

    def initinfo(self) -> None:
        t = self.cable.type
        self.setinfo("ups.mfr", self.getval("mfr") or t.mfr)
        self.setinfo("ups.model", self.getval("model") or t.model)
        serial = self.getval("serial")
        if serial:
            self.setinfo("ups.serial", serial)

    async def updateinfo(self) -> None:
        try:
            bits = await self.run_blocking(self._read)
        except (PortError, DriverError) as exc:
            why = str(exc)
            if self._fault is None:
                self.log.error("Communications with UPS lost: %s", why)
            elif why != self._fault:
                self.log.debug("still no communication: %s", why)
            self._fault = why
            self.datastale()
            return
        self.log.debug("modem lines: %s", line_names(bits))
        self.status_init()
        for word in self.cable.status(bits):
            self.status_set(word)
        self.status_commit()
        if self._fault is not None:
            self.log.warning("Communications with UPS re-established")
            self._fault = None
        self.dataok()

    async def shutdown(self) -> bool:
        """Killpower: set the output lines to SD (or send a break for SD=ST) and hold for sdtime."""
        t = self.cable.type
        sd = self.cable.sd
        if sd is None:
            self.log.error("upstype %d (%s) has no known shutdown line: set 'SD = ...' in ups.conf to the "
                           "line(s) your cable uses to turn the UPS off", t.number, t.description)
            return False
        if self.serial is None:
            raise DriverError(f"{self.port} is not open")
        try:
            if sd == OUTPUT_LINES["ST"]:
                self.log.warning("Shutting down the UPS: sending a break on %s", self.port)
                await self.run_blocking(self.serial.send_break, BREAK_DURATION)
                return True
            self.log.warning("Shutting down the UPS: setting %s on %s", line_names(sd, OUTPUT_LINES), self.port)
            if not sd:
                self.log.warning("SD is none: no line is raised, every output line is dropped")
            await self.run_blocking(self.serial.set_modem_bits, sd)
        except PortError as exc:
            self.log.error("shutdown failed: %s", exc)
            return False
        if self.getval("sdtime") is not None:
            self.log.warning("Holding the shutdown signal for %d seconds...", self.sdtime)
            if self.sdtime > 0:
                await asyncio.sleep(self.sdtime)
        return True

    def cleanup(self) -> None:
        if self.serial is not None:
            self.serial.close()
            self.serial = None
