"""Eaton / MGE (vendor id 0463), Dell (047c), Powerware (0592), HP-labelled Eaton (03f0:1fe5): MGE's paths, with the
vendor page 0xffff names NUT's mge subdriver prints."""

from __future__ import annotations

from collections.abc import Mapping

from . import (
    BEEPER,
    ON_OFF,
    YES_NO,
    Entry,
    Subdriver,
    absent,
    beeper_commands,
    delay_entries,
    flag,
    string,
    var,
)
from .generic import PS, PSS, battery, status

MGE_USAGES: Mapping[int, str] = {
    0xFFFF0014: "Inverter", 0xFFFF001C: "HistorySystem", 0xFFFF001E: "Event", 0xFFFF001F: "EventID",
    0xFFFF0022: "OverallAlarm", 0xFFFF0041: "ConverterType", 0xFFFF004A: "ShortCircuit",
    0xFFFF004D: "RemainingCapacityLimitSetting", 0xFFFF0074: "VoltageTooHigh", 0xFFFF0075: "VoltageTooLow",
    0xFFFF0094: "Mode", 0xFFFF0095: "Country", 0xFFFF0098: "Code", 0xFFFF00E9: "Status", 0xFFFF00F0: "iModel",
    0xFFFF00F1: "iVersion", 0xFFFF00F4: "iReferenceNumber",
}

UPS_TYPE = {1: "offline / line interactive", 2: "online", 3: "online - unitary/parallel",
            4: "online - parallel with hot standy", 5: "online - hot standby redundancy"}

OUTLET = "UPS.OutletSystem.Outlet"
CONV = "UPS.PowerConverter"


def outlet(n: int, prefix: str, desc: str) -> tuple[Entry, ...]:
    """Outlet [1] is the main outlet (no status of its own); [2].. are the PowerShare outlets."""
    base = f"{OUTLET}.[{n}]"
    entries = (
        var(f"{prefix}.id", f"{base}.OutletID", static=True),
        absent(f"{prefix}.desc", f"{base}.OutletID", desc, rw=20),
        var(f"{prefix}.switchable", f"{base}.PresentStatus.Switchable", YES_NO, static=True),
    )
    if n > 1:
        entries += (var(f"{prefix}.status", f"{base}.PresentStatus.SwitchOn/Off", ON_OFF),)
    return entries


TABLE: tuple[Entry, ...] = (
    var("battery.charge.low", f"{PS}.RemainingCapacityLimitSetting", rw=5),
    *battery(charge_low_rw=5),
    string("ups.firmware", f"{PS}.iVersion"),
    var("ups.load", f"{PS}.PercentLoad"),
    var("ups.beeper.status", "UPS.BatterySystem.Battery.AudibleAlarmControl", BEEPER),
    var("ups.beeper.status", f"{PS}.AudibleAlarmControl", BEEPER),
    var("ups.power.nominal", "UPS.Flow.[4].ConfigApparentPower", static=True),
    var("ups.type", f"{CONV}.ConverterType", UPS_TYPE, static=True),
    *delay_entries(PS),
    # observed with NUT 2.8.0 through usbsim (Eaton 3S 700): PresentStatus.Charging and .Discharging
    # give no CHRG/DISCHRG, and Good = 0 gives OFF
    *status(skip=("Charging", "Discharging")),
    flag(f"{PSS}.Good", "!off"),
    flag("UPS.BatterySystem.Charger.PresentStatus.VoltageTooHigh", "battvolthi"),
    flag("UPS.BatterySystem.Charger.PresentStatus.VoltageTooLow", "battvoltlo"),
    flag(f"{CONV}.Output.PresentStatus.ShortCircuit", "shortcircuit"),
    var("input.transfer.low", f"{CONV}.Output.LowVoltageTransfer", rw=5),
    var("input.transfer.high", f"{CONV}.Output.HighVoltageTransfer", rw=5),
    var("input.voltage", f"{CONV}.Input.Voltage", "%.1f"),
    var("output.voltage", f"{CONV}.Output.Voltage", "%.1f"),
    var("output.current", f"{CONV}.Output.Current", "%.2f"),
    var("output.frequency", f"{CONV}.Output.Frequency", "%.1f"),
    var("output.voltage.nominal", "UPS.Flow.[4].ConfigVoltage", rw=3, enum=("200", "208", "220", "230", "240")),
    var("output.frequency.nominal", "UPS.Flow.[4].ConfigFrequency", static=True),
    *outlet(1, "outlet", "Main Outlet"),
    *outlet(2, "outlet.1", "PowerShare Outlet 1"),
    *outlet(3, "outlet.2", "PowerShare Outlet 2"),
    *beeper_commands("UPS.BatterySystem.Battery.AudibleAlarmControl"),  # what NUT 2.8.0 writes (usbsim)
    *beeper_commands(f"{PS}.AudibleAlarmControl"),
)


def mge_model(product: str | None, values: Mapping[str, str]) -> str | None:
    power = values.get("ups.power.nominal")
    name = product.strip() if product and product.strip() else "unknown"
    return f"{name} {power}" if power else name


def realpower(values: Mapping[str, str]) -> str | None:
    """Eaton devices without an active power reading: 0.8 x the nominal apparent power x the load."""
    try:
        return f"{float(values['ups.power.nominal']) * 0.8 * float(values['ups.load']) / 100:.0f}"
    except (KeyError, ValueError):
        return None


SUBDRIVER = Subdriver("MGE HID", "1.46", (0x0463, 0x047C, 0x0592, 0x03F0), TABLE, mfr="Eaton", model=mge_model,
                      usages=MGE_USAGES, extra={"realpower": realpower},
                      products={0x0463: frozenset({0x0001, 0xFFFF}), 0x047C: frozenset({0xFFFF}),
                                0x0592: frozenset({0x0004}), 0x03F0: frozenset({0x1FE5})},
                      labels={0x0463: "Eaton / MGE", 0x0592: "Eaton / MGE", 0x047C: "Dell"})
