"""The daemons start without the standard-library modules they never use: ssl (asyncio imports it)
and inspect (asyncio and dataclasses import it). Each of those costs the appliance's stack memory
(docs/image.md); a dataclass without a docstring, or a call to loop.add_signal_handler, brings
inspect back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What each daemon imports on its way to serving (cli.main's prelude first, as the daemons start).
DAEMONS = {
    "upsd with the exporter": ["nutlite.upsd.main", "nutlite.upsd.clients", "nutlite.exporter.main"],
    "upsmon": ["nutlite.upsmon.main", "nutlite.upsmon.monitor"],
    "a serial driver": ["nutlite.drivers.framework.runner", "nutlite.drivers.programs.nutdrv_qx",
                        "nutlite.drivers.programs.apcsmart"],
    "usbhid-ups": ["nutlite.drivers.framework.runner", "nutlite.drivers.programs.usbhid_ups"],
}

PROBE = """
import sys
from nutlite import lazyssl
lazyssl.keep_out()
lazyssl.defer("inspect")
import asyncio
for name in sys.argv[1:]:
    __import__(name)
loaded = [m for m in ("ssl", "inspect") if sys.modules.get(m) is not None
          and not isinstance(sys.modules[m], lazyssl._Deferred)]
print(" ".join(loaded))
"""


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_daemon_imports_leave_ssl_and_inspect_out(daemon: str) -> None:
    r = subprocess.run([sys.executable, "-I", "-c", PROBE, *DAEMONS[daemon]], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [], f"{daemon} imports {r.stdout.strip()} at start"


def test_a_deferred_module_loads_on_first_use() -> None:
    r = subprocess.run([sys.executable, "-I", "-c", """
import sys
from nutlite import lazyssl
lazyssl.defer("inspect")
import inspect
assert isinstance(sys.modules["inspect"], lazyssl._Deferred)
print(inspect.signature(lambda a, b=2: None))
assert not isinstance(sys.modules["inspect"], lazyssl._Deferred)
from inspect import isfunction
print(isfunction(len), inspect.isfunction is isfunction)
"""], capture_output=True, text=True, timeout=60,
        cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["(a, b=2)", "False True"]
