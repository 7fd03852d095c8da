"""HID report descriptors and reports for USB HID Power Devices (usbhid-ups), without any I/O."""

from .descriptor import (
    Collection,
    Descriptor,
    Field,
    ReportType,
    is_power_device,
    parse_descriptor,
    parse_hex,
)
from .errors import HidError
from .report import FieldValue, decode_field, decode_report, encode_report, nut_exponent
from .usages import nut_path, usage_name

__all__ = [
    "Collection",
    "Descriptor",
    "Field",
    "FieldValue",
    "HidError",
    "ReportType",
    "decode_field",
    "decode_report",
    "encode_report",
    "is_power_device",
    "nut_exponent",
    "nut_path",
    "parse_descriptor",
    "parse_hex",
    "usage_name",
]
