"""The vendor families whose devices use the plain Power Device Class paths (generic.TABLE): Belkin and
Liebert, Phoenixtec-built Liebert, iDowell, openUPS, Ever, Salicru, Legrand, Delta, Arduino, Powervar.

Names, versions and the product ids each claims are what Debian's NUT 2.8.0 usbhid-ups prints and
takes, checked through usbsim with each vendor/product id on a Power Device capture ("Using
subdriver: ..." or "This ... device ... is not (or perhaps not yet) supported"). Arduino and
Powervar match in NUT 2.8.0 but use another interface number, so their versions could not be read
there: theirs here are placeholders. EcoFlow (3746) is not in NUT 2.8.0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import Entry, Subdriver, cmd, flag, string, var
from .cyberpower import cps_model
from .generic import TABLE, status

Model = Callable[[str | None, Mapping[str, str]], str | None]

OUTLET = "UPS.OutletSystem.Outlet"
CONV = "UPS.PowerConverter"
#: Delta (Minuteman): the PowerConverter / Flow / BatterySystem paths, the delays are the outlet's, most
#: readings printed with one decimal (NUT 2.8.0 through usbsim, every report of the Minuteman capture
#: read as zeros and as other values to tell the paths apart)
DELTA_INPUT_SOURCE = {0: "normal", 1: "battery", 2: "bypass/reserve", 3: "reducing"}
DELTA_TABLE: tuple[Entry, ...] = (
    var("battery.capacity", "UPS.PowerSummary.DesignCapacity", static=True),
    var("battery.voltage", "UPS.BatterySystem.Battery.Voltage", "%.1f"),
    var("battery.voltage.nominal", "UPS.BatterySystem.Battery.ConfigVoltage", "%.1f", static=True),
    var("input.frequency", f"{CONV}.Input.Frequency", "%.1f"),
    var("input.source", f"{OUTLET}.ffff0091", DELTA_INPUT_SOURCE),
    var("input.transfer.low", f"{CONV}.Output.LowVoltageTransfer", "%.1f", number=True),
    var("input.transfer.high", f"{CONV}.Output.HighVoltageTransfer", "%.1f", number=True),
    var("input.voltage", "UPS.PowerSummary.Input.Voltage", "%.1f"),
    var("input.voltage.nominal", "UPS.PowerSummary.Input.ConfigVoltage", "%.1f", static=True),
    var("output.current", f"{CONV}.Output.Current", "%.1f"),
    var("output.frequency", f"{CONV}.Output.Frequency", "%.1f"),
    var("output.frequency.nominal", "UPS.Flow.ConfigFrequency", "%.1f", static=True),
    var("output.voltage", f"{CONV}.Output.Voltage", "%.1f"),
    var("output.voltage.nominal", "UPS.Flow.ConfigVoltage", "%.1f", static=True),
    var("ups.delay.start", f"{OUTLET}.ffff0081", number=True),
    var("ups.load", f"{OUTLET}.PercentLoad", "%.1f"),
    var("ups.power.nominal", "UPS.Flow.ConfigApparentPower", static=True),
    var("ups.realpower", f"{CONV}.Output.ActivePower", "%.1f"),
    var("ups.timer.reboot", f"{OUTLET}.DelayBeforeReboot", quick=True),
    var("ups.timer.shutdown", f"{OUTLET}.DelayBeforeShutdown", quick=True),
    var("ups.timer.start", f"{OUTLET}.DelayBeforeStartup", quick=True),
    flag(f"{CONV}.PresentStatus.Buck", "trim"),
    flag(f"{CONV}.PresentStatus.Boost", "boost"),
    flag(f"{CONV}.PresentStatus.Overload", "overload"),
    flag(f"{CONV}.PresentStatus.VoltageOutOfRange", "vrange"),
    *(e for e in TABLE if not e.name.startswith(("ups.delay.", "ups.timer.", "load.", "shutdown."))),
    cmd("load.off", f"{OUTLET}.DelayBeforeShutdown", 0),
    cmd("load.on", f"{OUTLET}.DelayBeforeStartup", 0),
    cmd("load.off.delay", f"{OUTLET}.DelayBeforeShutdown", None),
    cmd("load.on.delay", f"{OUTLET}.DelayBeforeStartup", None),
    cmd("shutdown.reboot", f"{OUTLET}.DelayBeforeReboot", 10),
    cmd("shutdown.stop", f"{OUTLET}.DelayBeforeShutdown", -1),
)
#: Belkin / Liebert: the status bits straight under UPS.PowerSummary, the serial number's string index
#: published even when empty, battery.charge.low read-only and no battery.runtime.low (NUT 2.8.0 through
#: usbsim, the Liebert GXT4 capture read as zeros and as other values)
BELKIN_TABLE: tuple[Entry, ...] = (
    var("battery.charge.low", "UPS.PowerSummary.RemainingCapacityLimit"),
    string("ups.serial", "UPS.PowerSummary.iSerialNumber"),
    *status("UPS.PowerSummary", skip=("BelowRemainingCapacityLimit",)),
    *(e for e in TABLE if e.name not in ("battery.charge.low", "battery.runtime.low")),
)


def unknown_model(product: str | None, _values: Mapping[str, str]) -> str | None:
    return product.strip() if product and product.strip() else "unknown"


def _sub(name: str, version: str, products: dict[int, frozenset[int]], labels: dict[int, str],
         mfr: str | None = None, model: Model = cps_model, table: tuple[Entry, ...] = TABLE) -> Subdriver:
    return Subdriver(name, version, tuple(products), table, mfr=mfr, model=model, products=products,
                     labels=labels)


SUBDRIVERS: list[Subdriver] = [
    _sub("Belkin/Liebert HID", "0.18", {0x050D: frozenset({0x0912, 0x0980, 0x0F51}),
                                        0x10AF: frozenset({0x0001, 0x0004, 0x0008})},
         {0x050D: "Belkin", 0x10AF: "Liebert"}, mfr="Belkin", model=unknown_model, table=BELKIN_TABLE),
    _sub("Phoenixtec/Liebert HID", "0.41", {0x06DA: frozenset({0xFFFF})}, {0x06DA: "Liebert"}),
    _sub("iDowell HID", "0.2", {0x075D: frozenset({0x0300})}, {0x075D: "iDowell"}),
    _sub("openUPS HID", "0.5", {0x04D8: frozenset({0xD004, 0xD005})}, {0x04D8: "openUPS"}),
    _sub("Ever HID", "0.1", {0x2E51: frozenset({0x0000, 0xFFFF}), 0x0483: frozenset()},
         {0x2E51: "Ever", 0x0483: "Ever"}),
    _sub("Salicru HID", "0.3", {0x2E66: frozenset({0x0201, 0x0300})}, {0x2E66: "Salicru"}),
    _sub("Legrand HID", "0.2", {0x1CB0: frozenset({0x0032, 0x0038})}, {0x1CB0: "Legrand"}),
    _sub("Delta UPS HID", "0.6", {0x05DD: frozenset({0x041B})}, {0x05DD: "Delta"}, mfr="Delta", table=DELTA_TABLE),
    _sub("Arduino HID", "0.2", {0x2341: frozenset({0x0036}), 0x2A03: frozenset({0x0036, 0x0040})},
         {0x2341: "Arduino", 0x2A03: "Arduino"}),
    _sub("Powervar HID", "0.1", {0x4234: frozenset({0x0002})}, {0x4234: "Powervar"}),
]

#: NUT's explore subdriver (the ``explore`` flag, with ``vendorid``): takes any device, publishes
#: nothing from it (NUT dumps its paths to the debug log)
EXPLORE = Subdriver("EXPLORE HID", "0.2", (), ())
