"""SNMP support: value formatting, MIB mapping format, the polling engine, detection, the pysnmp client."""
