"""CyberPower (vendor id 0764; NUT 2.8.0 gives 0483 boards to its Ever subdriver): Power Device Class paths under
UPS.Output, the test on UPS.Output.Test; NUT widens a broken Output.Voltage range (nutlite.hid.fixups)."""

from __future__ import annotations

from collections.abc import Mapping

from . import BEEPER, Entry, Subdriver, beeper_commands, delay_entries, flag, string, var
from .generic import PS, battery, status, tests

TABLE: tuple[Entry, ...] = (
    string("battery.mfr.date", f"{PS}.iOEMInformation"),
    *battery(voltage_nominal="%.0f"),
    var("ups.load", "UPS.Output.PercentLoad"),
    var("ups.beeper.status", f"{PS}.AudibleAlarmControl", BEEPER),
    *tests("UPS.Output.Test"),
    var("ups.realpower.nominal", "UPS.Output.ConfigActivePower", static=True),
    *delay_entries("UPS.Output"),
    *status(),
    flag("UPS.Output.Boost", "boost"),
    flag("UPS.Output.Overload", "overload"),
    var("input.voltage.nominal", "UPS.Input.ConfigVoltage"),
    var("input.voltage", "UPS.Input.Voltage", "%.1f"),
    var("input.frequency", "UPS.Input.Frequency", "%.1f"),
    var("input.transfer.low", "UPS.Input.LowVoltageTransfer", rw=10),
    var("input.transfer.high", "UPS.Input.HighVoltageTransfer", rw=10),
    var("output.voltage", "UPS.Output.Voltage", "%.1f"),
    var("output.frequency", "UPS.Output.Frequency", "%.1f"),
    *beeper_commands(f"{PS}.AudibleAlarmControl"),
)


def cps_model(product: str | None, _values: Mapping[str, str]) -> str | None:
    return product.strip() if product and product.strip() else None


SUBDRIVER = Subdriver("CyberPower HID", "0.6", (0x0764,), TABLE, mfr="CPS", model=cps_model,
                      extra={"fix": "cyberpower"}, products={0x0764: frozenset({0x0005, 0x0501, 0x0601})})
