"""Command-line tools run as ``nutlite <tool>`` (NUT's ``upsc``, ``upscmd``, ``upsrw``, ``upslog`` ...)."""
