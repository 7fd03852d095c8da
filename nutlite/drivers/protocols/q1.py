"""The Megatec "Q1" protocol family, sans-IO (NUT-FACTS §8.4).

Everything here works on strings and numbers: command encoding, reply parsing (``Q1``/``QS``, ``F``,
``I``), the status bits and how they become ``ups.status``, the battery charge/runtime estimate, the
shutdown delay encoding, and the protocol probe. The I/O is a callable handed in by the driver
(``query(command) -> reply or None``), so tests can run the whole probe against a simulator object.

Behaviour follows what Debian's NUT 2.8.0 ``nutdrv_qx`` and ``blazer_ser`` do with the same UPS, as
observed on their sockets (see tests/test_q1_side_by_side.py):

* ``Q1`` values are published as ``input.voltage`` (%.1f), ``input.voltage.fault`` (%.1f),
  ``output.voltage`` (%.1f), ``ups.load`` (%.0f), ``input.frequency`` (%.1f), ``battery.voltage``
  (%.2f), ``ups.temperature`` (%.1f);
* bit 7 utility fail -> OB else OL; bit 6 -> LB; bit 5 (AVR/bypass) -> from output/input voltage:
  below half the input nothing, below 95 % TRIM, up to 105 % BYPASS, up to 150 % BOOST, above that
  nothing; bit 4 (UPS failed) -> ``ALARM`` with ``ups.alarm`` "UPS selftest failed!"; bit 3 ->
  ``ups.type``; bit 2 -> CAL; bit 1 -> FSD (and the alarm "Shutdown imminent!"); bit 0 ->
  ``ups.beeper.status``. nutdrv_qx publishes ``ups.type`` once; 2.8.0's nutdrv_qx refreshes only
  ``ups.status`` between its full updates (every ``pollfreq`` s), nutlite's publishes every reply
  whole, as blazer_ser does (so status and values always come from the same reply);
* ``F`` -> ``input.voltage.nominal`` (%.0f), ``input.current.nominal`` (%.1f),
  ``battery.voltage.nominal`` (%.1f), ``input.frequency.nominal`` (%.0f);
* without ``battery.voltage.high``/``low`` (``default.``/``override.`` in ups.conf) they are guessed
  from the nominal battery voltage as 130/120 and 104/120 of it, and ``battery.charge`` is the
  voltage's place between them, in whole percent;
* shutdown delays: ``offdelay`` seconds (12..600) become ``.2``..``.9`` tenths of a minute below one
  minute (whole 6 s steps, rounded down) or ``01``..``10`` minutes; ``ondelay`` becomes whole minutes
  ``R0001``..``R9999``; a restart delay under one minute sends no ``R`` part.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from nutlite.drivers.transports.serialport import show

CR = "\r"
Query = Callable[[str], "str | None"]  # send a command (without CR), get the reply line (without CR)


class Q1Error(ValueError):
    """A reply that does not fit the protocol; the message says what arrived."""


# --------------------------------------------------------------------------------------------------
# Replies

_NUM = r"[-+]?\d+(?:\.\d+)?"
_Q1_RE = re.compile(
    rf"^\((?P<vin>{_NUM}) (?P<vfault>{_NUM}) (?P<vout>{_NUM}) (?P<load>{_NUM}) (?P<freq>{_NUM}) "
    rf"(?P<batt>{_NUM}) (?P<temp>{_NUM}|-+\.?-*) (?P<bits>[01]{{8}})\s*$")
_F_RE = re.compile(rf"^#(?P<volt>{_NUM}) +(?P<curr>{_NUM}) +(?P<batt>{_NUM}) +(?P<freq>{_NUM})\s*$")


@dataclass(frozen=True)
class Q1Reply:
    """One ``Q1`` (or ``QS``) status reply."""

    input_voltage: float
    fault_voltage: float
    output_voltage: float
    load: float
    frequency: float
    battery_voltage: float
    temperature: float | None
    bits: str  # b7..b0 as sent

    @property
    def utility_fail(self) -> bool:
        return self.bits[0] == "1"

    @property
    def battery_low(self) -> bool:
        return self.bits[1] == "1"

    @property
    def avr(self) -> bool:
        return self.bits[2] == "1"

    @property
    def failed(self) -> bool:
        return self.bits[3] == "1"

    @property
    def offline_type(self) -> bool:
        return self.bits[4] == "1"

    @property
    def testing(self) -> bool:
        return self.bits[5] == "1"

    @property
    def shutdown_active(self) -> bool:
        return self.bits[6] == "1"

    @property
    def beeper(self) -> bool:
        return self.bits[7] == "1"


def parse_q1(line: str | None) -> Q1Reply:
    """Parse ``(MMM.M NNN.N PPP.P QQQ RR.R S.SS TT.T b7b6b5b4b3b2b1b0``; Q1Error if it is not one."""
    if line is None or line == "":
        raise Q1Error("no reply")
    m = _Q1_RE.match(line)
    if m is None:
        if line.startswith("(") and len(line.rstrip()) < 46:
            raise Q1Error(f"truncated status reply {show(line)} (expected 46 characters and 8 status bits)")
        raise Q1Error(f"unexpected status reply {show(line)} (expected '(' then 7 numbers and 8 status bits)")
    temp = m["temp"]
    return Q1Reply(float(m["vin"]), float(m["vfault"]), float(m["vout"]), float(m["load"]), float(m["freq"]),
                   float(m["batt"]), float(temp) if re.fullmatch(_NUM, temp) else None, m["bits"])


@dataclass(frozen=True)
class Rating:
    """The ``F`` reply: nominal input voltage and current, battery voltage, frequency."""

    voltage: float
    current: float
    battery_voltage: float
    frequency: float


def parse_f(line: str | None) -> Rating:
    if not line:
        raise Q1Error("no reply to F (rating)")
    m = _F_RE.match(line)
    if m is None:
        raise Q1Error(f"unexpected rating reply {show(line)} (expected '#VVV.V CCC BB.BB FF.F')")
    return Rating(float(m["volt"]), float(m["curr"]), float(m["batt"]), float(m["freq"]))


@dataclass(frozen=True)
class VendorInfo:
    """The ``I`` reply: manufacturer (15 characters), model (10), firmware version (10)."""

    company: str
    model: str
    firmware: str


def parse_i(line: str | None) -> VendorInfo:
    if not line:
        raise Q1Error("no reply to I (vendor information)")
    if not line.startswith("#") or len(line) < 27:
        raise Q1Error(f"unexpected vendor reply {show(line)} (expected '#' and 38 characters)")
    body = line[1:].ljust(37)
    return VendorInfo(body[0:15].strip(), body[16:26].strip(), body[27:37].strip())


# --------------------------------------------------------------------------------------------------
# Status


def avr_status(vin: float, vout: float) -> str | None:
    """What the AVR/bypass bit means for these voltages (None: nothing is shown)."""
    if vout < 0.5 * vin:
        return None
    if vout < 0.95 * vin:
        return "TRIM"
    if vout < 1.05 * vin:
        return "BYPASS"
    if vout < 1.5 * vin:
        return "BOOST"
    return None


def status_tokens(r: Q1Reply) -> list[str]:
    """The ``ups.status`` words for a status reply (without ALARM)."""
    words = ["OB" if r.utility_fail else "OL"]
    if r.battery_low:
        words.append("LB")
    if r.avr:
        avr = avr_status(r.input_voltage, r.output_voltage)
        if avr:
            words.append(avr)
    if r.testing:
        words.append("CAL")
    if r.shutdown_active:
        words.append("FSD")
    return words


def ups_type(r: Q1Reply) -> str:
    return "offline / line interactive" if r.offline_type else "online"


def values(r: Q1Reply, frequency_var: str = "input.frequency") -> dict[str, str]:
    """The variables of a status reply, formatted as NUT does (voltronic-qs reports the output
    frequency where the others report the input one)."""
    out = {
        "input.voltage": f"{r.input_voltage:.1f}",
        "input.voltage.fault": f"{r.fault_voltage:.1f}",
        "output.voltage": f"{r.output_voltage:.1f}",
        "ups.load": f"{r.load:.0f}",
        frequency_var: f"{r.frequency:.1f}",
        "battery.voltage": f"{r.battery_voltage:.2f}",
    }
    if r.temperature is not None:
        out["ups.temperature"] = f"{r.temperature:.1f}"
    return out


def rating_values(f: Rating, side: str = "input") -> dict[str, str]:
    """The ``F`` variables; voltronic-qs rates the output side (``side="output"``)."""
    return {
        f"{side}.voltage.nominal": f"{f.voltage:.0f}",
        f"{side}.current.nominal": f"{f.current:.1f}",
        "battery.voltage.nominal": f"{f.battery_voltage:.1f}",
        f"{side}.frequency.nominal": f"{f.frequency:.0f}",
    }


# --------------------------------------------------------------------------------------------------
# Battery


def guess_battery_range(nominal: float) -> tuple[float, float]:
    """(low, high) battery voltage guessed from the nominal one when ups.conf gives none."""
    return nominal * 104 / 120, nominal * 130 / 120


def charge_from_voltage(volt: float, low: float, high: float) -> float:
    """Battery charge in percent (0..100) from where ``volt`` lies between ``low`` and ``high``."""
    if high <= low:
        return 0.0
    return min(100.0, max(0.0, 100.0 * (volt - low) / (high - low)))


def fmt_charge(charge: float) -> str:
    return f"{charge:.0f}"


def parse_runtimecal(text: str) -> tuple[float, float, float, float]:
    """``runtimecal = t1,l1,t2,l2``: runtime t1 seconds at l1 % load, t2 at l2 %."""
    try:
        t1, l1, t2, l2 = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"runtimecal: expected 'runtime1,load1,runtime2,load2', got '{text}'") from None
    if min(t1, l1, t2, l2) <= 0 or l1 == l2:
        raise ValueError(f"runtimecal: runtimes and loads must be positive and the loads different, got '{text}'")
    return t1, l1, t2, l2


@dataclass
class RuntimeModel:
    """Runtime estimate from ``runtimecal`` (two runtime/load points), ``chargetime`` and ``idleload``.

    The two points fix ``runtime = t1 * (l1 / load) ** p`` (a Peukert-like law, ``load`` never below
    ``idleload``); the state of charge starts from the battery voltage (in whole percent), falls by
    ``dt / runtime(load)`` on battery and rises by ``dt / chargetime`` on mains. This reproduces what
    blazer_ser 2.8.0 shows (tests/test_q1_side_by_side.py); nutdrv_qx 2.8.0 estimates differently.
    """

    t1: float
    l1: float
    t2: float
    l2: float
    chargetime: float = 43200.0
    idleload: float = 10.0
    soc: float | None = None  # 0..1
    last: float | None = None
    exponent: float = field(init=False)

    def __post_init__(self) -> None:
        self.exponent = math.log(self.t2 / self.t1) / math.log(self.l1 / self.l2)

    def full_runtime(self, load: float) -> float:
        load = max(load, self.idleload, 0.1)
        return self.t1 * (self.l1 / load) ** self.exponent

    def update(self, now: float, load: float, on_battery: bool, voltage_charge: float) -> tuple[float, float]:
        """(charge percent, runtime seconds) at ``now``."""
        if self.soc is None or self.last is None:
            self.soc = float(fmt_charge(voltage_charge)) / 100.0  # starts from the whole percent shown
        else:
            dt = max(0.0, now - self.last)
            if on_battery:
                self.soc -= dt / self.full_runtime(load)
            else:
                self.soc += dt / max(self.chargetime, 1.0)
            self.soc = min(1.0, max(0.0, self.soc))
        self.last = now
        return self.soc * 100.0, self.soc * self.full_runtime(load)


# --------------------------------------------------------------------------------------------------
# Delays and commands


def offdelay_code(seconds: int) -> str:
    """``S<n>``: ``.2``..``.9`` (6-second steps) below a minute, else ``01``..``10`` whole minutes."""
    if seconds < 60:
        return f".{seconds // 6}"
    return f"{seconds // 60:02d}"


def offdelay_rounded(seconds: int) -> int:
    """The delay the UPS will really use for ``seconds``."""
    return (seconds // 6) * 6 if seconds < 60 else (seconds // 60) * 60


def shutdown_command(offdelay: int, ondelay_minutes: int | None) -> str:
    """``S<n>R<mmmm>`` (or ``S<n>`` when there is no restart part)."""
    cmd = f"S{offdelay_code(offdelay)}"
    if ondelay_minutes is not None:
        cmd += f"R{min(9999, ondelay_minutes):04d}"
    return cmd


OFFDELAY_RANGE = (12, 600)


def simple_commands() -> dict[str, str]:
    """Instant commands that are one fixed protocol command."""
    return {
        "beeper.toggle": "Q",
        "load.off": "S00R0000",
        "load.on": "C",
        "shutdown.stop": "C",
        "test.battery.start.quick": "T",
        "test.battery.start.deep": "TL",
        "test.battery.stop": "CT",
    }


COMMANDS = ("beeper.toggle", "load.off", "load.on", "shutdown.return", "shutdown.stayoff", "shutdown.stop",
            "test.battery.start", "test.battery.start.deep", "test.battery.start.quick", "test.battery.stop")


def test_command(param: int | None, in_minutes: bool = False) -> str:
    """``T<nn>`` for a test of ``param`` seconds (nutdrv_qx) or minutes (blazer_ser: ``in_minutes``);
    whole minutes 1..99, default 10 minutes."""
    if param is None:
        minutes = 10
    else:
        minutes = param if in_minutes else param // 60
    if not 1 <= minutes <= 99:
        unit = "minutes (1..99)" if in_minutes else "s (60..5940)"
        raise ValueError(f"test duration {param} is out of range: {unit}")
    return f"T{minutes:02d}"


# --------------------------------------------------------------------------------------------------
# Protocols (nutdrv_qx's "subdrivers") and the probe


@dataclass(frozen=True)
class Protocol:
    """One dialect: its name, the version string nutdrv_qx shows, and its status command."""

    name: str
    version: str
    status_command: str
    has_rating: bool = True
    has_vendor: bool = True
    side: str = "input"  # which side F and the frequency of the status reply describe

    def claim(self, query: Query) -> bool:
        """Whether the UPS speaks this dialect (asks it as nutdrv_qx does)."""
        if self.name == "voltronic-qs":
            reply = query("M")
            if reply is None or reply.strip() != "V":
                return False
            return _parses(query(self.status_command))
        if self.name == "mustek":
            return _parses(query("QS"))
        if self.name == "megatec":
            if not _parses(query("Q1")):
                return False
            try:
                parse_i(query("I"))
            except Q1Error:
                return False
            return True
        return _parses(query("Q1"))


def _parses(reply: str | None) -> bool:
    try:
        parse_q1(reply)
    except Q1Error:
        return False
    return True


PROTOCOLS: dict[str, Protocol] = {
    "voltronic-qs": Protocol("voltronic-qs", "Voltronic-QS 0.07", "QS", has_vendor=False, side="output"),
    "mustek": Protocol("mustek", "Mustek 0.07", "QS"),
    "megatec": Protocol("megatec", "Megatec 0.06", "Q1"),
    "q1": Protocol("q1", "Q1 0.07", "Q1", has_rating=False, has_vendor=False),
}
PROBE_ORDER = ("voltronic-qs", "mustek", "megatec", "q1")


def probe(query: Query, wanted: str | None = None) -> Protocol | None:
    """The first dialect (in nutdrv_qx's order, or just ``wanted``) the UPS claims to speak."""
    names = PROBE_ORDER if wanted is None else (wanted,)
    for name in names:
        proto = PROTOCOLS.get(name)
        if proto is None:
            raise ValueError(f"unknown protocol '{name}' (known: {', '.join(PROBE_ORDER)})")
        if proto.claim(query):
            return proto
    return None
