"""Descriptor corrections usbhid-ups applies to known-broken devices before it reads any report.

NUT's subdrivers patch some descriptors ("Report Descriptor Fixed" in its debug log; the
``disable_fix_report_desc`` option turns it off). Observed with Debian's NUT 2.8.0 through usbsim on the
CyberPower CP1500PFCLCD (0764:0501) capture, whose Output.Voltage inherits the 136..142 logical range of
Input.HighVoltageTransfer (so 121 V would read 136):

    Report Descriptor: hvt input LogMin: 136 LogMax: 142
    Report Descriptor: output LogMin: 136 LogMax: 142
    Fixing Report Descriptor. Set Output Voltage LogMin = 0, LogMax = 511
    Report Descriptor: input LogMin: 0 LogMax: 255
    Fixing Report Descriptor. Set Input Voltage LogMin = 0, LogMax = 511
"""

from __future__ import annotations

import dataclasses

from .descriptor import Descriptor, Field
from .usages import nut_path


def set_logical_range(descriptor: Descriptor, path: str, logical_min: int, logical_max: int) -> int:
    """Give every field with this NUT path a new logical range; returns how many fields changed."""
    changed = 0
    for i, f in enumerate(descriptor.fields):
        if not f.padding and nut_path(f) == path:
            descriptor.fields[i] = dataclasses.replace(f, logical_min=logical_min, logical_max=logical_max)
            changed += 1
    return changed


def _range(descriptor: Descriptor, path: str) -> tuple[int, int] | None:
    found: list[Field] = [f for f in descriptor.fields if not f.padding and nut_path(f) == path]
    return (found[0].logical_min, found[0].logical_max) if found else None


def fix_cyberpower(descriptor: Descriptor) -> list[str]:
    """CyberPower (VID 0764): when UPS.Output.Voltage has the logical range of
    UPS.Input.HighVoltageTransfer, widen Output.Voltage and Input.Voltage to 0..511, as NUT's cps
    subdriver does. Returns what was changed (empty when nothing needed fixing)."""
    hvt = _range(descriptor, "UPS.Input.HighVoltageTransfer")
    out = _range(descriptor, "UPS.Output.Voltage")
    done: list[str] = []
    if hvt is None or out is None or out != hvt:
        return done
    for path in ("UPS.Output.Voltage", "UPS.Input.Voltage"):
        if set_logical_range(descriptor, path, 0, 511):
            done.append(f"{path} logical range set to 0..511")
    return done
