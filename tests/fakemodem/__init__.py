"""Serial ports with fake modem-control lines, for contact-closure drivers (genericups).

A pseudo-terminal stands in for the serial port; ``fakemodem.c``, preloaded into the driver process
(``LD_PRELOAD``), answers the modem-line ioctls on it from a state file and logs every line the driver
sets. The same shim serves Debian's ``/lib/nut/genericups`` and nutlite's driver (pyserial's calls go
through libc's ``ioctl``), so everything above libc is the real code.

:func:`build` compiles the shim; :class:`FakeModem` is one port: ``link`` (the pty, for ``port =``),
:meth:`set_inputs` (what the UPS signals), :meth:`events` (what the driver did), :meth:`env` (for the
driver process).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "fakemodem.c"
INPUT_LINES = ("CTS", "DCD", "RNG", "DSR")


def build(outdir: Path) -> Path | None:
    """Compile the shim into ``outdir``; None if there is no C compiler. CalledProcessError on failure."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    out = outdir / "fakemodem.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(out), str(SOURCE), "-ldl"],
                   check=True, capture_output=True, text=True)
    return out


@dataclass(frozen=True)
class Event:
    """One log line: ``kind`` is GET, SET, BREAK, SENDBREAK, CLOSE, EXIT or FAIL."""

    time: float
    pid: int
    kind: str
    args: tuple[str, ...]

    @property
    def outputs(self) -> dict[str, int]:
        """For SET: the output lines after the call, e.g. ``{"DTR": 1, "RTS": 0, "ST": 0}``."""
        return {k: int(v) for k, _, v in (a.partition("=") for a in self.args if "=" in a)}

    @property
    def raised(self) -> frozenset[str]:
        """For SET: the output lines high after the call."""
        return frozenset(k for k, v in self.outputs.items() if v)

    @property
    def inputs(self) -> frozenset[str]:
        """For GET: the input lines read high."""
        return frozenset(a for a in self.args[1:] if a in INPUT_LINES)


class FakeModem:
    """A pty with fake modem lines. ``state`` may be shared by several ports (same UPS signals)."""

    def __init__(self, base: Path, name: str, lib: Path, state: Path | None = None) -> None:
        self.name = name
        self.lib = lib
        self.master, self.slave = os.openpty()
        self.link = base / f"tty-{name}"
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))
        self.state = state or base / f"{name}.lines"
        self.log = base / f"{name}.modem.log"
        if state is None:
            self.set_inputs()

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": str(self.lib), "FAKEMODEM_STATE": str(self.state), "FAKEMODEM_LOG": str(self.log)}

    def set_inputs(self, *lines: str) -> float:
        """Make the UPS raise exactly these input lines (atomically); returns the time of the change."""
        return write_inputs(self.state, *lines)

    def events(self, kinds: tuple[str, ...] = ()) -> list[Event]:
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            ev = Event(float(parts[0]), int(parts[1]), parts[2], tuple(parts[3:]))
            if not kinds or ev.kind in kinds:
                out.append(ev)
        return out

    def polled_since(self, t: float, count: int = 1) -> bool:
        return sum(1 for e in self.events(("GET",)) if e.time > t) >= count

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()


def write_inputs(path: Path, *lines: str) -> float:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(" ".join(lines) + "\n")
    os.replace(tmp, path)
    return time.time()
