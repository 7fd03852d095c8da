"""blazer_ser: NUT's older driver for Megatec "Q1" serial UPSes (NUT-FACTS §8.4).

The same protocol and port handling as :mod:`nutlite.drivers.programs.nutdrv_qx`, with blazer_ser's ways as
Debian's 2.8.0 shows them: no protocol probe (``Q1``, then ``F`` and ``I`` unless ``norating`` /
``novendor``; every poll a full update), ``ups.mfr``/``ups.model`` (mirrored to ``device.*``), ``ondelay`` in *minutes*
(0..9999, default 3, sent as ``R<mmmm>`` as given), read-only ``ups.delay.*``, and the "UPS failed"
status bit shown as ``ALARM`` with ``ups.alarm`` "UPS selftest failed!".
"""

from __future__ import annotations

from typing import ClassVar

from nutlite.drivers.framework.drvconfig import Option
from nutlite.drivers.programs.nutdrv_qx import COMMON_OPTIONS, QxDriver


class BlazerSer(QxDriver):
    name: ClassVar[str] = "blazer_ser"
    description: ClassVar[str] = "Megatec/Q1 protocol serial driver"
    version: ClassVar[str] = "1.58"
    options: ClassVar[tuple[Option, ...]] = (
        *(o if o.name != "ondelay" else Option("ondelay", "delay before UPS startup (minutes, default 3)")
          for o in COMMON_OPTIONS),
        Option("norating", "do not read the rating information from the UPS", flag=True),
        Option("novendor", "do not read the vendor information from the UPS", flag=True),
    )
    ondelay_minutes: ClassVar[bool] = True
    ondelay_max: ClassVar[int] = 9999
    publish_vendor_as_device: ClassVar[bool] = False
    static_type: ClassVar[bool] = False
    writable_delays: ClassVar[bool] = False
    probe_protocols: ClassVar[bool] = False
    runtime_start_from_nominal: ClassVar[bool] = True
    usb_capable: ClassVar[bool] = False  # port = auto is a file name here, as in NUT's blazer_ser

    def _restart_minutes(self, stayoff: bool) -> int | None:
        if stayoff:
            return 0
        return self.ondelay if self.ondelay > 0 else None
