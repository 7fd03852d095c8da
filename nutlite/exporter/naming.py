"""How NUT variables become Prometheus series: pure functions and tables, no I/O.

Two name families (see docs/exporter.md):

* ``nut_exporter``: DRuggeri/nut_exporter's names -- ``network_ups_tools_<var>`` with ``.``/``-``
  turned into ``_``, values in NUT's own units (percent stays 0-100),
  ``network_ups_tools_ups_status{flag="OL"}`` and ``network_ups_tools_device_info``;
* ``native``: Prometheus conventions -- ``nut_<var>_<unit>`` in base units, percentages as ratios
  0-1, ``nut_ups_status{status="OL"}`` and ``nut_ups_info``.

Both add an ``ups`` label to every per-UPS series (and ``server`` when more than one NUT server is
scraped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

FAMILIES = ("nut_exporter", "native")

# Every status token NUT documents (docs/new-drivers.txt, upsmon), plus ALARM and TEST.
STANDARD_STATUSES: tuple[str, ...] = (
    "OL", "OB", "LB", "HB", "RB", "CHRG", "DISCHRG", "BYPASS", "CAL", "OFF", "OVER", "TRIM",
    "BOOST", "FSD", "SD", "CP", "ALARM", "TEST",
)

# String variables whose values come from a small fixed set: exported as state sets
# (one 0/1 series per state). The listed states always appear; an unlisted value gets its own series.
ENUM_VARS: dict[str, tuple[str, ...]] = {
    "ups.beeper.status": ("enabled", "disabled", "muted"),
    "ups.test.result": (
        "Done and passed", "Done and warning", "Done and error", "Aborted", "In progress",
        "No test initiated", "Test scheduled",
    ),
    "battery.charger.status": ("charging", "discharging", "floating", "resting"),
    "outlet.*.status": ("on", "off"),
    "outlet.status": ("on", "off"),
    "ups.shutdown": ("enabled", "disabled"),
    "ups.start.auto": ("yes", "no"),
    "ups.start.battery": ("yes", "no"),
    "ups.start.reboot": ("yes", "no"),
    "outlet.switchable": ("yes", "no"),
    "outlet.*.switchable": ("yes", "no"),
    "battery.energysave": ("yes", "no"),
    "battery.protection": ("yes", "no"),
    "input.*.extended": ("yes", "no"),
    "input.sensitivity": ("high", "medium", "low"),
    "input.transfer.reason": (),
}

# Variables that go into the info series (label name per family) instead of their own series.
INFO_LABELS: dict[str, dict[str, str]] = {
    # var: {family: label}
    "device.model": {"nut_exporter": "model", "native": "model"},
    "device.mfr": {"nut_exporter": "mfr", "native": "mfr"},
    "device.serial": {"nut_exporter": "serial", "native": "serial"},
    "device.type": {"nut_exporter": "type", "native": "type"},
    "device.description": {"nut_exporter": "description", "native": "description"},
    "device.contact": {"nut_exporter": "contact", "native": "contact"},
    "device.location": {"nut_exporter": "location", "native": "location"},
    "device.part": {"nut_exporter": "part", "native": "part"},
    "device.macaddr": {"nut_exporter": "macaddr", "native": "macaddr"},
    "ups.mfr": {"nut_exporter": "ups_mfr", "native": "ups_mfr"},
    "ups.model": {"nut_exporter": "ups_model", "native": "ups_model"},
    "ups.serial": {"nut_exporter": "ups_serial", "native": "ups_serial"},
    "ups.firmware": {"nut_exporter": "firmware", "native": "firmware"},
    "ups.firmware.aux": {"nut_exporter": "firmware_aux", "native": "firmware_aux"},
    "driver.name": {"nut_exporter": "driver", "native": "driver"},
    "driver.version": {"nut_exporter": "driver_version", "native": "driver_version"},
}
# When device.X is missing, ups.X fills the device label (NUT's drivers set one or the other).
INFO_FALLBACK = {"model": "ups.model", "mfr": "ups.mfr", "serial": "ups.serial"}

# Numeric-looking variables that are identifiers, never measurements.
STRING_VARS = (
    "device.*", "ups.serial", "ups.id", "ups.firmware*", "ups.mfr*", "ups.model*", "ups.productid",
    "ups.vendorid", "*.date", "*.date.*", "driver.*", "battery.type", "battery.mfr.date", "ups.type",
    "ups.contacts", "ups.display.language", "ups.status", "ups.alarm", "outlet.id", "outlet.*.id",
    "outlet.*.desc", "outlet.desc",
)
# ... except these, which are numbers.
NUMERIC_OVERRIDES = ("device.uptime", "driver.parameter.pollinterval", "driver.parameter.pollfreq")

# DRuggeri's default on/off regexes (case-insensitive): such values become 1/0 in that family.
ON_RE = re.compile(r"^(enable|enabled|on|true|active|activated)$", re.IGNORECASE)
OFF_RE = re.compile(r"^(disable|disabled|off|false|inactive|deactivated)$", re.IGNORECASE)
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Unit:
    """A Prometheus unit: the name suffix and the factor from NUT's value."""

    suffix: str  # Prometheus base unit suffix, "" for none
    scale: float = 1.0  # multiply NUT's value by this


RATIO = Unit("ratio", 0.01)
# (glob over the NUT name, unit) -- first match wins. Order matters: specific before general.
UNIT_RULES: tuple[tuple[str, Unit], ...] = (
    ("*.voltage*", Unit("volts")),
    ("*.transfer.low", Unit("volts")),
    ("*.transfer.high", Unit("volts")),
    ("*.transfer.boost.*", Unit("volts")),
    ("*.transfer.trim.*", Unit("volts")),
    ("*.current*", Unit("amperes")),
    ("*.frequency*", Unit("hertz")),
    ("*.temperature*", Unit("celsius")),
    ("*.realpower*", Unit("watts")),
    ("*.power*", Unit("voltamperes")),
    ("*.runtime*", Unit("seconds")),
    ("*.delay.*", Unit("seconds")),
    ("*.timer.*", Unit("seconds")),
    ("*.uptime", Unit("seconds")),
    ("driver.parameter.poll*", Unit("seconds")),
    ("*.interval", Unit("seconds")),
    ("battery.charge*", RATIO),
    ("*.charge.low", RATIO),
    ("*.charge.restart", RATIO),
    ("ups.load*", RATIO),
    ("*.load", RATIO),
    ("*.humidity*", RATIO),
    ("ups.efficiency", RATIO),
    ("*.capacity", Unit("ampere_hours")),
)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True if the NUT variable ``name`` matches one of the glob ``patterns`` (``*``, ``?``, ``[]``)."""
    return any(fnmatchcase(name, p) for p in patterns)


def sanitize(name: str) -> str:
    """A NUT name as a Prometheus name fragment: every character outside ``[a-zA-Z0-9_]`` -> ``_``."""
    out = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + out if out[:1].isdigit() else out


def parse_number(value: str) -> float | None:
    """The value as a float if it is a plain decimal number (NUT pads some with zeros: ``023``)."""
    value = value.strip()
    if not NUMBER_RE.match(value):
        return None
    return float(value)


def is_string_var(var: str) -> bool:
    return matches(var, STRING_VARS) and not matches(var, NUMERIC_OVERRIDES)


def needs_type_check(var: str, value: str) -> bool:
    """True if only ``GET TYPE`` can tell whether ``var`` (whose value looks like a number) is a
    number: it is in none of the tables (no unit, not a known identifier or enum)."""
    return (
        parse_number(value) is not None
        and not unit_of(var).suffix
        and not is_string_var(var)
        and enum_states(var) is None
    )


def enum_states(var: str) -> tuple[str, ...] | None:
    """The known states of an enum-like string variable, or None if ``var`` is not one."""
    for pattern, states in ENUM_VARS.items():
        if fnmatchcase(var, pattern):
            return states
    return None


def unit_of(var: str) -> Unit:
    for pattern, unit in UNIT_RULES:
        if fnmatchcase(var, pattern):
            return unit
    return Unit("")


@dataclass(frozen=True)
class Names:
    """The series names of one family."""

    family: str
    prefix: str  # "network_ups_tools" or "nut"

    @property
    def status(self) -> str:
        return f"{self.prefix}_ups_status"

    @property
    def status_label(self) -> str:
        return "flag" if self.family == "nut_exporter" else "status"

    @property
    def info(self) -> str:
        return f"{self.prefix}_device_info" if self.family == "nut_exporter" else f"{self.prefix}_ups_info"

    @property
    def up(self) -> str:
        return f"{self.prefix}_up"

    @property
    def server_up(self) -> str:
        return f"{self.prefix}_server_up"

    @property
    def stale(self) -> str:
        return f"{self.prefix}_data_stale"

    @property
    def duration(self) -> str:
        return f"{self.prefix}_scrape_duration_seconds"

    def gauge(self, var: str) -> tuple[str, float]:
        """(series name, scale) for the numeric NUT variable ``var``."""
        base = sanitize(var)
        if self.family == "nut_exporter":
            return f"{self.prefix}_{base}", 1.0
        unit = unit_of(var)
        if unit.suffix and not base.endswith("_" + unit.suffix):
            return f"{self.prefix}_{base}_{unit.suffix}", unit.scale
        return f"{self.prefix}_{base}", unit.scale

    def stateset(self, var: str) -> str:
        """Name of the state set of the enum variable ``var`` (label ``state``)."""
        base = sanitize(var)
        if self.family == "nut_exporter":
            # network_ups_tools_<var> is DRuggeri's 1/0 gauge for on/off values: keep it free.
            return f"{self.prefix}_{base}_state"
        return f"{self.prefix}_{base}"

    def info_label(self, var: str) -> str | None:
        labels = INFO_LABELS.get(var)
        return labels[self.family] if labels else None


def names_for(family: str, prefix: str | None = None) -> Names:
    if family not in FAMILIES:
        raise ValueError(f"unknown name family {family!r}; expected one of {', '.join(FAMILIES)}")
    default = "network_ups_tools" if family == "nut_exporter" else "nut"
    if prefix is not None and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", prefix):
        raise ValueError(f"bad metric prefix {prefix!r}: letters, digits and '_' only, not starting with a digit")
    return Names(family, prefix or default)


def status_tokens(value: str) -> list[str]:
    """The tokens of ``ups.status`` (``"FSD OB LB"`` -> ``["FSD", "OB", "LB"]``), upper-cased."""
    return [t.upper() for t in value.split()]


def on_off(value: str) -> float | None:
    """DRuggeri's on/off mapping: 1.0, 0.0, or None if the value is neither."""
    if ON_RE.match(value.strip()):
        return 1.0
    if OFF_RE.match(value.strip()):
        return 0.0
    return None
