"""The wires under the protocol cores: serial ports (serialport.py) and the USB-serial bridges that
carry Q1 (q1usb.py); later SNMP. The generic USB layer (device matching, reconnecting, replayed
captures) is :mod:`nutlite.usb`, shared with the tools that list and dump USB devices."""
