"""Tripp Lite (vendor id 09ae; also HP 03f0 and Delta 05dd OEM boards): Power Device Class paths under
PowerSummary, PowerConverter and BatterySystem. Some protocols (3016) report voltages with a unit
exponent five decades too small; NUT scales them back."""

from __future__ import annotations

from collections.abc import Mapping

from . import Entry, Subdriver, delay_entries, flag, var
from .generic import PS, battery, status


def _scaled(fmt: str, factor: float):  # noqa: ANN202 - a conversion
    return lambda v: fmt % (v * factor)


TABLE: tuple[Entry, ...] = (
    *battery(),
    var("input.voltage", f"{PS}.Input.Voltage", _scaled("%.1f", 1e5)),
    var("input.voltage.nominal", f"{PS}.Input.ConfigVoltage", _scaled("%.0f", 1e5)),
    var("input.voltage", "UPS.PowerConverter.Input.Voltage", "%.1f"),
    var("output.voltage", "UPS.PowerConverter.Output.Voltage", "%.1f"),
    var("input.transfer.low", "UPS.PowerConverter.Output.LowVoltageTransfer", rw=10),
    var("input.transfer.high", "UPS.PowerConverter.Output.HighVoltageTransfer", rw=10),
    *delay_entries("UPS.OutletSystem.Outlet", listed=False, stop=False),
    *status(),
    *status("UPS.BatterySystem.Battery.PresentStatus"),
    flag("UPS.PowerConverter.PresentStatus.Buck", "trim"),
    flag("UPS.PowerConverter.PresentStatus.Boost", "boost"),
    flag("UPS.PowerConverter.PresentStatus.Overload", "overload"),
    flag("UPS.PowerConverter.PresentStatus.OverTemperature", "overheat"),
    flag("UPS.PowerConverter.PresentStatus.InternalFailure", "fault"),
    flag("UPS.PowerConverter.PresentStatus.AwaitingPower", "awaitingpower"),
    flag("UPS.PowerConverter.PresentStatus.VoltageOutOfRange", "vrange"),
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
