"""RFC 1628 UPS-MIB (ietf), and the same under Tripp Lite's entry point (tripplite).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from dataclasses import replace

from nutlite.snmp.mib import Mapping, cmd, lookup, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.2.1.33.1."

TRIPPLITE = Mapping(
    "tripplite", "1.54", sysoid="1.3.6.1.4.1.850.1", check="",
    model=P + "1.2.0", device_type="ups",
    entries=(
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.mfr", P + "1.1.0", static=True),
        text("ups.model", P + "1.2.0", static=True),
        text("ups.firmware", P + "1.3.0", static=True),
        text("ups.firmware.aux", P + "1.4.0", static=True),
        status(P + "2.1.0", {3: "LB", 4: "LB"}),
        num("battery.runtime", P + "2.3.0", 60),
        num("battery.charge", P + "2.4.0"),
        num("battery.voltage", P + "2.5.0", 0.1),
        num("battery.current", P + "2.6.0", 0.1),
        num("battery.temperature", P + "2.7.0"),
        num("input.phases", P + "3.2.0", default="1"),
        num("input.frequency", P + "3.3.1.2.1", 0.1, phases=1, phase_of="input.phases"),
        num("input.voltage", P + "3.3.1.3.1", phases=1, phase_of="input.phases"),
        num("input.current", P + "3.3.1.4.1", 0.1, phases=1, phase_of="input.phases"),
        num("input.realpower", P + "3.3.1.5.1", phases=1, phase_of="input.phases"),
        status(P + "4.1.0", {2: "OFF", 3: "OL", 4: "OL BYPASS", 5: "OB", 6: "OL BOOST", 7: "OL TRIM"}),
        num("output.frequency", P + "4.2.0", 0.1),
        num("output.phases", P + "4.3.0", default="1"),
        num("output.voltage", P + "4.4.1.2.1", phases=1, phase_of="output.phases"),
        num("output.current", P + "4.4.1.3.1", 0.1, phases=1, phase_of="output.phases"),
        num("output.realpower", P + "4.4.1.4.1", phases=1, phase_of="output.phases"),
        num("ups.load", P + "4.4.1.5.1", phases=1, phase_of="output.phases"),
        num("input.bypass.phases", P + "5.2.0", default="1"),
        num("input.bypass.frequency", P + "5.1.0", 0.1),
        num("input.bypass.voltage", P + "5.3.1.2.1"),
        num("input.bypass.L1-N.voltage", P + "5.3.1.2.1"),
        num("input.bypass.L2-N.voltage", P + "5.3.1.2.2"),
        num("input.bypass.L3-N.voltage", P + "5.3.1.2.3"),
        num("input.bypass.current", P + "5.3.1.3.1", 0.1),
        num("input.bypass.L1.current", P + "5.3.1.3.1", 0.1),
        num("input.bypass.L2.current", P + "5.3.1.3.2", 0.1),
        num("input.bypass.L3.current", P + "5.3.1.3.3", 0.1),
        num("input.bypass.realpower", P + "5.3.1.4.1"),
        num("input.bypass.L1.realpower", P + "5.3.1.4.1"),
        num("input.bypass.L2.realpower", P + "5.3.1.4.2"),
        num("input.bypass.L3.realpower", P + "5.3.1.4.3"),
        status(P + "6.3.8", {1: "OVER"}),
        status(P + "7.1.0", {3: "TEST", 4: "TEST", 5: "CAL"}),
        lookup("ups.test.result", P + "7.3.0", {1: "done and passed", 2: "done and warning", 3: "done and error", 4: "aborted", 5: "in progress", 6: "no test initiated"}),
        text("ups.timer.shutdown", P + "8.2.0"),
        text("ups.timer.start", P + "8.3.0"),
        text("ups.timer.reboot", P + "8.4.0"),
        lookup("ups.start.auto", P + "8.5.0", {1: "yes", 2: "no"}),
        num("input.voltage.nominal", P + "9.1.0"),
        num("input.frequency.nominal", P + "9.2.0", 0.1),
        num("output.voltage.nominal", P + "9.3.0"),
        num("output.frequency.nominal", P + "9.4.0", 0.1),
        num("output.power.nominal", P + "9.5.0"),
        num("output.realpower.nominal", P + "9.6.0"),
        num("battery.runtime.low", P + "9.7.0", 60),
        lookup("ups.beeper.status", P + "9.8.0", {1: "disabled", 2: "enabled", 3: "muted"}),
        num("input.transfer.low", P + "9.9.0"),
        num("input.transfer.high", P + "9.10.0"),
        num("input.L1.frequency", P + "3.3.1.2.1", 0.1, phases=3, phase_of="input.phases"),
        num("input.L2.frequency", P + "3.3.1.2.2", 0.1, phases=3, phase_of="input.phases"),
        num("input.L3.frequency", P + "3.3.1.2.3", 0.1, phases=3, phase_of="input.phases"),
        num("input.L1-N.voltage", P + "3.3.1.3.1", phases=3, phase_of="input.phases"),
        num("input.L2-N.voltage", P + "3.3.1.3.2", phases=3, phase_of="input.phases"),
        num("input.L3-N.voltage", P + "3.3.1.3.3", phases=3, phase_of="input.phases"),
        num("input.L1.current", P + "3.3.1.4.1", 0.1, phases=3, phase_of="input.phases"),
        num("input.L2.current", P + "3.3.1.4.2", 0.1, phases=3, phase_of="input.phases"),
        num("input.L3.current", P + "3.3.1.4.3", 0.1, phases=3, phase_of="input.phases"),
        num("input.L1.realpower", P + "3.3.1.5.1", phases=3, phase_of="input.phases"),
        num("input.L2.realpower", P + "3.3.1.5.2", phases=3, phase_of="input.phases"),
        num("input.L3.realpower", P + "3.3.1.5.3", phases=3, phase_of="input.phases"),
        num("output.L1-N.voltage", P + "4.4.1.2.1", phases=3, phase_of="output.phases"),
        num("output.L2-N.voltage", P + "4.4.1.2.2", phases=3, phase_of="output.phases"),
        num("output.L3-N.voltage", P + "4.4.1.2.3", phases=3, phase_of="output.phases"),
        num("output.L1.current", P + "4.4.1.3.1", 0.1, phases=3, phase_of="output.phases"),
        num("output.L2.current", P + "4.4.1.3.2", 0.1, phases=3, phase_of="output.phases"),
        num("output.L3.current", P + "4.4.1.3.3", 0.1, phases=3, phase_of="output.phases"),
        num("output.L1.realpower", P + "4.4.1.4.1", phases=3, phase_of="output.phases"),
        num("output.L2.realpower", P + "4.4.1.4.2", phases=3, phase_of="output.phases"),
        num("output.L3.realpower", P + "4.4.1.4.3", phases=3, phase_of="output.phases"),
        num("output.L1.power.percent", P + "4.4.1.5.1", phases=3, phase_of="output.phases"),
        num("output.L2.power.percent", P + "4.4.1.5.2", phases=3, phase_of="output.phases"),
        num("output.L3.power.percent", P + "4.4.1.5.3", phases=3, phase_of="output.phases"),
    ),
    commands=(
        cmd("beeper.disable", P + "9.8.0", 1),
        cmd("beeper.enable", P + "9.8.0", 2),
        cmd("beeper.mute", P + "9.8.0", 3),
        cmd("load.off", P + "8.2.0", 0),
        cmd("load.on", P + "8.3.0", 0),
        cmd("test.battery.start", P + "7.1.0", 0),
        cmd("test.battery.start.deep", P + "7.1.0", 0),
        cmd("test.battery.start.quick", P + "7.1.0", 0),
        cmd("test.battery.stop", P + "7.1.0", 0),
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("ups.timer.reboot", 8),
        rw("ups.timer.shutdown", 8),
        rw("ups.timer.start", 8),
    ),
)

IETF = replace(TRIPPLITE, name="ietf", version="1.54", sysoid="1.3.6.1.2.1.33", check="1.3.6.1.2.1.33.1.1.1.0")

MAPPINGS = {m.name: m for m in (TRIPPLITE, IETF,)}
