"""UPS protocol cores without I/O: Megatec Q1 (q1.py) and APC smart (apc.py). They take reply lines
and give commands and NUT variables; a driver in :mod:`nutlite.drivers.programs` does the I/O. The
HID layer is :mod:`nutlite.hid`, a sans-IO library also used by ``nutlite hiddump``."""
