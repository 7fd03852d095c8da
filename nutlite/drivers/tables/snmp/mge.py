"""MGE / Eaton MGE-MIB (mge).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, const, lookup, num, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.705.1."

MGE = Mapping(
    "mge", "0.55", sysoid="1.3.6.1.4.1.705.1", check="1.3.6.1.4.1.705.1.1.1.0",
    model=P + "1.1.0", device_type="ups",
    entries=(
        const("outlet.desc", "Main Outlet"),
        const("outlet.id", "0"),
        const("ups.delay.shutdown", "20"),
        const("ups.delay.start", "30"),
        const("ups.mfr", "Eaton"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.model", P + "1.1.0", static=True),
        text("ups.serial", P + "1.7.0", static=True),
        text("ups.firmware", P + "1.4.0", static=True),
        text("ups.firmware.aux", P + "12.12.0", static=True),
        num("ups.load", P + "7.2.1.4.1"),
        lookup("ups.beeper.status", "1.3.6.1.2.1.33.1.9.8.0", {1: "disabled", 2: "enabled", 3: "muted"}, static=True),
        lookup("ups.test.result", "1.3.6.1.2.1.33.1.7.3.0", {1: "done and passed", 2: "done and warning", 3: "done and error", 4: "aborted", 5: "in progress", 6: "no test initiated"}, static=True),
        num("ups.timer.shutdown", "1.3.6.1.2.1.33.1.8.2.0"),
        num("ups.timer.start", "1.3.6.1.2.1.33.1.8.3.0"),
        num("ups.timer.reboot", "1.3.6.1.2.1.33.1.8.4.0"),
        lookup("ups.start.auto", "1.3.6.1.2.1.33.1.8.5.0", {1: "yes", 2: "no"}, raw=True),
        status(P + "5.11.0", {1: "RB"}),
        status(P + "5.14.0", {1: "LB"}),
        status(P + "5.16.0", {1: "LB"}),
        status(P + "7.3.0", {1: "OB", 2: "OL"}),
        status(P + "7.4.0", {1: "BYPASS"}),
        status(P + "7.7.0", {1: "OFF"}),
        status(P + "7.8.0", {1: "BOOST"}),
        status(P + "7.10.0", {1: "OVER"}),
        status(P + "7.12.0", {1: "TRIM"}),
        status("1.3.6.1.2.1.33.1.4.1.0", {2: "OFF", 4: "BYPASS", 5: "OB", 6: "BOOST", 7: "TRIM"}),
        num("input.phases", P + "6.1.0"),
        num("input.voltage", P + "6.2.1.2.1", 0.1),
        num("input.frequency", P + "6.2.1.3.1", 0.1),
        num("input.voltage.minimum", P + "6.2.1.4.1", 0.1),
        num("input.voltage.maximum", P + "6.2.1.5.1", 0.1),
        num("input.current", P + "6.2.1.6.1", 0.1),
        lookup("input.transfer.reason", P + "6.4.0", {1: "", 2: "input voltage out of range", 3: "input frequency out of range", 4: "utility off"}, static=True),
        num("output.phases", P + "7.1.0"),
        num("output.voltage", P + "7.2.1.2.1", 0.1),
        num("output.frequency", P + "7.2.1.3.1", 0.1),
        num("output.current", P + "7.2.1.5.1", 0.1),
        num("battery.charge", P + "5.2.0"),
        num("battery.runtime", P + "5.1.0"),
        num("battery.runtime.low", P + "4.7.0"),
        text("battery.charge.low", P + "4.8.0"),
        num("battery.voltage", P + "5.5.0", 0.1),
        num("ambient.temperature", P + "8.1.0", 0.1, decimals=1),
        num("ambient.humidity", P + "8.2.0", 0.1),
        lookup("ambient.contacts.1.status", P + "8.7.1.9.1", {1: "closed", 2: "opened"}, static=True),
        lookup("ambient.contacts.2.status", P + "8.7.1.10.1", {1: "closed", 2: "opened"}, static=True),
    ),
    commands=(
    ),
    writable=(
    ),
)

MAPPINGS = {m.name: m for m in (MGE,)}
