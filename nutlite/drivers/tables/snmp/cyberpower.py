"""CyberPower RMCARD (cyberpower).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, cmd, const, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.3808.1.1.1."

CYBERPOWER = Mapping(
    "cyberpower", "0.51", sysoid="1.3.6.1.4.1.3808.1.1.1", check="1.3.6.1.4.1.3808.1.1.1.1.1.1.0",
    model=P + "1.1.1.0", device_type="ups",
    entries=(
        const("ups.delay.reboot", "0"),
        const("ups.mfr", "CYBERPOWER"),
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("ups.model", P + "1.1.1.0", static=True),
        text("ups.serial", P + "1.2.3.0", static=True),
        text("ups.firmware", P + "1.2.1.0", static=True),
        text("ups.mfr.date", P + "1.2.2.0"),
        status(P + "4.1.1.0", {}),
        status(P + "2.1.1.0", {3: "LB"}),
        status(P + "7.2.7.0", {3: "CAL"}),
        status(P + "2.2.5.0", {2: "RB"}),
        num("ups.load", P + "4.2.3.0"),
        num("battery.runtime", P + "2.2.4.0"),
        num("battery.runtime.elapsed", P + "2.1.2.0"),
        num("battery.voltage", "1.3.6.1.2.1.33.1.2.5.0", 0.1),
        num("battery.voltage", P + "2.2.2.0", 0.1),
        num("battery.voltage.nominal", P + "2.2.8.0"),
        num("battery.current", P + "4.2.4.0", 0.1),
        num("battery.current", P + "2.2.7.0", 0.1),
        num("battery.charge", P + "2.2.1.0"),
        num("battery.temperature", P + "2.2.3.0"),
        num("input.voltage", P + "3.2.1.0", 0.1),
        num("input.frequency", P + "3.2.4.0", 0.1),
        num("output.voltage", P + "4.2.1.0", 0.1),
        num("output.frequency", P + "4.2.2.0", 0.1),
        num("output.current", P + "4.2.4.0", 0.1),
        num("ups.delay.start", P + "5.2.9.0"),
        num("ups.delay.shutdown", P + "5.2.11.0"),
    ),
    commands=(
        cmd("calibrate.start", P + "7.2.6.0", None),
        cmd("calibrate.stop", P + "7.2.6.0", None),
        cmd("load.off", P + "6.2.1.0", None),
        cmd("load.on", P + "6.2.6.0", None),
        cmd("shutdown.return", P + "6.2.3.0", None),
        cmd("shutdown.stayoff", P + "6.2.6.0", None),
        cmd("test.battery.start", P + "7.2.2.0", None),
        cmd("test.failure.start", P + "6.2.4.0", None),
        cmd("test.panel.start", P + "7.2.5.0", None),
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("ups.delay.shutdown"),
        rw("ups.delay.start"),
    ),
)

MAPPINGS = {m.name: m for m in (CYBERPOWER,)}
