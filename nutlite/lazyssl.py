"""ssl only where TLS is used.

asyncio imports ssl when it is imported itself, although nutlite never uses asyncio's TLS (upsd runs
TLS over memory buffers, the client wraps a plain socket). In each daemon that costs about 1.3 MB of
heap and the relocated pages of libssl and libcrypto. :func:`keep_out` (called by nutlite's entry
point before a daemon is imported) makes ``import ssl`` fail quietly for asyncio and the standard
library, which all handle a Python without ssl; :func:`load` imports it for real when TLS is
configured.
"""

from __future__ import annotations

import sys
from types import ModuleType


def keep_out() -> None:
    """From now on ``import ssl`` raises ImportError, until :func:`load` is called."""
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


def load() -> ModuleType:
    """The ssl module, imported now if :func:`keep_out` kept it out."""
    if "ssl" in sys.modules and sys.modules["ssl"] is None:
        del sys.modules["ssl"]
    import ssl

    return ssl
