"""Raritan PDUs (raritan, raritan-px2).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, cmd, const, lookup, num, rw, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.13742.1."

RARITAN = Mapping(
    "raritan", "0.8", sysoid="1.3.6.1.4.1.13742", check="1.3.6.1.4.1.13742.1.1.12.0",
    model=P + "1.12.0", device_type="pdu",
    entries=(
        const("device.mfr", "Raritan"),
        const("outlet.desc", "All outlets"),
        const("outlet.id", "0"),
        const("ups.mfr", "Raritan"),
        const("ups.status", ""),
        const("ups.type", "pdu"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.model", P + "1.12.0", static=True),
        text("device.serial", P + "1.2.0", static=True),
        text("device.macaddr", P + "1.6.0", static=True),
        text("ups.model", P + "1.12.0", static=True),
        text("ups.id", P + "1.13.0", static=True),
        text("ups.serial", P + "1.2.0", static=True),
        text("ups.firmware", P + "1.1.0", static=True),
        num("ups.temperature", P + "3.1.5.0"),
        num("outlet.count", P + "2.1.0"),
        num("outlet.current", P + "3.1.1.0", 0.001),
        num("outlet.voltage", P + "3.1.2.0", 0.001),
        num("outlet.realpower", P + "3.1.3.0"),
        num("outlet.power", P + "3.1.4.0"),
        num("outlet.%i.switchable", P + "2.2.1.1.%i", static=True, each="outlet.count"),
        text("outlet.%i.desc", P + "2.2.1.2.%i", each="outlet.count"),
        lookup("outlet.%i.status", P + "2.2.1.3.%i", {0: "off", 1: "on", 2: "cycling"}, each="outlet.count"),
        num("outlet.%i.current", P + "2.2.1.4.%i", 0.001, each="outlet.count"),
        num("outlet.%i.current.maximum", P + "2.2.1.5.%i", 0.001, each="outlet.count"),
        num("outlet.%i.realpower", P + "2.2.1.7.%i", each="outlet.count"),
        num("outlet.%i.voltage", P + "2.2.1.6.%i", each="outlet.count"),
        num("outlet.%i.powerfactor", P + "2.2.1.9.%i", 0.01, each="outlet.count"),
        num("outlet.%i.power", P + "2.2.1.8.%i", each="outlet.count"),
    ),
    commands=(
        cmd("outlet.%i.load.cycle", P + "2.2.1.3.%i", 2, each="outlet.count"),
        cmd("outlet.%i.load.off", P + "2.2.1.3.%i", 0, each="outlet.count"),
        cmd("outlet.%i.load.on", P + "2.2.1.3.%i", 1, each="outlet.count"),
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("outlet.%i.desc", 128),
        rw("outlet.desc", 20),
    ),
)

P = "1.3.6.1.4.1.13742.6."

RARITAN_PX2 = Mapping(
    "raritan-px2", "0.4", sysoid="1.3.6.1.4.1.13742.6", check="1.3.6.1.4.1.13742.6.3.2.1.1.3.1",
    model=P + "3.2.1.1.3.1", device_type="pdu",
    entries=(
        const("ups.status", ""),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.mfr", P + "3.2.1.1.2.1", static=True),
        text("device.model", P + "3.2.1.1.3.1", static=True),
        text("device.serial", P + "3.2.1.1.4.1", static=True),
        text("device.macaddr", P + "3.2.2.1.11.1", static=True),
        text("device.revision", P + "3.2.3.1.4.1.1.1", static=True),
        text("ups.firmware", P + "3.2.3.1.6.1.1.1", static=True),
        text("ups.id", P + "3.2.2.1.13.1", static=True),
        text("ups.model", P + "3.2.1.1.3.1", static=True),
        num("input.load", P + "5.2.3.1.4.1.1.1", 0.1),
        num("input.voltage", P + "5.2.3.1.4.1.1.4"),
        num("input.realpower", P + "5.2.3.1.4.1.1.5"),
        num("input.power", P + "5.2.3.1.4.1.1.6"),
        num("input.powerfactor", P + "5.2.3.1.4.1.1.7", 0.01),
        num("outlet.count", P + "3.2.2.1.4.1", static=True),
        text("outlet.%i.desc", P + "3.5.3.1.3.1.%i", each="outlet.count"),
        lookup("outlet.%i.status", P + "4.1.2.1.3.1.%i", {0: "open", 1: "closed", 2: "belowLowerCritical", 3: "belowLowerWarning", 4: "normal", 5: "aboveUpperWarning", 6: "aboveUpperCritical", 7: "on", 8: "off", 9: "detected", 10: "notDetected", 11: "alarmed", 12: "ok"}, each="outlet.count"),
        num("outlet.%i.id", P + "3.5.3.1.2.1.%i", static=True, each="outlet.count"),
        num("outlet.%i.current", P + "5.4.3.1.4.1.%i.1", 0.1, each="outlet.count"),
        num("outlet.%i.voltage", P + "5.4.3.1.4.1.%i.4", each="outlet.count"),
        num("outlet.%i.power", P + "5.4.3.1.4.1.%i.5", each="outlet.count"),
        num("outlet.%i.realpower", P + "5.4.3.1.4.1.%i.6", each="outlet.count"),
        num("outlet.%i.powerfactor", P + "5.4.3.1.4.1.%i.7", each="outlet.count"),
        lookup("outlet.%i.switchable", P + "3.5.3.1.28.1.%i", {1: "yes", 2: "no"}, static=True, each="outlet.count"),
    ),
    commands=(
        cmd("outlet.%i.load.cycle", P + "4.1.2.1.2.1.%i", 2, each="outlet.count"),
        cmd("outlet.%i.load.off", P + "4.1.2.1.2.1.%i", 0, each="outlet.count"),
        cmd("outlet.%i.load.on", P + "4.1.2.1.2.1.%i", 1, each="outlet.count"),
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("outlet.%i.desc", 128),
    ),
)

MAPPINGS = {m.name: m for m in (RARITAN, RARITAN_PX2,)}
