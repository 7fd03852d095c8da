"""Tripp Lite / Phoenixtec PPC-MIB (xppc).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, const, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.935.1.1.1."

XPPC = Mapping(
    "xppc", "0.4", sysoid="1.3.6.1.4.1.935", check="",
    model=P + "1.1.1.0", device_type="ups",
    entries=(
        const("ups.mfr", "Tripp Lite / Phoenixtec"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.model", P + "1.1.1.0"),
        status(P + "2.1.1.0", {3: "LB"}),
        num("battery.charge", P + "2.2.1.0"),
        num("ups.temperature", P + "2.2.3.0", 0.1),
        num("input.voltage", P + "3.2.1.0", 0.1),
        status(P + "4.1.1.0", {2: "OL", 3: "OB", 4: "OL BOOST", 5: "OFF", 6: "BYPASS", 8: "OFF", 9: "OL TRIM"}),
        num("output.voltage", P + "4.2.1.0", 0.1),
        num("output.frequency", P + "4.2.2.0", 0.1),
        num("ups.load", P + "4.2.3.0"),
    ),
    commands=(
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
    ),
)

MAPPINGS = {m.name: m for m in (XPPC,)}
