"""USB for nutlite's USB drivers (usbhid-ups, nutdrv_qx/blazer_usb over USB).

match.py and reconnect.py are sans-IO (which device a ups.conf section means; when to look for a lost
device again); errors.py holds the exceptions and their explanations; transport.py is the pyusb
layer (import it explicitly: it loads pyusb on first use).
"""

from .errors import (
    DeviceBusy,
    Disconnected,
    NoBackend,
    NoMatchingDevice,
    PermissionDenied,
    Stalled,
    UsbError,
    UsbTimeout,
)
from .match import SETTINGS, UsbConfigError, UsbDeviceInfo, UsbMatcher
from .reconnect import Link, ReconnectPolicy, Transition

__all__ = [
    "SETTINGS",
    "DeviceBusy",
    "Disconnected",
    "Link",
    "NoBackend",
    "NoMatchingDevice",
    "PermissionDenied",
    "ReconnectPolicy",
    "Stalled",
    "Transition",
    "UsbConfigError",
    "UsbDeviceInfo",
    "UsbError",
    "UsbMatcher",
    "UsbTimeout",
]
