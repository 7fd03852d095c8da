"""``nutlite appliance setup``: the boot-time configuration step of the nutlite SD-card image.

At every boot, before the drivers and daemons start, it installs the NUT files a user put in the
boot partition's ``nutlite/`` folder into ``/etc/nut`` (checked first, the last good copy kept when one
is broken), fills in what is missing (the local upsmon's generated password, an autodetected
``ups.conf``), sets the host name and SSH access, and keeps what must survive a reboot on the data
partition. See docs/appliance.md.
"""
