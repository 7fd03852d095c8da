"""Bay Technical Associates PDUs (baytech).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, cmd, const, lookup, num, rw, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.4779.1.3.5."

BAYTECH = Mapping(
    "baytech", "0.4034", sysoid="1.3.6.1.4.1.4779", check="1.3.6.1.4.1.4779.1.3.5.2.1.24.1",
    model=P + "2.1.24.1", device_type="pdu",
    entries=(
        const("device.mfr", "BayTech"),
        const("outlet.desc", "All outlets"),
        const("outlet.id", "0"),
        const("ups.mfr", "Baytech"),
        const("ups.status", ""),
        const("ups.type", "pdu"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.model", P + "2.1.24.1", static=True),
        text("device.serial", "1.3.6.1.4.1.4779.1.1.2.0", static=True),
        text("device.macaddr", "1.3.6.1.2.1.2.2.1.6.2", static=True),
        text("ups.model", P + "2.1.24.1", static=True),
        text("ups.id", "1.3.6.1.4.1.4779.1.1.3.0", static=True),
        text("ups.serial", "1.3.6.1.4.1.4779.1.1.2.0", static=True),
        text("ups.firmware", "1.3.6.1.4.1.4779.1.1.1.0", static=True),
        num("ups.temperature", P + "5.1.10.2.1", 0.1),
        num("outlet.count", P + "2.1.15.1"),
        num("outlet.current", P + "5.1.6.2.1", 0.1),
        num("outlet.voltage", P + "5.1.8.2.1", 0.1),
        lookup("outlet.%i.status", P + "3.1.3.1.%i", {0: "off", 1: "on", 2: "cycling", -1: "error"}, each="outlet.count"),
        text("outlet.%i.desc", P + "3.1.4.1.%i", each="outlet.count"),
        num("outlet.%i.id", P + "6.1.3.2.1.%i", static=True, each="outlet.count"),
        num("outlet.%i.switchable", P + "3.1.1.1.%i", static=True, each="outlet.count"),
    ),
    commands=(
        cmd("outlet.%i.load.off", P + "3.1.3.1.%i", 0, each="outlet.count"),
        cmd("outlet.%i.load.on", P + "3.1.3.1.%i", 1, each="outlet.count"),
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("outlet.%i.desc", 128),
        rw("outlet.desc", 20),
    ),
)

MAPPINGS = {m.name: m for m in (BAYTECH,)}
