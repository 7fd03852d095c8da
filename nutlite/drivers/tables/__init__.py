"""Device tables, as data: usbhid-ups's subdrivers (hidups/) and genericups's contact-closure cable
types (genericups_types.py); later SNMP MIB mappings. Adding a UPS model means adding rows here."""
