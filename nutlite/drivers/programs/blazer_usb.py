"""blazer_usb: NUT's older driver for Megatec "Q1" UPSes behind a USB-serial bridge (NUT-FACTS §8.4).

blazer_ser's ways (nutlite.drivers.programs.blazer_ser: no protocol probe, ``ups.mfr``/``ups.model``,
``ondelay`` in minutes, read-only delays) over the USB transports of nutlite.drivers.transports.q1usb, which
``subdriver`` picks among blazer_usb's four (cypress, phoenix, ippon, krauler; it then needs
``vendorid`` and ``productid``) or the device's ids do. Matching settings and reconnection as
nutdrv_qx over USB.
"""

from __future__ import annotations

from typing import ClassVar

from nutlite.drivers.framework.drvconfig import Option
from nutlite.drivers.programs.blazer_ser import BlazerSer
from nutlite.drivers.programs.nutdrv_qx import USB_OPTIONS
from nutlite.drivers.transports import q1usb


class BlazerUsb(BlazerSer):
    name: ClassVar[str] = "blazer_usb"
    description: ClassVar[str] = "Megatec/Q1 protocol USB driver"
    version: ClassVar[str] = "0.14"
    options: ClassVar[tuple[Option, ...]] = (
        *(o for o in BlazerSer.options if o.name != "cablepower"),
        Option("subdriver", "serial-over-USB subdriver: cypress, phoenix, ippon, krauler"),
        *(o for o in USB_OPTIONS if o.name != "waitbeforereconnect"),
        Option("waitbeforereconnect", "seconds to wait before looking for a lost USB device again"),
    )
    usb_only: ClassVar[bool] = True
    usb_capable: ClassVar[bool] = True
    usb_subdrivers: ClassVar[dict[str, str]] = q1usb.BLAZER_USB_SUBDRIVERS
    usb_auto: ClassVar[dict[tuple[int, int], str]] = q1usb.BLAZER_USB_AUTO
    usb_min_lengths: ClassVar[dict[str, int]] = {"F": 22, "I": 39}
