"""APC (vendor id 051d): the Power Device Class paths plus APC's vendor page (0xff86) usages."""

from __future__ import annotations

from collections.abc import Mapping

from . import BEEPER, Entry, Subdriver, absent, beeper_commands, cmd, flag, hid_date, var
from .generic import PS, PSS, battery, input_output, status, tests

APC_USAGES: Mapping[int, str] = {
    0xFF860005: "APCGeneralCollection", 0xFF860016: "APCBattReplaceDate", 0xFF860060: "APCStatusFlag",
    0xFF860072: "APCPanelTest", 0xFF86007C: "APCDelayBeforeReboot",
}


def apc_date(value: float) -> str | None:
    """APC's battery dates: the six hex digits of the value read as mmddyy, each pair as tens and units
    even past 9 (NUT 2.8.0 through usbsim: 0x010101 is 2001/01/01, 0xffffff 2065/165/165)."""
    v = int(value)
    if v == 0:
        return "not set"
    if v < 0:
        return None

    def pair(shift: int) -> int:
        return ((v >> (shift + 4)) & 0xF) * 10 + ((v >> shift) & 0xF)

    mm, dd, yy = pair(16), pair(8), pair(0)
    return f"{1900 + yy if yy >= 70 else 2000 + yy:04d}/{mm:02d}/{dd:02d}"


GEN = "UPS.APCGeneralCollection"

TABLE: tuple[Entry, ...] = (
    *battery(),
    var("battery.mfr.date", f"{PS}.APCBattReplaceDate", apc_date, static=True),
    var("ups.timer.shutdown", f"{PS}.DelayBeforeShutdown", quick=True),
    var("ups.timer.reboot", f"{PS}.DelayBeforeReboot", quick=True),
    var("ups.timer.reboot", f"{GEN}.APCDelayBeforeReboot", quick=True),
    var("ups.beeper.status", f"{PS}.AudibleAlarmControl", BEEPER),
    var("ups.mfr.date", f"{PS}.ManufacturerDate", hid_date, static=True),
    *input_output(),
    var("ups.test.result", "UPS.Battery.Test", tests()[0].conv or {}),
    absent("ups.delay.shutdown", f"{PS}.DelayBeforeShutdown", "20"),
    absent("ups.delay.start", f"{PS}.DelayBeforeStartup", "30"),
    *status(),
    flag(f"{PS}.Charging", "chrg"),
    flag(f"{PS}.Discharging", "dischrg"),
    flag(f"{PS}.ACPresent", "online"),
    flag(f"{PS}.BelowRemainingCapacityLimit", "lowbatt"),
    flag(f"{PS}.ShutdownImminent", "shutdownimm"),
    Entry("flag", "apcstatus", f"{PS}.APCStatusFlag", {0: "off", 8: "!off", 16: "off"}, quick=True),
    cmd("load.off", f"{PS}.DelayBeforeShutdown", 0),
    cmd("load.off.delay", f"{PS}.DelayBeforeShutdown", None),
    cmd("load.on.delay", f"{PS}.DelayBeforeStartup", None),
    cmd("shutdown.stop", f"{PS}.DelayBeforeShutdown", -1),
    cmd("shutdown.reboot", f"{PS}.DelayBeforeReboot", 10),
    cmd("shutdown.reboot", f"{GEN}.APCDelayBeforeReboot", 10),
    cmd("test.panel.start", f"{PS}.APCPanelTest", 1),
    cmd("test.panel.stop", f"{PS}.APCPanelTest", 0),
    *tests()[1:],
    *beeper_commands(f"{PS}.AudibleAlarmControl"),
)
del PSS


def apc_model(product: str | None, _values: Mapping[str, str]) -> str | None:
    if not product:
        return "unknown"
    return product.split(" FW:")[0].strip() or "unknown"


SUBDRIVER = Subdriver("APC HID", "0.98", (0x051D,), TABLE, mfr="APC", model=apc_model, usages=APC_USAGES,
                      products={0x051D: frozenset({0x0000, 0x0002, 0x0003})})
