"""The plain USB HID Power Device Class paths (PowerSummary, Battery, Input, Output), shared by the
vendor tables and used as they are by the families without vendor paths."""

from __future__ import annotations

from . import (
    BEEPER,
    TEST_RESULT,
    Entry,
    Subdriver,
    beeper_commands,
    cmd,
    delay_entries,
    flag,
    hid_date,
    kelvin,
    string,
    var,
)

PS = "UPS.PowerSummary"
PSS = "UPS.PowerSummary.PresentStatus"


def battery(voltage_nominal: str = "%.1f", charge_low_rw: int = 10) -> tuple[Entry, ...]:
    """The battery readings (``charge_low_rw``: the length NUT gives the writable battery.charge.low)."""
    return (
        var("battery.charge", f"{PS}.RemainingCapacity"),
        var("battery.charge.low", f"{PS}.RemainingCapacityLimit", rw=charge_low_rw),
        var("battery.charge.warning", f"{PS}.WarningCapacityLimit"),
        var("battery.runtime", f"{PS}.RunTimeToEmpty"),
        var("battery.runtime", "UPS.Battery.RunTimeToEmpty"),
        var("battery.runtime.low", f"{PS}.RemainingTimeLimit", rw=10),
        var("battery.voltage", f"{PS}.Voltage", "%.1f"),
        var("battery.voltage", "UPS.Battery.Voltage", "%.1f"),
        var("battery.voltage.nominal", f"{PS}.ConfigVoltage", voltage_nominal),
        var("battery.voltage.nominal", "UPS.Battery.ConfigVoltage", voltage_nominal),
        var("battery.temperature", "UPS.Battery.Temperature", kelvin),
        string("battery.type", f"{PS}.iDeviceChemistry"),
        var("battery.mfr.date", "UPS.Battery.ManufacturerDate", hid_date, static=True),
    )


def status(base: str = PSS, skip: tuple[str, ...] = ()) -> tuple[Entry, ...]:
    """The PresentStatus bits under ``base`` (but the usages named in ``skip``)."""
    entries = (
        flag(f"{base}.ACPresent", "online"),
        flag(f"{base}.Discharging", "dischrg"),
        flag(f"{base}.Charging", "chrg"),
        flag(f"{base}.ShutdownImminent", "shutdownimm"),
        flag(f"{base}.BelowRemainingCapacityLimit", "lowbatt"),
        flag(f"{base}.RemainingTimeLimitExpired", "timelimitexp"),
        flag(f"{base}.Overload", "overload"),
        flag(f"{base}.NeedReplacement", "replacebatt"),
        flag(f"{base}.BatteryPresent", "!nobattery"),
        flag(f"{base}.FullyCharged", "fullycharged"),
        flag(f"{base}.FullyDischarged", "depleted"),
        flag(f"{base}.Boost", "boost"),
        flag(f"{base}.Buck", "trim"),
        flag(f"{base}.OverTemperature", "overheat"),
        flag(f"{base}.InternalFailure", "fault"),
        flag(f"{base}.CommunicationLost", "commfault"),
        flag(f"{base}.AwaitingPower", "awaitingpower"),
    )
    return tuple(e for e in entries if e.path.rsplit(".", 1)[1] not in skip)


def input_output() -> tuple[Entry, ...]:
    return (
        var("input.voltage", "UPS.Input.Voltage", "%.1f"),
        var("input.voltage.nominal", "UPS.Input.ConfigVoltage"),
        var("input.frequency", "UPS.Input.Frequency", "%.1f"),
        var("input.transfer.low", "UPS.Input.LowVoltageTransfer", rw=10),
        var("input.transfer.high", "UPS.Input.HighVoltageTransfer", rw=10),
        var("output.voltage", "UPS.Output.Voltage", "%.1f"),
        var("output.voltage.nominal", "UPS.Output.ConfigVoltage"),
        var("output.frequency", "UPS.Output.Frequency", "%.1f"),
        var("output.current", "UPS.Output.Current", "%.2f"),
        var("ups.load", "UPS.Output.PercentLoad"),
        var("ups.realpower.nominal", "UPS.Output.ConfigActivePower", static=True),
        var("ups.power.nominal", "UPS.Output.ConfigApparentPower", static=True),
    )


def tests(path: str = "UPS.Battery.Test") -> tuple[Entry, ...]:
    return (
        var("ups.test.result", path, TEST_RESULT),
        cmd("test.battery.start.quick", path, 1),
        cmd("test.battery.start.deep", path, 2),
        cmd("test.battery.stop", path, 3),
    )


TABLE: tuple[Entry, ...] = (
    *battery(),
    var("ups.beeper.status", f"{PS}.AudibleAlarmControl", BEEPER),
    var("ups.mfr.date", f"{PS}.ManufacturerDate", hid_date, static=True),
    *input_output(),
    *delay_entries(PS),
    *delay_entries("UPS.Output"),
    var("ups.timer.reboot", f"{PS}.DelayBeforeReboot", quick=True),
    cmd("shutdown.reboot", f"{PS}.DelayBeforeReboot", 10),
    *tests(),
    *tests("UPS.Output.Test"),
    *status(),
    flag("UPS.Output.Boost", "boost"),
    flag("UPS.Output.Overload", "overload"),
    *beeper_commands(f"{PS}.AudibleAlarmControl"),
)

#: NUT's catch-all subdriver (it claims no vendor id by itself: ``subdriver = generic``)
SUBDRIVER = Subdriver("Generic HID", "0.1", (), TABLE)
