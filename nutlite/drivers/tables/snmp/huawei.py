"""Huawei UPS5000 and similar with a GSE card (huawei).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, const, lookup, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.2011.6.174.1."

HUAWEI = Mapping(
    "huawei", "0.4", sysoid="1.3.6.1.4.1.8072.3.2.10", check="1.3.6.1.4.1.2011.6.174.1.2.100.1.2.1",
    model=P + "2.100.1.2.1", device_type="ups",
    entries=(
        const("input.phases", "3"),
        const("output.phases", "3"),
        const("ups.mfr", "Huawei"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.model", P + "2.100.1.2.1", static=True),
        text("ups.id", P + "1.1.2.0", static=True),
        num("ups.time", P + "11.1.0"),
        text("ups.firmware", P + "2.100.1.3.1", static=True),
        text("ups.serial", P + "2.100.1.5.1", static=True),
        status(P + "2.101.1.1.1", {2: "OL BYPASS", 3: "OL", 4: "OB", 6: "OL ECO", 7: "OB ECO"}),
        status(P + "2.101.1.3.1", {5: "CHRG", 6: "DISCHRG"}),
        lookup("ups.test.result", "1.3.6.1.2.1.33.1.7.3.0", {1: "done and passed", 2: "done and warning", 3: "done and error", 4: "aborted", 5: "in progress", 6: "no test initiated"}),
        num("input.L1-N.voltage", P + "3.100.1.1.1", 0.1),
        num("input.L2-N.voltage", P + "3.100.1.2.1", 0.1),
        num("input.L3-N.voltage", P + "3.100.1.3.1", 0.1),
        num("input.frequency", P + "3.100.1.4.1", 0.01),
        num("input.L1.current", P + "3.100.1.5.1", 0.1),
        num("input.L2.current", P + "3.100.1.6.1", 0.1),
        num("input.L3.current", P + "3.100.1.7.1", 0.1),
        num("input.L1.powerfactor", P + "3.100.1.8.1", 0.01),
        num("input.L2.powerfactor", P + "3.100.1.9.1", 0.01),
        num("input.L3.powerfactor", P + "3.100.1.10.1", 0.01),
        num("input.bypass.L1-N.voltage", P + "5.100.1.1.1", 0.1),
        num("input.bypass.L2-N.voltage", P + "5.100.1.2.1", 0.1),
        num("input.bypass.L3-N.voltage", P + "5.100.1.3.1", 0.1),
        num("input.bypass.frequency", P + "5.100.1.4.1", 0.01),
        num("output.L1-N.voltage", P + "4.100.1.1.1", 0.1),
        num("output.L2-N.voltage", P + "4.100.1.2.1", 0.1),
        num("output.L3-N.voltage", P + "4.100.1.3.1", 0.1),
        num("output.L1.current", P + "4.100.1.4.1", 0.1),
        num("output.L2.current", P + "4.100.1.5.1", 0.1),
        num("output.L3.current", P + "4.100.1.6.1", 0.1),
        num("output.frequency", P + "4.100.1.7.1", 0.01),
        num("output.L1.realpower", P + "4.100.1.8.1", 0.1),
        num("output.L1.realpower", P + "4.100.1.9.1", 0.1),
        num("output.L1.realpower", P + "4.100.1.10.1", 0.1),
        num("output.L1.power", P + "4.100.1.11.1", 0.1),
        num("output.L2.power", P + "4.100.1.12.1", 0.1),
        num("output.L3.power", P + "4.100.1.13.1", 0.1),
        num("output.L1.power.percent", P + "4.100.1.14.1", 0.1),
        num("output.L2.power.percent", P + "4.100.1.15.1", 0.1),
        num("output.L3.power.percent", P + "4.100.1.16.1", 0.1),
        lookup("output.voltage.nominal", P + "4.100.1.17.1", {1: "200", 2: "208", 3: "220", 4: "380", 5: "400", 6: "415", 7: "480", 8: "600", 9: "690"}, static=True),
        lookup("output.frequency.nominal", P + "4.100.1.18.1", {1: "50", 2: "60"}, static=True),
        lookup("output.power.nominal", P + "2.100.1.6.1", {1: "80000", 2: "100000", 3: "120000", 4: "160000", 5: "200000", 6: "30000", 7: "40000", 8: "60000", 9: "2400000", 10: "2500000", 11: "2800000", 12: "3000000"}, static=True),
        num("output.L1.powerfactor", P + "4.100.1.19.1", 0.01),
        num("output.L2.powerfactor", P + "4.100.1.20.1", 0.01),
        num("output.L2.powerfactor", P + "4.100.1.21.1", 0.01),
        num("battery.voltage", P + "6.100.1.1.1", 0.1),
        num("battery.current", P + "6.100.1.2.1", 0.1),
        num("battery.charge", P + "6.100.1.3.1"),
        num("battery.runtime", P + "6.100.1.4.1"),
    ),
    commands=(
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
    ),
)

MAPPINGS = {m.name: m for m in (HUAWEI,)}
