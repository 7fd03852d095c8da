"""The format of a MIB mapping: which OID feeds which NUT variable, and how.

A mapping (one per NUT ``mibs=`` name) is an ordered tuple of entries. Order matters as it does in NUT:
every entry is read in the first pass, later passes read the entries that are not ``static``; when
several entries feed one variable, the last one that answered wins (so a fallback OID comes *before*
the preferred one that overrides it, or carries ``static`` so that a later pass leaves it alone).

OID templates: ``%i`` is the index of an outlet, outlet group or phase (the entry's ``each`` names the
variable that counts them, ``outlet.count``...); ``%d`` is the daisy-chain device index (0: the one
device). Variable names use ``%i`` the same way.

A family file (``nutlite/drivers/tables/snmp/<family>.py``) builds entries with the helpers below::

    MAPPING = Mapping("ietf", "1.54", sysoid="1.3.6.1.2.1.33", check="1.3.6.1.2.1.33.1.1.2.0", entries=(
        text("ups.mfr", I + "1.1.0", static=True),
        num("battery.voltage", I + "2.5.0", 0.1),
        status(I + "4.1.0", {2: "OFF", 3: "OL", 4: "OL BYPASS", 5: "OB"}),
        lookup("ups.beeper.status", I + "9.8.0", {1: "disabled", 2: "enabled", 3: "muted"}),
    ), commands=(cmd("load.off", I + "8.2.0", 0),), writable=(rw("device.contact", 128),))
"""

from __future__ import annotations

from collections.abc import Mapping as _Map
from dataclasses import dataclass, field

NUM, TEXT, LOOKUP, STATUS, ALARM, CONST = "num", "text", "lookup", "status", "alarm", "const"


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a mapping: a NUT variable and the OID it is read from."""

    kind: str  # NUM, TEXT, LOOKUP, STATUS, ALARM or CONST
    var: str  # NUT name ("ups.status" / "ups.alarm" for those kinds); may hold %i
    oid: str = ""  # dotted, may hold %i and %d; "" for CONST
    scale: float = 1.0
    decimals: int | None = None  # fixed decimals instead of NUT's rule (apcc's "24.0")
    enum: _Map[int, str] = field(default_factory=dict)  # LOOKUP texts, STATUS tokens, ALARM texts
    # LOOKUP: 0 (a text lookup): a code the enumeration lacks publishes nothing, a string or TimeTicks is
    # published as text; otherwise (a numeric lookup) any value is read as a number and a code the
    # enumeration lacks is published times this factor (NUT's factor is 1, or 128 where its table
    # gives the string length in the multiplier's place)
    unmatched: float = 0
    static: bool = False  # read in the first pass (and semi-static refreshes) only
    each: str = ""  # the count variable a %i template runs over ("outlet.count", "input.phases", ...)
    phases: int = 0  # only when the count named by ``phase_of`` equals this (ietf's three-phase names)
    phase_of: str = ""  # "input.phases" or "output.phases"
    value: str = ""  # CONST
    default: str = ""  # published when the OID does not answer in the first pass (ietf's phases: "1")
    convert: str = ""  # a conversion of nutlite.snmp.values.CONVERSIONS instead of kind's rule
    aux: str = ""  # the OID the conversion also needs (the temperature unit)


@dataclass(frozen=True, slots=True)
class Command:
    """An instant command: the OID it SETs and the value."""

    name: str  # may hold %i (outlet commands)
    oid: str  # the OID SET; its GET decides whether the device offers the command ("": always offered)
    value: int | str | None  # what is SET (INTEGER, or OCTET STRING when a str); None: the user gives it
    each: str = ""


@dataclass(frozen=True, slots=True)
class Writable:
    """A variable that ``upsrw`` may SET."""

    var: str  # a variable of the mapping; SET to its OID
    length: int = 0  # STRING with this maximum length; 0: NUMBER (or the entry's enumeration)


@dataclass(frozen=True, slots=True)
class Mapping:
    """One MIB mapping (a ``mibs=`` name): how it is detected and what it reads."""

    name: str
    version: str
    sysoid: tuple[str, ...] | str = ()  # entry point(s): the sysObjectID that selects the mapping
    check: str = ""  # OID that must answer after a sysObjectID match ("" = none)
    model: str = ""  # OID the classic probe and mibs=NAME read ("" = the first ups/device.model entry)
    device_type: str = "ups"
    one_based: tuple[str, ...] = ()  # count variables whose tables NUT always numbers from 1
    entries: tuple[Entry, ...] = ()
    commands: tuple[Command, ...] = ()
    writable: tuple[Writable, ...] = ()

    @property
    def entry_points(self) -> tuple[str, ...]:
        return (self.sysoid,) if isinstance(self.sysoid, str) else self.sysoid

    @property
    def model_oid(self) -> str:
        if self.model:
            return self.model
        for e in self.entries:
            if e.var in ("ups.model", "device.model") and e.oid:
                return e.oid.replace("%d", "0")
        return ""


# -- terse constructors for the family files --------------------------------------------------------


def num(var: str, oid: str, scale: float = 1.0, *, static: bool = False, decimals: int | None = None,
        each: str = "", phases: int = 0, phase_of: str = "", default: str = "") -> Entry:
    return Entry(NUM, var, oid, scale, decimals, static=static, each=each, phases=phases, phase_of=phase_of,
                 default=default)


def converted(var: str, oid: str, how: str, aux: str = "", *, static: bool = False, each: str = "") -> Entry:
    """A value NUT computes with a function: ``how`` names one of nutlite.snmp.values.CONVERSIONS."""
    return Entry(TEXT, var, oid, static=static, each=each, convert=how, aux=aux)


def text(var: str, oid: str, *, static: bool = False, each: str = "", phases: int = 0, phase_of: str = "") -> Entry:
    return Entry(TEXT, var, oid, static=static, each=each, phases=phases, phase_of=phase_of)


def lookup(var: str, oid: str, enum: _Map[int, str], *, unmatched: float = 0, static: bool = False,
           each: str = "", phases: int = 0, phase_of: str = "") -> Entry:
    return Entry(LOOKUP, var, oid, enum=dict(enum), unmatched=unmatched, static=static, each=each,
                 phases=phases, phase_of=phase_of)


def status(oid: str, tokens: _Map[int, str], *, each: str = "") -> Entry:
    return Entry(STATUS, "ups.status", oid, enum=dict(tokens), each=each)


def alarm(oid: str, texts: _Map[int, str], *, var: str = "ups.alarm", each: str = "") -> Entry:
    return Entry(ALARM, var, oid, enum=dict(texts), each=each)


def const(var: str, value: str) -> Entry:
    return Entry(CONST, var, value=value, static=True)


def cmd(name: str, oid: str, value: int | str | None, *, each: str = "") -> Command:
    return Command(name, oid, value, each)


def rw(var: str, length: int = 0) -> Writable:
    return Writable(var, length)
