"""Usage names, and the dotted usage paths usbhid-ups prints (``UPS.PowerSummary.RemainingCapacity``).

The Power Device (0x84) and Battery System (0x85) names are those of the USB HID Power Device Class
specification 1.0, spelled as NUT spells them in its paths (one word, CamelCase, ``SwitchOn/Off``).
A usage with no name renders as NUT renders it: the 32-bit usage as 8 lowercase hex digits (page then
id, ``ff860060``). The index node of a vendor-type collection renders as ``[n]``.

Vendor pages have no names by default: what NUT calls them depends on its subdriver, and its generic
("explore") view, which the captures mostly show, prints them in hex. ``VENDOR_TABLES`` holds the vendor
names the captures do show (Eaton/MGE page 0xffff as NUT's mge subdriver prints them); pass one of them
(or any mapping) as ``extra`` to ``usage_name``/``nut_path``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .descriptor import INDEX_NODE, Field

POWER_DEVICE: dict[int, str] = {
    0x00: "Undefined",
    0x01: "iName",
    0x02: "PresentStatus",
    0x03: "ChangedStatus",
    0x04: "UPS",
    0x05: "PowerSupply",
    0x10: "BatterySystem",
    0x11: "BatterySystemID",
    0x12: "Battery",
    0x13: "BatteryID",
    0x14: "Charger",
    0x15: "ChargerID",
    0x16: "PowerConverter",
    0x17: "PowerConverterID",
    0x18: "OutletSystem",
    0x19: "OutletSystemID",
    0x1A: "Input",
    0x1B: "InputID",
    0x1C: "Output",
    0x1D: "OutputID",
    0x1E: "Flow",
    0x1F: "FlowID",
    0x20: "Outlet",
    0x21: "OutletID",
    0x22: "Gang",
    0x23: "GangID",
    0x24: "PowerSummary",
    0x25: "PowerSummaryID",
    0x30: "Voltage",
    0x31: "Current",
    0x32: "Frequency",
    0x33: "ApparentPower",
    0x34: "ActivePower",
    0x35: "PercentLoad",
    0x36: "Temperature",
    0x37: "Humidity",
    0x38: "BadCount",
    0x40: "ConfigVoltage",
    0x41: "ConfigCurrent",
    0x42: "ConfigFrequency",
    0x43: "ConfigApparentPower",
    0x44: "ConfigActivePower",
    0x45: "ConfigPercentLoad",
    0x46: "ConfigTemperature",
    0x47: "ConfigHumidity",
    0x50: "SwitchOnControl",
    0x51: "SwitchOffControl",
    0x52: "ToggleControl",
    0x53: "LowVoltageTransfer",
    0x54: "HighVoltageTransfer",
    0x55: "DelayBeforeReboot",
    0x56: "DelayBeforeStartup",
    0x57: "DelayBeforeShutdown",
    0x58: "Test",
    0x59: "ModuleReset",
    0x5A: "AudibleAlarmControl",
    0x60: "Present",
    0x61: "Good",
    0x62: "InternalFailure",
    0x63: "VoltageOutOfRange",
    0x64: "FrequencyOutOfRange",
    0x65: "Overload",
    0x66: "OverCharged",
    0x67: "OverTemperature",
    0x68: "ShutdownRequested",
    0x69: "ShutdownImminent",
    0x6B: "SwitchOn/Off",
    0x6C: "Switchable",
    0x6D: "Used",
    0x6E: "Boost",
    0x6F: "Buck",
    0x70: "Initialized",
    0x71: "Tested",
    0x72: "AwaitingPower",
    0x73: "CommunicationLost",
    0xFD: "iManufacturer",
    0xFE: "iProduct",
    0xFF: "iSerialNumber",
}

BATTERY_SYSTEM: dict[int, str] = {
    0x00: "Undefined",
    0x01: "SMBBatteryMode",
    0x02: "SMBBatteryStatus",
    0x03: "SMBAlarmWarning",
    0x04: "SMBChargerMode",
    0x05: "SMBChargerStatus",
    0x06: "SMBChargerSpecInfo",
    0x07: "SMBSelectorState",
    0x08: "SMBSelectorPresets",
    0x09: "SMBSelectorInfo",
    0x10: "OptionalMfgFunction1",
    0x11: "OptionalMfgFunction2",
    0x12: "OptionalMfgFunction3",
    0x13: "OptionalMfgFunction4",
    0x14: "OptionalMfgFunction5",
    0x15: "ConnectionToSMBus",
    0x16: "OutputConnection",
    0x17: "ChargerConnection",
    0x18: "BatteryInsertion",
    0x19: "Usenext",
    0x1A: "OKToUse",
    0x1B: "BatterySupported",
    0x1C: "SelectorRevision",
    0x1D: "ChargingIndicator",
    0x28: "ManufacturerAccess",
    0x29: "RemainingCapacityLimit",
    0x2A: "RemainingTimeLimit",
    0x2B: "AtRate",
    0x2C: "CapacityMode",
    0x2D: "BroadcastToCharger",
    0x2E: "PrimaryBattery",
    0x2F: "ChargeController",
    0x40: "TerminateCharge",
    0x41: "TerminateDischarge",
    0x42: "BelowRemainingCapacityLimit",
    0x43: "RemainingTimeLimitExpired",
    0x44: "Charging",
    0x45: "Discharging",
    0x46: "FullyCharged",
    0x47: "FullyDischarged",
    0x48: "ConditioningFlag",
    0x49: "AtRateOK",
    0x4A: "SMBErrorCode",
    0x4B: "NeedReplacement",
    0x60: "AtRateTimeToFull",
    0x61: "AtRateTimeToEmpty",
    0x62: "AverageCurrent",
    0x63: "Maxerror",
    0x64: "RelativeStateOfCharge",
    0x65: "AbsoluteStateOfCharge",
    0x66: "RemainingCapacity",
    0x67: "FullChargeCapacity",
    0x68: "RunTimeToEmpty",
    0x69: "AverageTimeToEmpty",
    0x6A: "AverageTimeToFull",
    0x6B: "CycleCount",
    0x80: "BattPackModelLevel",
    0x81: "InternalChargeController",
    0x82: "PrimaryBatterySupport",
    0x83: "DesignCapacity",
    0x84: "SpecificationInfo",
    0x85: "ManufacturerDate",
    0x86: "SerialNumber",
    0x87: "iManufacturerName",
    0x88: "iDevicename",
    0x89: "iDeviceChemistry",
    0x8A: "ManufacturerData",
    0x8B: "Rechargeable",
    0x8C: "WarningCapacityLimit",
    0x8D: "CapacityGranularity1",
    0x8E: "CapacityGranularity2",
    0x8F: "iOEMInformation",
    0xC0: "InhibitCharge",
    0xC1: "EnablePolling",
    0xC2: "ResetToZero",
    0xD0: "ACPresent",
    0xD1: "BatteryPresent",
    0xD2: "PowerFail",
    0xD3: "AlarmInhibited",
    0xD4: "ThermistorUnderRange",
    0xD5: "ThermistorHot",
    0xD6: "ThermistorCold",
    0xD7: "ThermistorOverRange",
    0xD8: "VoltageOutOfRange",
    0xD9: "CurrentOutOfRange",
    0xDA: "CurrentNotRegulated",
    0xDB: "VoltageNotRegulated",
    0xDC: "MasterMode",
    0xF0: "ChargerSelectorSupport",
    0xF1: "ChargerSpec",
    0xF2: "Level2",
    0xF3: "Level3",
}

#: page -> {usage id -> name}; the pages every path is rendered with
STANDARD_PAGES: dict[int, dict[int, str]] = {0x84: POWER_DEVICE, 0x85: BATTERY_SYSTEM}

#: Vendor usage pages the captures show, with their owners (names: see VENDOR_TABLES).
VENDOR_PAGES: dict[int, str] = {
    0xFF86: "APC",
    0xFF01: "CyberPower",
    0xFFFF: "Eaton/MGE, Tripp Lite, Minuteman (Delta)",
    0xFF00: "vendor-defined (Megatec/Q1 USB bridges such as 0665:5161)",
}

#: 32-bit usage -> name, for the vendor usages the captures name (Eaton 3S 700 through NUT's mge
#: subdriver). Not applied by default.
MGE_USAGES: dict[int, str] = {
    0xFFFF00E9: "Status",
    0xFFFF00F0: "iModel",
    0xFFFF0094: "Mode",
}

VENDOR_TABLES: dict[str, dict[int, str]] = {"mge": MGE_USAGES}


def hex_usage(usage: int) -> str:
    """How NUT prints a usage it has no name for: ``ff860060``."""
    return f"{usage & 0xFFFFFFFF:08x}"


def usage_name(usage: int, extra: Mapping[int, str] | None = None) -> str:
    """The name NUT gives one path node."""
    if extra is not None and usage in extra:
        return extra[usage]
    if usage & 0xFFFF0000 == INDEX_NODE:
        return f"[{usage & 0xFFFF}]"
    page = STANDARD_PAGES.get(usage >> 16)
    if page is not None:
        name = page.get(usage & 0xFFFF)
        if name is not None:
            return name
    return hex_usage(usage)


def path_string(usage_path: Iterable[int], extra: Mapping[int, str] | None = None) -> str:
    """A dotted path from path nodes."""
    return ".".join(usage_name(u, extra) for u in usage_path)


def nut_path(f: Field, extra: Mapping[int, str] | None = None) -> str:
    """A field's dotted NUT path, e.g. ``UPS.PowerSummary.PresentStatus.ACPresent``."""
    return path_string(f.usage_path, extra)


def parse_path(text: str, extra: Mapping[int, str] | None = None) -> tuple[int, ...]:
    """The path nodes of a dotted NUT path; raises ValueError for a node with no known name.

    A name both pages define (VoltageOutOfRange) resolves to the Power Device page; compare rendered
    paths (``nut_path``) rather than parsed ones when that matters."""
    reverse: dict[str, int] = {}
    for page, table in STANDARD_PAGES.items():
        for uid, name in table.items():
            reverse.setdefault(name, (page << 16) | uid)
    if extra:
        for usage, name in extra.items():
            reverse[name] = usage
    nodes: list[int] = []
    for part in text.split("."):
        if part in reverse:
            nodes.append(reverse[part])
        elif part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            nodes.append(INDEX_NODE | int(part[1:-1]))
        elif len(part) == 8 and all(c in "0123456789abcdefABCDEF" for c in part):
            nodes.append(int(part, 16))
        else:
            raise ValueError(f"unknown usage name {part!r} in path {text!r}")
    return tuple(nodes)
