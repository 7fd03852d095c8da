"""Delta / Minuteman UPSes (delta_ups).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, lookup, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.2254.2.4."

DELTA_UPS = Mapping(
    "delta_ups", "0.5", sysoid="1.3.6.1.4.1.2254.2.4", check="",
    model=P + "1.2.0", device_type="ups",
    entries=(
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.mfr", P + "1.1.0"),
        text("ups.model", P + "1.2.0"),
        text("ups.firmware", P + "1.4.0"),
        text("ups.firmware.aux", P + "1.3.0"),
        lookup("ups.type", P + "1.19.0", {1: "on-line", 2: "off-line", 3: "line-interactive", 4: "3phase", 5: "splite-phase"}, unmatched=1),
        num("ups.load", P + "5.7.0"),
        num("ups.power", P + "1.7.0"),
        num("output.voltage.nominal", P + "1.8.0"),
        num("output.voltage", P + "5.4.0", 0.1),
        num("output.frequency.nominal", P + "1.9.0"),
        num("output.current", P + "5.5.0", 0.1),
        num("input.voltage.nominal", P + "1.10.0"),
        num("input.voltage", P + "4.3.0", 0.1),
        num("input.frequency.nominal", P + "1.11.0"),
        num("input.frequency", P + "4.2.0", 0.1),
        status(P + "5.1.0", {0: "OL", 1: "OB", 2: "BYPASS", 3: "TRIM", 4: "BOOST", 5: "BYPASS", 7: "OFF"}),
    ),
    commands=(
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
    ),
)

MAPPINGS = {m.name: m for m in (DELTA_UPS,)}
