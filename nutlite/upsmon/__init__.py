"""upsmon: watch UPSes through upsd and shut this system down in time (NUT's upsmon).

:mod:`nutlite.upsmon.core` is the decision logic (pure, clock-driven), :mod:`nutlite.upsmon.notify`
delivers NOTIFY events, :mod:`nutlite.upsmon.main` is the daemon and its command line.
"""
