"""Serial plumbing for the serial drivers: open (2400 8N1 by default), lock, ask, reopen.

* **Locking**, so two drivers cannot fight over one port (NUT FAQ #32): an exclusive ``flock`` on the
  open device (what Debian's NUT drivers take too, so a nutlite and a NUT driver exclude each other)
  plus a UUCP-style ``LCK..<name>`` file in ``/run/lock`` (or ``/var/lock``; ``$NUTLITE_LOCKDIR``
  instead if set) when that directory is writable; a lock file left by a dead process is taken over. ``nolock`` skips both.
* **Permissions**: a port that cannot be opened for lack of rights gives the message of NUT FAQ #4 --
  who the driver runs as, who owns the port and its mode.
* **Reopen**: when the adapter disappears (USB-serial unplugged), the port is closed; every later
  :meth:`SerialPort.ask` tries to open it again and says so in the log once it worked.
* **Timeouts and garbage** come back as :class:`PortError` / ``None`` replies; the driver marks its data
  stale and logs what arrived (:func:`show`), once per fault (:class:`SerialDriver`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sys
import termios
import time
from pathlib import Path
from typing import Any

from nutlite.daemon import own_group, path_error
from nutlite.drivers.framework.core import Driver, DriverError, DriverState
from nutlite.drivers.framework.drvconfig import DriverConfig

log = logging.getLogger("nutlite.driver.serial")

LOCK_DIRS = (Path("/run/lock"), Path("/var/lock"))
LOCKDIR_ENV = "NUTLITE_LOCKDIR"  # overrides LOCK_DIRS (tests); set but empty = no lock files


def lock_dirs() -> tuple[Path, ...]:
    env = os.environ.get(LOCKDIR_ENV)
    if env is None:
        return LOCK_DIRS
    return (Path(env),) if env else ()


class PortError(Exception):
    """The port is gone or broken (the driver will try to reopen it)."""


def show(reply: str | bytes | None, limit: int = 60) -> str:
    """A reply as a log-friendly literal (control bytes escaped, long replies cut)."""
    if reply is None:
        return "nothing"
    if isinstance(reply, str):
        reply = reply.encode("latin-1", "replace")
    text = repr(reply[:limit])
    return text + ("…" if len(reply) > limit else "")


class SerialDriver(Driver):
    """Base of the drivers that poll a UPS on a serial port: a fault (no reply, garbage, the port gone)
    marks the data stale and is logged once, not at every poll; so is the UPS answering again."""

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        self._fault: str | None = None  # what went wrong at the last poll (None: it went well)

    def _failed(self, why: str) -> None:
        if why != self._fault:
            self.log.error("data stale: %s", why)
        self._fault = why
        self.datastale()

    def _answered(self) -> None:
        """A good poll: the data is fresh (again)."""
        if self._fault is not None:
            self.log.warning("the UPS answers again")
            self._fault = None
        self.dataok()


def permission_message(port: str, exc: OSError) -> str:
    """NUT FAQ #4's explanation for a port that cannot be opened for lack of rights."""
    return path_error(port, exc, f"Change the port name, or fix the permissions or ownership of {port} and "
                      f"try again (e.g. chgrp {own_group()} {port}; chmod 0660 {port}, or a udev rule that does "
                      "so), or set 'user = ...' in ups.conf to an account that may use it.", what="Unable to open")


def lock_file_name(port: str) -> str:
    """``LCK..ttyUSB0`` for ``/dev/ttyUSB0``; the real device name if ``port`` is a symlink."""
    real = os.path.realpath(port)
    name = real[len("/dev/"):] if real.startswith("/dev/") else os.path.basename(real)
    return "LCK.." + name.replace("/", "_")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class UucpLock:
    """A ``LCK..name`` file holding our pid (10 characters and a newline, as UUCP)."""

    def __init__(self, port: str, dirs: tuple[Path, ...] | None = None) -> None:
        self.path: Path | None = None
        dirs = lock_dirs() if dirs is None else dirs
        name = lock_file_name(port)
        for d in dirs:
            if d.is_dir() and os.access(d, os.W_OK):
                self.path = d / name
                break

    def acquire(self, port: str) -> None:
        if self.path is None:
            return
        data = f"{os.getpid():10d}\n".encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = self._holder()
                if pid is not None and _pid_alive(pid):
                    raise DriverError(f"{port} is locked by process {pid} (lock file {self.path}): another "
                                      "driver or program uses this port; stop it first") from None
                log.info("removing the stale lock file %s%s", self.path, f" (pid {pid} is gone)" if pid else "")
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            except OSError as exc:
                log.debug("no lock file %s: %s", self.path, exc)
                self.path = None
                return
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return
        raise DriverError(f"cannot take the lock file {self.path} for {port}")

    def _holder(self) -> int | None:
        assert self.path is not None
        try:
            text = self.path.read_bytes()
        except OSError:
            return None
        try:
            return int(text.split()[0]) if text.strip() else None
        except ValueError:
            return None

    def release(self) -> None:
        if self.path is None:
            return
        if self._holder() == os.getpid():
            with contextlib.suppress(OSError):
                self.path.unlink()


CABLEPOWER = {  # DTR, RTS
    "normal": (True, False),
    "reverse": (False, True),
    "both": (True, True),
    "none": (False, False),
}


class SerialPort:
    """A line-oriented serial port (blocking; the driver calls it through ``run_blocking``).

    ``ask(command)`` writes ``command + eol`` and returns the reply line (without the terminator), or
    ``None`` when nothing complete arrived within ``timeout``; :attr:`last_raw` keeps what did arrive.
    """

    def __init__(self, port: str, *, baudrate: int = 2400, timeout: float = 1.0, lock: bool = True,
                 eol: bytes = b"\r", cablepower: str = "normal") -> None:
        if cablepower not in CABLEPOWER:
            raise DriverError(f"cablepower: expected one of {', '.join(CABLEPOWER)}, got '{cablepower}'")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.lock = lock
        self.eol = eol
        self.cablepower = cablepower
        self.ser: Any = None
        self._uucp: UucpLock | None = None
        self.last_raw = b""
        self.lost = False  # the port went away and is not back yet

    # -- open / close
    def open(self) -> None:
        """Open and lock the port; DriverError with a helpful message if it cannot be used."""
        import serial  # pyserial, imported only by the serial drivers

        try:
            os.stat(self.port)
        except FileNotFoundError:
            raise PortError(f"{self.port} does not exist (is the adapter plugged in? check the 'port' setting)") from None
        except OSError as exc:  # a folder on the way that this user may not search
            raise DriverError(permission_message(self.port, exc)) from None
        uucp = UucpLock(self.port) if self.lock else None
        if uucp is not None:
            uucp.acquire(self.port)
        try:
            ser = serial.Serial()
            ser.port = self.port
            ser.baudrate = self.baudrate
            ser.bytesize = serial.EIGHTBITS
            ser.parity = serial.PARITY_NONE
            ser.stopbits = serial.STOPBITS_ONE
            ser.timeout = 0.05
            ser.write_timeout = 2.0
            ser.xonxoff = ser.rtscts = ser.dsrdtr = False
            dtr, rts = CABLEPOWER[self.cablepower]
            ser.dtr, ser.rts = dtr, rts
            try:
                ser.open()
            except serial.SerialException as exc:
                err = getattr(exc, "errno", None)
                if err in (errno.EACCES, errno.EPERM):
                    raise DriverError(permission_message(self.port, OSError(err, os.strerror(err)))) from None
                if err in (errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO):
                    raise PortError(f"cannot open {self.port}: {exc}") from None
                raise DriverError(f"cannot open {self.port}: {exc}") from None
            if self.lock:
                try:
                    fcntl.flock(ser.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    ser.close()
                    raise DriverError(
                        f"{self.port} is locked by another process (another driver for this UPS, or a NUT "
                        "driver, is using it; stop it first, see NUT FAQ #32)") from None
        except BaseException:
            if uucp is not None:
                uucp.release()
            raise
        self.ser = ser
        self._uucp = uucp
        self.lost = False

    def close(self) -> None:
        if self.ser is not None:
            with contextlib.suppress(Exception):
                self.ser.close()
            self.ser = None
        if self._uucp is not None:
            self._uucp.release()
            self._uucp = None

    def _lose(self, why: str) -> None:
        if not self.lost:
            log.error("lost %s (%s): will try to reopen it at every poll", self.port, why)
        self.lost = True
        self.close()

    def ensure_open(self) -> None:
        """Reopen a port that went away; PortError while it is still missing."""
        if self.ser is not None:
            return
        was_lost = self.lost
        self.open()
        if was_lost:
            log.warning("reopened %s", self.port)

    # -- talk
    def ask(self, command: str, timeout: float | None = None, expect_reply: bool = True) -> str | None:
        """Send a command; the reply line (None on timeout). PortError if the port is gone."""
        import serial

        try:
            self.ensure_open()
        except PortError:
            self.lost = True
            raise
        ser = self.ser
        try:
            ser.reset_input_buffer()
            ser.write(command.encode("latin-1") + self.eol)
            ser.flush()
            if not expect_reply:
                return None
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            buf = b""
            while self.eol not in buf:
                if time.monotonic() > deadline:
                    self.last_raw = buf
                    return None
                chunk = ser.read(64)
                if chunk:
                    buf += chunk
                elif not os.path.exists(self.port):
                    raise OSError(errno.ENODEV, "device removed")
        except (serial.SerialException, OSError, termios.error) as exc:
            self._lose(str(exc))
            raise PortError(f"{self.port}: {exc}") from None
        line, _, _rest = buf.partition(self.eol)
        self.last_raw = line + self.eol
        return line.decode("latin-1")

    def send(self, command: str) -> None:
        """Send a command that gets no reply."""
        self.ask(command, expect_reply=False)

    # -- modem-control lines (contact-closure UPSes: genericups)
    def _modem_call(self, what: str, fn: Any) -> Any:
        """Run a modem-line call on the open port: DriverError if the port has no modem lines,
        PortError (and the port closed, to be reopened) if it went away."""
        try:
            self.ensure_open()
        except PortError:
            self.lost = True
            raise
        except OSError as exc:  # pyserial lets errors of its own modem-line calls at open through
            self.lost = True
            raise PortError(f"cannot reopen {self.port}: {exc.strerror or exc}") from None
        try:
            return fn(self.ser.fileno())
        except (OSError, termios.error) as exc:
            err = exc.errno if isinstance(exc, OSError) else (exc.args[0] if exc.args else None)
            text = os.strerror(err) if isinstance(err, int) else str(exc)
            if err in (errno.ENOTTY, errno.EINVAL):
                raise DriverError(
                    f"{self.port}: cannot {what} ({text}): this port has no modem-control lines; a "
                    "contact-closure UPS needs a real RS-232 port (or an adapter) with CTS, DCD, RI and "
                    "DSR wired") from None
            self._lose(f"{what}: {text}")
            raise PortError(f"{self.port}: cannot {what}: {text}") from None

    def modem_bits(self) -> int:
        """The modem-control lines (``TIOCMGET``: termios.TIOCM_* bits, inputs and outputs)."""
        def get(fd: int) -> int:
            return int.from_bytes(fcntl.ioctl(fd, termios.TIOCMGET, bytes(4)), sys.byteorder, signed=True)

        return int(self._modem_call("read the modem-control lines", get))

    def set_modem_bits(self, bits: int) -> None:
        """Set the output lines to exactly ``bits`` (``TIOCMSET``: DTR, RTS, ST)."""
        data = int(bits).to_bytes(4, sys.byteorder, signed=True)
        self._modem_call("set the modem-control lines", lambda fd: fcntl.ioctl(fd, termios.TIOCMSET, data))

    def send_break(self, duration: int) -> None:
        """``tcsendbreak(fd, duration)`` (Linux: 0 = 0.25 s, else about ``duration``/100 s, in 0.1 s)."""
        self._modem_call("send a break", lambda fd: termios.tcsendbreak(fd, duration))

    # -- raw bytes (APC smart protocol: one-character commands, replies ending in CR LF, and alert
    #    characters the UPS sends by itself)
    def fileno(self) -> int | None:
        """The open port's file descriptor (None while it is closed or lost)."""
        return self.ser.fileno() if self.ser is not None else None

    def _raw_io(self, fn: Any) -> Any:
        import serial

        try:
            self.ensure_open()
        except PortError:
            self.lost = True
            raise
        try:
            return fn(self.ser)
        except (serial.SerialException, OSError, termios.error) as exc:
            self._lose(str(exc))
            raise PortError(f"{self.port}: {exc}") from None

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are (no end of line)."""
        def write(ser: Any) -> None:
            ser.write(data)
            ser.flush()

        self._raw_io(write)

    def read_waiting(self) -> bytes:
        """Whatever has arrived and not been read yet (does not wait)."""
        def read(ser: Any) -> bytes:
            n = ser.in_waiting
            return bytes(ser.read(n)) if n else b""

        return bytes(self._raw_io(read))

    def read_until(self, terminator: bytes, timeout: float | None = None) -> bytes | None:
        """Read up to and without ``terminator``; None if it did not come within ``timeout``
        (:attr:`last_raw` keeps what did arrive). Reads a byte at a time, so nothing after the
        terminator is taken from the port."""
        def read(ser: Any) -> bytes | None:
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            buf = b""
            while terminator not in buf:
                if time.monotonic() > deadline:
                    self.last_raw = buf
                    return None
                chunk = ser.read(1)
                if chunk:
                    buf += chunk
                elif not os.path.exists(self.port):
                    raise OSError(errno.ENODEV, "device removed")
            self.last_raw = buf
            return buf[: -len(terminator)]

        result: bytes | None = self._raw_io(read)
        return result
