"""UPS drivers: one process per UPS serving NUT's driver socket (see :mod:`nutlite.drivers.core`).

``nutlite driver -a <ups>`` (:mod:`nutlite.drivers.main`) picks the driver named by the section's
``driver`` setting from :data:`nutlite.drivers.main.DRIVERS`; driver modules are imported lazily.
"""

from nutlite.drivers.core import Driver, DriverError, DriverState, Status
from nutlite.drivers.drvconfig import DriverConfig, Option
from nutlite.drivers.sockproto import SockProtocol

__all__ = ["Driver", "DriverConfig", "DriverError", "DriverState", "Option", "SockProtocol", "Status"]
