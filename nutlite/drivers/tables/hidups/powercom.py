"""PowerCOM (vendor id 0d9f): Power Device Class paths with PowerCOM's own readings (checked with NUT
2.8.0 through usbsim, the HID UPS Battery capture read as zeros and as other values): the status bits
of UPS.PresentStatus, dates as battery.date / ups.date ("not set" when 0), the temperature as the device
gives it, the shutdown timer as minutes and seconds in its two bytes and the start timer in minutes;
ups.delay.start defaults to 60 s."""

from __future__ import annotations

from . import Entry, Subdriver, absent, cmd, flag, hid_date, var
from .cyberpower import cps_model
from .generic import PS, battery, input_output, status


def pcm_shutdown_timer(value: float) -> str:
    """The high byte counts minutes, the low byte seconds."""
    v = int(value)
    return f"{(v >> 8) * 60 + (v & 0xFF)}"


def pcm_start_timer(value: float) -> str:
    return f"{int(value) * 60}"


_SKIP = ("battery.charge.low", "battery.voltage", "battery.voltage.nominal", "battery.temperature",
         "battery.mfr.date")

TABLE: tuple[Entry, ...] = (
    var("battery.charge.low", f"{PS}.RemainingCapacityLimit"),
    var("battery.temperature", "UPS.Battery.Temperature", "%.1f"),
    var("battery.date", "UPS.Battery.ManufacturerDate", hid_date, static=True),
    var("ups.date", f"{PS}.ManufacturerDate", hid_date, static=True),
    *(e for e in battery() if e.name not in _SKIP),
    *input_output(),
    absent("ups.delay.shutdown", f"{PS}.DelayBeforeShutdown", "20", rw=8),
    absent("ups.delay.start", f"{PS}.DelayBeforeStartup", "60", rw=8),
    var("ups.timer.shutdown", f"{PS}.DelayBeforeShutdown", pcm_shutdown_timer, quick=True),
    var("ups.timer.start", f"{PS}.DelayBeforeStartup", pcm_start_timer, quick=True),
    cmd("load.on", f"{PS}.DelayBeforeStartup", 0),
    cmd("load.on.delay", f"{PS}.DelayBeforeStartup", None),
    cmd("load.off.delay", f"{PS}.DelayBeforeShutdown", None, hidden=True),
    cmd("test.battery.start.quick", "UPS.Battery.Test", 1),
    cmd("beeper.disable", f"{PS}.AudibleAlarmControl", 1),
    cmd("beeper.enable", f"{PS}.AudibleAlarmControl", 2),
    cmd("beeper.toggle", f"{PS}.AudibleAlarmControl", 0),  # the driver turns it into enable / disable
    *status("UPS.PresentStatus"),
    flag("UPS.PresentStatus.Buck", "trim"),
)

SUBDRIVER = Subdriver("PowerCOM HID", "0.6", (0x0D9F,), TABLE, mfr="PowerCOM", model=cps_model,
                      usages={0xFF860080: "POWERCOM3"},
                      products={0x0D9F: frozenset({0x0001, 0x0004, 0x00A2, 0x00A4})})
