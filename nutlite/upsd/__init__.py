"""nutlite's upsd: the NUT network server (protocol core in :mod:`.core`, asyncio shell in :mod:`.main`)."""
