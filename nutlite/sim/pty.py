"""Serving a simulated serial UPS on a pseudo-terminal (shared by the Q1 and APC simulators).

:class:`PtyServer` owns the pty pair and a thread that reads what the driver writes to the slave side,
hands it to :meth:`PtyServer.feed` and writes the reply back. :meth:`PtyServer.push` sends bytes
nobody asked for (an APC UPS's alert characters). The slave device is what a driver opens; ``link``
makes a stable symlink to it that survives :meth:`PtyServer.unplug` / :meth:`PtyServer.replug` (a
USB-serial adapter that is pulled out and plugged in again: the pty number may change, the link is
updated).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import Any


class PtyServer:
    """A device model served on a pseudo-terminal from a thread. Subclasses implement :meth:`feed`."""

    thread_name = "ptysim"

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self.master: int | None = None
        self.slave: int | None = None
        self.path: str = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self.received = bytearray()

    # -- the device
    def feed(self, data: bytes) -> bytes:
        """Bytes from the driver in, reply bytes out."""
        raise NotImplementedError

    def idle(self) -> None:
        """Called about ten times a second from the serving thread (timers of the model)."""

    def push(self, data: bytes) -> bool:
        """Send unsolicited bytes to the driver; False if the pty is not there (unplugged)."""
        with self._write_lock:
            if self.master is None:
                return False
            try:
                os.write(self.master, data)
            except OSError:
                return False
        return True

    # -- life cycle
    def start(self) -> Any:
        self._open()
        return self

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        self.path = os.ttyname(slave)
        os.chmod(self.path, 0o660)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path)
            tmp.replace(self.link)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"{self.thread_name} {self.path}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self.master is not None
        master = self.master
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([master], [], [], 0.1)
            except (OSError, ValueError):
                return
            self.idle()
            if not r:
                continue
            try:
                data = os.read(master, 1024)
            except OSError:  # EIO: no process has the slave open right now
                time.sleep(0.05)
                continue
            if not data:
                time.sleep(0.05)
                continue
            self.received += data
            reply = self.feed(data)
            if reply:
                self.push(reply)

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        with self._write_lock:
            for fd in (self.master, self.slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.master = self.slave = None

    def unplug(self) -> None:
        """The adapter disappears: the pty is closed and the link removed."""
        self._close()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def replug(self) -> None:
        """The adapter comes back (as a new pty; the link points at it)."""
        self._open()

    def stop(self) -> None:
        self.unplug()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
