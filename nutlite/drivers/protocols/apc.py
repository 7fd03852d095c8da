"""The APC "smart" serial protocol, sans-IO (NUT-FACTS §8.5).

Everything here works on characters and strings: the variable table (query character -> NUT name, when
it is polled, how its reply is converted, how it is written), the ``a`` reply (protocol version, alert
characters, supported command characters), the Ctrl-Z capability list (allowed values of the settings,
per locale), the status register, alert characters, the instant commands and the shutdown methods
(``sdtype`` / ``advorder``). The driver (:mod:`nutlite.drivers.programs.apcsmart`) does the I/O.

The behaviour follows what Debian's NUT 2.8.0 ``apcsmart`` publishes for the same UPS, as observed with
the simulator (see tests/test_apcsmart_side_by_side.py):

* values are published as the UPS sends them (``ups.load`` ``021.0``, ``battery.voltage.nominal`` ``024``),
  except ``battery.runtime`` and ``battery.runtime.low`` (minutes -> seconds), ``ups.test.interval``
  (hours -> seconds; ``ON``/``OFF`` -> 0) and ``input.transfer.reason`` (a letter -> words);
* ``ups.status`` lists the status register's bits from bit 0 up: CAL TRIM BOOST OL OB OVER LB RB;
* the settings the Ctrl-Z list covers (for the UPS's locale, the last letter of its ``b`` firmware
  reply, or ``4`` = all) are writable enums (values converted as above, duplicates dropped); ``ups.id``
  and ``battery.date`` are writable 8-character strings;
* a setting is written by stepping it with ``-`` until it reads back as the wanted value (the UPS has
  no other way); a full turn back to where it started means the value is not available.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from nutlite.drivers.transports.serialport import show

ALERTS = "!$%+?=#|&*"
SMART_MODE = "Y"
SMART_REPLY = "SM"
LEAVE_SMART = "R"
PROTOCOL_INFO = "a"
CAPABILITIES = "\x1a"
STATUS = "Q"
NEXT_VALUE = "-"
MODEL = "\x01"
LOAD_ON = "\x0e"
OLD_FIRMWARE = "V"

# status register bit -> ups.status token (bit 0 first, the order they are published in)
STATUS_BITS = ("CAL", "TRIM", "BOOST", "OL", "OB", "OVER", "LB", "RB")
BIT = {name: 1 << i for i, name in enumerate(STATUS_BITS)}

TRANSFER_REASONS = {
    "R": "unacceptable utility voltage rate of change",
    "H": "high utility voltage",
    "L": "low utility voltage",
    "T": "line voltage notch or spike",
    "O": "no transfers yet since turnon",
    "S": "simulated power failure or UPS test",
}

# alert character -> (what it means, status bits set, status bits cleared)
ALERT_ACTIONS: dict[str, tuple[str, int, int]] = {
    "!": ("on battery", BIT["OB"], BIT["OL"]),
    "$": ("back on line power", BIT["OL"], BIT["OB"]),
    "%": ("low battery", BIT["LB"], 0),
    "+": ("battery charge back above the low battery level", 0, BIT["LB"]),
    "?": ("overload or abnormal condition", BIT["OVER"], 0),
    "=": ("overload or abnormal condition cleared", 0, BIT["OVER"]),
    "#": ("replace the battery", BIT["RB"], 0),
    "|": ("a setting in the EEPROM changed", 0, 0),
    "&": ("check the alarm register", 0, 0),
    "*": ("the UPS is powering down now", 0, 0),
}


class ApcError(ValueError):
    """A reply that does not fit the protocol; the message says what arrived."""


def char_name(c: str) -> str:
    """``'Q'``, or ``Ctrl-A`` for control characters."""
    if len(c) == 1 and ord(c) < 32:
        return f"Ctrl-{chr(ord(c) + 64)}"
    return repr(c)


# --------------------------------------------------------------------------------------------------
# Conversions


def _atoi(value: str) -> int:
    m = re.match(r"\s*([-+]?\d+)", value)
    return int(m.group(1)) if m else 0


def minutes_to_seconds(value: str) -> str:
    return str(_atoi(value) * 60)


def hours_to_seconds(value: str) -> str:
    return str(_atoi(value) * 3600)


def transfer_reason(value: str) -> str:
    return TRANSFER_REASONS.get(value, value)


def _number(value: str) -> str:
    """Numeric readings are published as sent, but must look like a number."""
    if not re.fullmatch(r"[-+]?\d+(\.\d*)?:?", value.strip()):
        raise ApcError(f"not a number: {show(value)}")
    return value


# --------------------------------------------------------------------------------------------------
# The variable table


@dataclass(frozen=True)
class ApcVar:
    """An APC Smart variable: the NUT name, its command character, and how it is read."""

    name: str
    char: str
    poll: bool = False  # read at every poll (else at start and after EEPROM changes)
    convert: Callable[[str], str] | None = None
    numeric: bool = False  # the reply must be a number
    kind: str = ""  # "enum" (stepped with "-", values from Ctrl-Z) or "string" (8 characters)

    def value(self, reply: str) -> str:
        if self.numeric:
            _number(reply)
        return self.convert(reply) if self.convert is not None else reply


# In the order Debian's apcsmart reads them (its table order).
VARS: tuple[ApcVar, ...] = (
    ApcVar("ups.temperature", "C", poll=True, numeric=True),
    ApcVar("ups.load", "P", poll=True, numeric=True),
    ApcVar("ups.test.interval", "E", convert=hours_to_seconds, kind="enum"),
    ApcVar("ups.test.result", "X", poll=True),
    ApcVar("ups.delay.start", "r", kind="enum"),
    ApcVar("ups.delay.shutdown", "p", kind="enum"),
    ApcVar("ups.id", "c", kind="string"),
    ApcVar("input.voltage", "L", poll=True, numeric=True),
    ApcVar("input.frequency", "F", poll=True, numeric=True),
    ApcVar("input.sensitivity", "s", kind="enum"),
    ApcVar("input.quality", "9", poll=True),
    ApcVar("input.transfer.low", "l", kind="enum"),
    ApcVar("input.transfer.high", "u", kind="enum"),
    ApcVar("input.transfer.reason", "G", poll=True, convert=transfer_reason),
    ApcVar("input.voltage.maximum", "M", poll=True, numeric=True),
    ApcVar("input.voltage.minimum", "N", poll=True, numeric=True),
    ApcVar("output.voltage", "O", poll=True, numeric=True),
    ApcVar("output.voltage.nominal", "o", kind="enum"),
    ApcVar("battery.date", "x", kind="string"),
    ApcVar("battery.charge", "f", poll=True, numeric=True),
    ApcVar("battery.charge.restart", "e", kind="enum"),
    ApcVar("battery.voltage", "B", poll=True, numeric=True),
    ApcVar("battery.voltage.nominal", "g"),
    ApcVar("battery.runtime", "j", poll=True, convert=minutes_to_seconds, numeric=True),
    ApcVar("battery.runtime.low", "q", convert=minutes_to_seconds, kind="enum"),
    ApcVar("battery.alarm.threshold", "k", kind="enum"),
    ApcVar("ups.serial", "n"),
    ApcVar("ups.mfr.date", "m"),
    ApcVar("ups.model", MODEL),
    ApcVar("ups.firmware", "b"),
)
VAR_BY_CHAR = {v.char: v for v in VARS}
VAR_BY_NAME = {v.name: v for v in VARS}
STRING_LENGTH = 8

# instant command -> command character (commands that need the client to ask twice are in NASTY)
COMMANDS: dict[str, str] = {
    "load.on": LOAD_ON,
    "test.panel.start": "A",
    "calibrate.start": "D",
    "calibrate.stop": "D",
    "test.failure.start": "U",
    "test.battery.start": "W",
    "test.battery.stop": "W",
    "bypass.start": "^",
    "bypass.stop": "^",
    "load.off": "Z",
    "shutdown.stayoff": "K",
}
NASTY = ("load.off", "shutdown.stayoff", "shutdown.return")
REPEATED = ("Z", "K", LOAD_ON)  # sent twice, 1.5 s apart, as the UPS wants
REPEAT_PAUSE = 1.5
CONFIRM_WINDOW = (3.0, 15.0)  # the second request must come this many seconds after the first


def command_table(supported: str) -> list[str]:
    """The instant commands a UPS supporting these command characters offers, sorted."""
    cmds = {name for name, c in COMMANDS.items() if c in supported}
    if "S" in supported or "@" in supported:
        cmds.add("shutdown.return")
    return sorted(cmds)


# --------------------------------------------------------------------------------------------------
# Replies


def split_alerts(line: str, capabilities: bool = False) -> tuple[str, str]:
    """(alert characters in front of a reply, the reply). A lone ``*`` is a reply (to a shutdown
    command), and the Ctrl-Z reply starts with ``#`` itself."""
    alerts = ""
    while len(line) > 1 and line[0] in ALERTS:
        if capabilities and line[0] == "#" and not (line[1] == "#" or line[1] in ALERTS):
            break
        alerts, line = alerts + line[0], line[1:]
    return alerts, line


@dataclass(frozen=True)
class ProtocolInfo:
    """What the UPS says about its protocol: version, alert and command characters."""

    version: str
    alerts: str
    commands: str


def parse_protocol_info(reply: str | None) -> ProtocolInfo:
    """The ``a`` reply: ``<version>.<alert characters>.<command characters>``."""
    if not reply or reply == "NA":
        raise ApcError(f"no protocol information ({show(reply)})")
    parts = reply.split(".", 2)
    if len(parts) != 3 or not parts[2]:
        raise ApcError(f"unexpected protocol information {show(reply)}")
    return ProtocolInfo(*parts)


def parse_capabilities(reply: str | None, locale: str) -> dict[str, list[str]]:
    """The Ctrl-Z reply: ``#`` then, per setting, its character, locale, the number of values, their
    width and the values. Only the entries for ``locale`` (or ``4``, every locale) are kept."""
    if not reply or not reply.startswith("#"):
        raise ApcError(f"unexpected capability list {show(reply)}")
    out: dict[str, list[str]] = {}
    i, text = 1, reply
    while i < len(text):
        if i + 4 > len(text) or not (text[i + 2].isdigit() and text[i + 3].isdigit()):
            raise ApcError(f"capability list cut short or garbled at {i}: {show(text[i:i + 20])}")
        char, loc, count, width = text[i], text[i + 1], int(text[i + 2]), int(text[i + 3])
        i += 4
        values = [text[i + k * width: i + (k + 1) * width] for k in range(count)]
        if len(values[-1] if values else "") != width:
            raise ApcError(f"capability list cut short for {char_name(char)}: {show(text[i - 4:])}")
        i += count * width
        if loc in ("4", locale) and char not in out:
            out[char] = values
    return out


def parse_status(reply: str | None) -> int:
    """The ``Q`` reply: the status register as 2 hex digits."""
    if reply is None or not re.fullmatch(r"[0-9A-Fa-f]{2}", reply):
        raise ApcError(f"unexpected status reply {show(reply)}")
    return int(reply, 16)


def status_tokens(bits: int) -> list[str]:
    return [name for i, name in enumerate(STATUS_BITS) if bits & (1 << i)]


def apply_alert(bits: int, alert: str) -> int:
    _, on, off = ALERT_ACTIONS.get(alert, ("", 0, 0))
    return (bits | on) & ~off


def enum_values(var: ApcVar, raw_values: list[str]) -> list[str]:
    """A setting's allowed values as published: converted, duplicates dropped."""
    out: list[str] = []
    for raw in raw_values:
        v = var.value(raw)
        if v not in out:
            out.append(v)
    return out


# --------------------------------------------------------------------------------------------------
# Shutdown methods (man apcsmart: sdtype / advorder / awd)

SOFT, HARD, DELAYED, INSTANT, CS = "S", "@", "K", "Z", "CS"
ADVORDER_METHODS = {"0": SOFT, "1": HARD, "2": DELAYED, "3": INSTANT, "4": CS}


def parse_awd(value: str | None) -> str:
    """The ``@`` wake-up delay digits: exactly 2 digits select the 2-digit variant, else 3 digits."""
    if value is None or value == "":
        return "000"
    if not re.fullmatch(r"\d{1,3}", value):
        raise ValueError(f"awd: expected 1 to 3 digits (units of 6 minutes), got '{value}'")
    return value if len(value) == 2 else value.zfill(3)


def parse_sdtype(value: str | None) -> int:
    if value is None:
        return 0
    if not re.fullmatch(r"[0-5]", value.strip()):
        raise ValueError(f"sdtype: expected one digit 0..5, got '{value}'")
    return int(value)


def parse_advorder(value: str | None) -> list[str] | None:
    """None when not set or ``no`` (sdtype applies); else the methods to try in turn."""
    if value is None or value.strip().lower() == "no":
        return None
    if not re.fullmatch(r"[0-4]{1,5}", value.strip()):
        raise ValueError(f"advorder: expected 'no' or 1 to 5 digits 0..4, got '{value}'")
    return [ADVORDER_METHODS[d] for d in value.strip()]


def sdtype_plan(sdtype: int, on_battery: bool) -> list[str]:
    """The methods tried in turn for an ``sdtype`` (the first that the UPS accepts ends it)."""
    if sdtype == 0:
        return [SOFT] if on_battery else [HARD]
    if sdtype == 1:
        return [SOFT, HARD] if on_battery else [HARD]
    return [{2: INSTANT, 3: DELAYED, 4: CS, 5: HARD}[sdtype]]


def accepted(reply: str | None) -> bool:
    """Whether a shutdown or command reply says the UPS took it."""
    return reply is not None and reply.strip() in ("OK", "*")
