"""The driver framework every driver is built on: the state a driver publishes and its hooks
(core.py), its settings from ups.conf and ``-x`` (drvconfig.py), the driver-socket protocol upsd
speaks to it (sockproto.py) and the asyncio shell that runs it (runner.py). The command line and the
registry of NUT driver names are one level up, in :mod:`nutlite.drivers.main`."""
