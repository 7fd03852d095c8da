"""PowerCOM (vendor id 0d9f): Power Device Class paths; ups.delay.start defaults to 60 s."""

from __future__ import annotations

from . import BEEPER, Entry, Subdriver, absent, cmd, var
from .cyberpower import cps_model
from .generic import PS, battery, input_output, status

TABLE: tuple[Entry, ...] = (
    *battery(),
    var("ups.beeper.status", f"{PS}.AudibleAlarmControl", BEEPER),
    *input_output(),
    absent("ups.delay.shutdown", f"{PS}.DelayBeforeShutdown", "20", rw=8),
    absent("ups.delay.start", f"{PS}.DelayBeforeStartup", "60", rw=8),
    var("ups.timer.shutdown", f"{PS}.DelayBeforeShutdown", quick=True),
    var("ups.timer.start", f"{PS}.DelayBeforeStartup", quick=True),
    cmd("load.on", f"{PS}.DelayBeforeStartup", 0),
    cmd("load.on.delay", f"{PS}.DelayBeforeStartup", None, hidden=True),
    *status(),
)

SUBDRIVER = Subdriver("PowerCOM HID", "0.6", (0x0D9F,), TABLE, mfr="PowerCOM", model=cps_model,
                      usages={0xFF860080: "POWERCOM3"},
                      products={0x0D9F: frozenset({0x0001, 0x0004, 0x00A2, 0x00A4})})
