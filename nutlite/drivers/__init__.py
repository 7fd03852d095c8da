"""UPS drivers: one process per UPS serving NUT's driver socket (see :mod:`nutlite.drivers.framework.core`).

``nutlite driver -a <ups>`` (:mod:`nutlite.drivers.main`) picks the driver named by the section's
``driver`` setting from :data:`nutlite.drivers.main.DRIVERS`; driver modules are imported lazily.

The subpackages, by role: ``framework`` (state, settings, driver socket, asyncio shell),
``transports`` (serial, Q1 over USB), ``protocols`` (Q1, APC smart, without I/O), ``tables``
(usbhid-ups subdrivers, genericups cable types) and ``programs`` (one module per NUT driver).
"""

from nutlite.drivers.framework.core import Driver, DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option
from nutlite.drivers.framework.sockproto import SockProtocol

__all__ = ["Driver", "DriverConfig", "DriverError", "DriverState", "Option", "SockProtocol", "Status"]
