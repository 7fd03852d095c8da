"""Emerson / Avocent PDUs (emerson_avocent_pdu).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, cmd, const, lookup, num, rw, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.10418.17.2.5.5.1."

EMERSON_AVOCENT_PDU = Mapping(
    "emerson_avocent_pdu", "1.3", sysoid="1.3.6.1.4.1.10418.17.1.7", check="1.3.6.1.4.1.10418.17.2.1.2.0",
    model="1.3.6.1.4.1.10418.17.2.5.3.1.5.1.0", device_type="pdu",
    entries=(
        const("device.count", "1"),
        const("device.mfr", "Avocent"),
        const("device.model", "8870"),
        const("outlet.desc", "All outlets"),
        const("outlet.id", "0"),
        const("ups.mfr", "Avocent"),
        const("ups.status", ""),
        const("ups.type", "pdu"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.serial", "1.3.6.1.4.1.10418.17.2.1.4.0", static=True),
        text("ups.model", "1.3.6.1.4.1.10418.17.2.1.2.0", static=True),
        text("ups.id", "1.3.6.1.4.1.10418.17.2.1.1.0", static=True),
        text("ups.serial", "1.3.6.1.4.1.10418.17.2.1.4.0", static=True),
        text("ups.firmware", "1.3.6.1.4.1.10418.17.2.1.7.0", static=True),
        text("ups.macaddr", "1.3.6.1.2.1.2.2.1.6.1", static=True),
        num("outlet.count", "1.3.6.1.4.1.10418.17.2.5.3.1.8.1.%d", static=True),
        lookup("outlet.%i.status", P + "5.1.0.%i", {1: "off", 2: "on"}, each="outlet.count"),
        num("outlet.%i.id", P + "3.1.0.%i", static=True, each="outlet.count"),
        text("outlet.%i.desc", P + "4.1.0.%i", each="outlet.count"),
        num("outlet.%i.current", P + "50.1.0.%i", 0.1, each="outlet.count"),
        num("outlet.%i.current.high.critical", P + "100.1.0.%i", 0.1, each="outlet.count"),
        num("outlet.%i.current.high.warning", P + "101.1.0.%i", 0.1, each="outlet.count"),
        num("outlet.%i.current.low.warning", P + "102.1.0.%i", 0.1, each="outlet.count"),
        num("outlet.%i.current.low.critical", P + "103.1.0.%i", 0.1, each="outlet.count"),
        num("outlet.%i.realpower", P + "60.1.0.%i", 0.1, each="outlet.count"),
        num("outlet.%i.voltage", P + "70.1.0.%i", each="outlet.count"),
        num("outlet.group.count", "1.3.6.1.4.1.10418.17.2.5.6.%d", static=True),
    ),
    commands=(
        cmd("outlet.%i.load.cycle", P + "6.1.0.%i", 4, each="outlet.count"),
        cmd("outlet.%i.load.off", P + "6.1.0.%i", 3, each="outlet.count"),
        cmd("outlet.%i.load.on", P + "6.1.0.%i", 2, each="outlet.count"),
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("outlet.%i.current.high.critical"),
        rw("outlet.%i.current.high.warning"),
        rw("outlet.%i.current.low.critical"),
        rw("outlet.%i.current.low.warning"),
        rw("outlet.%i.desc", 128),
        rw("outlet.desc", 20),
    ),
)

MAPPINGS = {m.name: m for m in (EMERSON_AVOCENT_PDU,)}
