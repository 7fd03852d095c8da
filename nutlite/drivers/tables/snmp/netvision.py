"""Socomec Net Vision cards, older MIB tree (netvision).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.4555.1.1.1.1."

NETVISION = Mapping(
    "netvision", "0.44", sysoid="1.3.6.1.4.1.4555.1.1.1", check="1.3.6.1.4.1.4555.1.1.1.1.1.1.0",
    model=P + "1.1.0", device_type="ups",
    entries=(
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.mfr", P + "1.3.0", static=True),
        text("ups.model", P + "1.1.0", static=True),
        text("ups.serial", P + "1.4.0", static=True),
        text("ups.firmware.aux", P + "1.2.0", static=True),
        status(P + "2.1.0", {3: "LB", 4: "LB", 5: "DISCHRG", 6: "RB"}),
        status(P + "4.1.0", {3: "OL", 4: "OL BYPASS", 5: "OB", 6: "OL BOOST", 7: "OL TRIM", 8: "OL"}),
        status(P + "6.3.2.0", {0: "OL", 1: "OB"}),
        num("ups.load", P + "4.4.1.4.1", phases=1, phase_of="output.phases"),
        num("input.phases", P + "3.1.0"),
        num("input.frequency", P + "3.2.0", 0.1),
        num("input.voltage", P + "3.3.1.5.1", 0.1, phases=1, phase_of="input.phases"),
        num("input.current", P + "3.3.1.3.1", 0.1, phases=1, phase_of="input.phases"),
        num("output.phases", P + "4.3.0"),
        num("output.frequency", P + "4.2.0", 0.1),
        num("output.voltage", P + "4.4.1.2.1", 0.1, phases=1, phase_of="output.phases"),
        num("output.current", P + "4.4.1.3.1", 0.1, phases=1, phase_of="output.phases"),
        num("output.load", P + "4.4.1.4.1", phases=1, phase_of="output.phases"),
        num("input.bypass.phases", P + "5.2.0"),
        num("input.bypass.frequency", P + "5.1.0", 0.1),
        num("input.bypass.voltage", P + "5.3.1.2.1", 0.1),
        num("input.bypass.current", P + "5.3.1.3.1", 0.1),
        num("input.bypass.L1-N.voltage", P + "5.3.1.2.1", 0.1),
        num("input.bypass.L1.current", P + "5.3.1.3.1", 0.1),
        num("input.bypass.L2-N.voltage", P + "5.3.1.2.2", 0.1),
        num("input.bypass.L2.current", P + "5.3.1.3.2", 0.1),
        num("input.bypass.L3-N.voltage", P + "5.3.1.2.3", 0.1),
        num("input.bypass.L3.current", P + "5.3.1.3.3", 0.1),
        num("battery.charge", P + "2.4.0"),
        num("battery.voltage", P + "2.5.0", 0.1),
        num("battery.runtime", P + "2.3.0", 60),
        num("input.L1-N.voltage", P + "3.3.1.5.1", 0.1, phases=3, phase_of="input.phases"),
        num("input.L1.current", P + "3.3.1.3.1", 0.1, phases=3, phase_of="input.phases"),
        num("input.L2-N.voltage", P + "3.3.1.5.2", 0.1, phases=3, phase_of="input.phases"),
        num("input.L2.current", P + "3.3.1.3.2", 0.1, phases=3, phase_of="input.phases"),
        num("input.L3-N.voltage", P + "3.3.1.5.3", 0.1, phases=3, phase_of="input.phases"),
        num("input.L3.current", P + "3.3.1.3.3", 0.1, phases=3, phase_of="input.phases"),
        num("output.L1-N.voltage", P + "4.4.1.2.1", 0.1, phases=3, phase_of="output.phases"),
        num("output.L1.current", P + "4.4.1.3.1", 0.1, phases=3, phase_of="output.phases"),
        num("output.L1.power.percent", P + "4.4.1.4.1", phases=3, phase_of="output.phases"),
        num("output.L2-N.voltage", P + "4.4.1.2.2", 0.1, phases=3, phase_of="output.phases"),
        num("output.L2.current", P + "4.4.1.3.2", 0.1, phases=3, phase_of="output.phases"),
        num("output.L2.power.percent", P + "4.4.1.4.2", phases=3, phase_of="output.phases"),
        num("output.L3-N.voltage", P + "4.4.1.2.3", 0.1, phases=3, phase_of="output.phases"),
        num("output.L3.current", P + "4.4.1.3.3", 0.1, phases=3, phase_of="output.phases"),
        num("output.L3.power.percent", P + "4.4.1.4.3", phases=3, phase_of="output.phases"),
    ),
    commands=(
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
    ),
)

MAPPINGS = {m.name: m for m in (NETVISION,)}
