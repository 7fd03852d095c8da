"""Eaton automatic transfer switches (eaton_ats16_nmc, eaton_ats16_nm2, eaton_ats30).

Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the
OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.
"""

from __future__ import annotations

from nutlite.snmp.mib import Mapping, lookup, num, rw, status, text

# ruff: noqa: E501 - one table row per line reads best

P = "1.3.6.1.4.1.534.10.2."

EATON_ATS16_NMC = Mapping(
    "eaton_ats16_nmc", "0.21", sysoid="1.3.6.1.4.1.705.1", check="1.3.6.1.4.1.534.10.2.1.2.0",
    model=P + "1.2.0", device_type="ats",
    entries=(
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.mfr", P + "1.1.0", static=True),
        text("device.model", P + "1.2.0", static=True),
        text("ups.firmware", P + "1.3.0"),
        text("ups.firmware.aux", P + "1.4.0"),
        text("device.serial", P + "1.5.0", static=True),
        text("device.part", P + "1.6.0", static=True),
        num("input.1.id", P + "2.2.1.1.1", static=True),
        num("input.2.id", P + "2.2.1.1.2", static=True),
        num("input.1.voltage", P + "2.2.1.2.1", 0.1),
        num("input.2.voltage", P + "2.2.1.2.2", 0.1),
        lookup("input.1.voltage.status", P + "3.2.1.5.1", {1: "good", 2: "derated-range", 3: "out-of-range", 4: "unknown"}),
        lookup("input.2.voltage.status", P + "3.2.1.5.2", {1: "good", 2: "derated-range", 3: "out-of-range", 4: "unknown"}),
        num("input.1.frequency", P + "2.2.1.3.1", 0.1),
        num("input.2.frequency", P + "2.2.1.3.2", 0.1),
        lookup("input.1.frequency.status", P + "3.2.1.2.1", {1: "good", 2: "out-of-range"}),
        lookup("input.2.frequency.status", P + "3.2.1.2.2", {1: "good", 2: "out-of-range"}),
        lookup("input.sensitivity", P + "4.6.0", {1: "normal", 2: "high", 3: "low"}, unmatched=128),
        lookup("input.source", P + "2.4.0", {1: "init", 2: "diagnosis", 3: "off", 4: "1", 5: "2", 6: "safe", 7: "fault"}),
        num("input.source.preferred", P + "4.5.0"),
        num("input.phase.shift", P + "2.1.1.0"),
        num("output.voltage", P + "2.3.1.0", 0.1),
        num("output.voltage.nominal", P + "4.4.0"),
        num("output.current", P + "2.3.2.0", 0.1),
        lookup("ups.test.result", P + "4.8.0", {1: "done and passed", 2: "done and warning", 3: "done and error", 4: "aborted", 5: "in progress", 6: "no test initiated"}, unmatched=1),
        status(P + "3.3.2.0", {1: "OFF", 2: "OL"}),
        num("ambient.temperature", P + "5.1.0", 0.1, decimals=1),
        num("ambient.temperature.low", P + "5.5.0"),
        num("ambient.temperature.high", P + "5.6.0"),
        num("ambient.humidity", P + "5.2.0", 0.1),
        num("ambient.humidity.low", P + "5.7.0"),
        num("ambient.humidity.high", P + "5.8.0"),
        lookup("ambient.contacts.1.status", P + "5.4.1.3.1", {1: "opened", 2: "closed", 3: "opened", 4: "closed", -1: "unknown"}),
        lookup("ambient.contacts.2.status", P + "5.4.1.3.2", {1: "opened", 2: "closed", 3: "opened", 4: "closed", -1: "unknown"}),
    ),
    commands=(
    ),
    writable=(
        rw("ambient.humidity.high"),
        rw("ambient.humidity.low"),
        rw("ambient.temperature.high"),
        rw("ambient.temperature.low"),
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("input.sensitivity"),
        rw("input.source.preferred"),
        rw("output.voltage.nominal"),
    ),
)

P = "1.3.6.1.4.1.534.10.2."

EATON_ATS16_NM2 = Mapping(
    "eaton_ats16_nm2", "0.22", sysoid="1.3.6.1.4.1.534.10.2", check="1.3.6.1.4.1.534.10.2.1.2.0",
    model=P + "1.2.0", device_type="ats",
    entries=(
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.mfr", P + "1.1.0", static=True),
        text("device.model", P + "1.2.0", static=True),
        text("ups.firmware", P + "1.3.0"),
        text("ups.firmware.aux", P + "1.7.0"),
        text("device.serial", P + "1.5.0", static=True),
        text("device.part", P + "1.6.0", static=True),
        num("input.1.id", P + "2.2.1.1.1", static=True),
        num("input.2.id", P + "2.2.1.1.2", static=True),
        num("input.1.voltage", P + "2.2.1.2.1", 0.1),
        num("input.2.voltage", P + "2.2.1.2.2", 0.1),
        lookup("input.1.voltage.status", P + "3.2.1.5.1", {1: "good", 2: "derated-range", 3: "out-of-range", 4: "unknown"}),
        lookup("input.2.voltage.status", P + "3.2.1.5.2", {1: "good", 2: "derated-range", 3: "out-of-range", 4: "unknown"}),
        num("input.1.frequency", P + "2.2.1.3.1", 0.1),
        num("input.2.frequency", P + "2.2.1.3.2", 0.1),
        lookup("input.1.frequency.status", P + "3.2.1.2.1", {1: "good", 2: "out-of-range"}),
        lookup("input.2.frequency.status", P + "3.2.1.2.2", {1: "good", 2: "out-of-range"}),
        lookup("input.sensitivity", P + "4.6.0", {1: "normal", 2: "high", 3: "low"}, unmatched=128),
        lookup("input.source", P + "2.4.0", {1: "init", 2: "diagnosis", 3: "off", 4: "1", 5: "2", 6: "safe", 7: "fault"}),
        num("input.source.preferred", P + "4.5.0"),
        num("input.phase.shift", P + "2.1.1.0"),
        num("output.voltage", P + "2.3.1.0", 0.1),
        num("output.voltage.nominal", P + "4.4.0"),
        num("output.current", P + "2.3.2.0", 0.1),
        lookup("ups.test.result", P + "4.8.0", {1: "done and passed", 2: "done and warning", 3: "done and error", 4: "aborted", 5: "in progress", 6: "no test initiated"}, unmatched=1),
        status(P + "3.3.2.0", {1: "OFF", 2: "OL"}),
        num("ambient.temperature", P + "5.1.0", decimals=1),
        num("ambient.temperature.low", P + "5.5.0"),
        num("ambient.temperature.high", P + "5.6.0"),
        num("ambient.humidity", P + "5.2.0"),
        num("ambient.humidity.low", P + "5.7.0"),
        num("ambient.humidity.high", P + "5.8.0"),
        lookup("ambient.contacts.1.status", P + "5.4.1.3.1", {1: "opened", 2: "closed", 3: "opened", 4: "closed", -1: "unknown"}),
        lookup("ambient.contacts.2.status", P + "5.4.1.3.2", {1: "opened", 2: "closed", 3: "opened", 4: "closed", -1: "unknown"}),
    ),
    commands=(
    ),
    writable=(
        rw("ambient.humidity.high"),
        rw("ambient.humidity.low"),
        rw("ambient.temperature.high"),
        rw("ambient.temperature.low"),
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("input.sensitivity"),
        rw("input.source.preferred"),
        rw("output.voltage.nominal"),
    ),
)

P = "1.3.6.1.4.1.534.10.1."

EATON_ATS30 = Mapping(
    "eaton_ats30", "0.03", sysoid="1.3.6.1.4.1.534.10.1", check="1.3.6.1.4.1.534.10.1.2.1.0",
    model=P + "2.1.0", device_type="ats",
    entries=(
        text("device.description", "1.3.6.1.2.1.1.1.0"),
        text("device.contact", "1.3.6.1.2.1.1.4.0"),
        text("device.location", "1.3.6.1.2.1.1.6.0"),
        text("device.mfr", P + "1.1.0", static=True),
        text("device.model", P + "2.1.0", static=True),
        text("ups.firmware", P + "2.2.0"),
        text("device.serial", P + "2.4.0"),
        num("input.1.id", P + "3.1.1.1.1"),
        num("input.2.id", P + "3.1.1.1.2"),
        num("input.1.voltage", P + "3.1.1.2.1", 0.1),
        num("input.2.voltage", P + "3.1.1.2.2", 0.1),
        num("input.1.frequency", P + "3.1.1.3.1", 0.1),
        num("input.2.frequency", P + "3.1.1.3.2", 0.1),
        num("output.voltage", P + "3.2.1.0", 0.1),
        num("output.current", P + "3.2.2.0", 0.1),
        num("ups.temperature", P + "3.3.0"),
        num("device.uptime", P + "3.5.0"),
        lookup("input.source", P + "3.7.0", {1: "init", 2: "diagnosis", 3: "off", 4: "1", 5: "2", 6: "safe", 7: "fault"}, unmatched=1),
        status(P + "4.5.0", {0: "OL", 1: "OL", 2: "OFF", 3: "OFF", 4: "OL OVER", 5: "OL OVER", 6: "OFF OVER", 7: "OFF OVER", 8: "OL", 9: "OL", 10: "OFF", 11: "OFF", 12: "OL OVER", 13: "OL OVER", 14: "OFF OVER", 15: "OFF OVER"}),
        num("input.source.preferred", P + "6.5.0"),
        lookup("input.sensitivity", P + "6.6.0", {1: "high", 2: "low"}, unmatched=1),
    ),
    commands=(
    ),
    writable=(
        rw("device.contact", 128),
        rw("device.description", 128),
        rw("device.location", 128),
        rw("input.sensitivity"),
        rw("input.source.preferred"),
    ),
)

MAPPINGS = {m.name: m for m in (EATON_ATS16_NMC, EATON_ATS16_NM2, EATON_ATS30,)}
