"""ssl only where TLS is used.

asyncio imports ssl when it is imported itself, although nutlite never uses asyncio's TLS (upsd runs
TLS over memory buffers, the client wraps a plain socket). In each daemon that costs about 1.3 MB of
heap and the relocated pages of libssl and libcrypto. :func:`keep_out` (called by nutlite's entry
point before a daemon is imported) makes ``import ssl`` fail quietly for asyncio and the standard
library, which all handle a Python without ssl; :func:`load` imports it for real when TLS is
configured.

:func:`defer` does the same for a module the daemons may need, but rarely (``inspect``): it is
imported when one of its attributes is first used.
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



class _Deferred(ModuleType):
    """Stands in for a module until one of its attributes is used (see :func:`defer`)."""

    def __getattr__(self, attr: str) -> object:  # (only for what the stand-in lacks: not __spec__)
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        __import__(name)
        real = sys.modules[name]
        self.__dict__.update(real.__dict__)  # for those who hold the stand-in
        return getattr(real, attr)


def defer(name: str) -> None:
    """Import the standard-library module ``name`` only when one of its attributes is first used:
    until then ``import name`` gives a stand-in. For modules that asyncio and dataclasses import at
    start but use only on paths the daemons do not take (``inspect``: debug mode, dataclasses
    without a docstring). (importlib's LazyLoader cannot serve: ``import`` itself reads the module's
    ``__spec__``, which makes it load.)"""
    if name in sys.modules:
        return
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec(name)
    if spec is None:
        return
    stand_in = _Deferred(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in
