"""Tripp Lite (vendor id 09ae; also HP 03f0 and Delta 05dd OEM boards): Power Device Class paths under
PowerSummary, PowerConverter and BatterySystem. Some protocols (3016) report voltages with a unit
exponent five decades too small; NUT scales them back."""

from __future__ import annotations

from collections.abc import Mapping

from . import BEEPER, Entry, Subdriver, beeper_commands, cmd, delay_entries, flag, var
from .generic import PS, battery, status


def _scaled(fmt: str, factor: float):  # noqa: ANN202 - a conversion
    return lambda v: fmt % (v * factor)


OUTLET = "UPS.OutletSystem.Outlet"
CONV = "UPS.PowerConverter"

#: checked with NUT 2.8.0 through usbsim on the proto 3016 capture, every report read as zeros and as
#: other values: the voltages measured under PowerSummary / PowerConverter are scaled back by 10^5, the
#: frequencies and the current shown at a tenth of their HID value; the BatterySystem's PresentStatus
#: bits are not used.
TABLE: tuple[Entry, ...] = (
    var("battery.voltage", "UPS.BatterySystem.Battery.Voltage", _scaled("%.1f", 1e5)),
    var("battery.voltage.nominal", "UPS.BatterySystem.Battery.ConfigVoltage", "%.1f", static=True),
    *battery(charge_low_rw=5),
    var("input.voltage", f"{PS}.Input.Voltage", _scaled("%.1f", 1e5)),
    var("input.voltage.nominal", f"{PS}.Input.ConfigVoltage", static=True),
    var("input.voltage", f"{CONV}.Input.Voltage", "%.1f"),
    var("input.frequency", f"{CONV}.Input.Frequency", _scaled("%.1f", 0.01)),
    var("output.voltage", f"{CONV}.Output.Voltage", _scaled("%.1f", 1e5)),
    var("output.voltage.nominal", "UPS.Flow.ConfigVoltage", static=True),
    var("output.frequency", f"{CONV}.Output.Frequency", _scaled("%.1f", 0.01)),
    var("output.frequency.nominal", "UPS.Flow.ConfigFrequency", static=True),
    var("output.current", f"{CONV}.Output.Current", _scaled("%.1f", 0.01)),
    var("input.transfer.low", f"{CONV}.Output.LowVoltageTransfer", "%.1f", rw=5),
    var("input.transfer.high", f"{CONV}.Output.HighVoltageTransfer", "%.1f", rw=5),
    var("ups.load", f"{OUTLET}.PercentLoad"),
    var("ups.power", f"{CONV}.Output.ActivePower", "%.1f"),
    var("ups.power.nominal", "UPS.Flow.ConfigApparentPower", static=True),
    var("ups.beeper.status", f"{PS}.AudibleAlarmControl", BEEPER),
    var("ups.watchdog.status", f"{OUTLET}.TLWatchdog"),
    var("ups.timer.reboot", f"{OUTLET}.DelayBeforeReboot", quick=True),
    *delay_entries(OUTLET),
    cmd("shutdown.reboot", f"{OUTLET}.DelayBeforeReboot", 10),
    cmd("reset.watchdog", f"{OUTLET}.TLWatchdog", 0),
    *beeper_commands(f"{PS}.AudibleAlarmControl"),
    *status(),
    flag(f"{CONV}.PresentStatus.Buck", "trim"),
    flag(f"{CONV}.PresentStatus.Boost", "boost"),
    flag(f"{CONV}.PresentStatus.Overload", "overload"),
    flag(f"{CONV}.PresentStatus.OverTemperature", "overheat"),
    flag(f"{CONV}.PresentStatus.InternalFailure", "fault"),
    flag(f"{CONV}.PresentStatus.AwaitingPower", "awaitingpower"),
    flag(f"{CONV}.PresentStatus.VoltageOutOfRange", "vrange"),
)

def product_model(product: str | None, _values: Mapping[str, str]) -> str | None:
    return product.strip() if product and product.strip() else None


TRIPPLITE_USAGES: Mapping[int, str] = {0xFFFF0056: "TLDelayBeforeStartup", 0xFFFF007C: "UPSFirmwareVersion",
                                       0xFFFF007D: "CommunicationProtocolVersion", 0xFFFF0092: "TLWatchdog"}

SUBDRIVER = Subdriver(
    "TrippLite HID", "0.84", (0x09AE, 0x03F0), TABLE, model=product_model, usages=TRIPPLITE_USAGES,
    products={0x09AE: frozenset({0x1007, 0x1008, 0x2007, 0x2009, 0x2010, 0x2011, 0x2012, 0x3012, 0x3015, 0x3016,
                                 0x4002, 0x4003, 0x4004}),
              0x03F0: frozenset({0x0001, 0x1F06, 0x1F09, 0x1F0A, 0x1FE0})},
    labels={0x09AE: "TrippLite", 0x03F0: "HP"})
