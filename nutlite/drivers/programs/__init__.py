"""The drivers themselves, one module per NUT driver program (dummy_ups.py is NUT's dummy-ups,
usbhid_ups.py is usbhid-ups, ...). :data:`nutlite.drivers.main.DRIVERS` maps each NUT name to its
class here; a module is imported only when its driver runs."""
