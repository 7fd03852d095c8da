"""The driver socket protocol (NUT-FACTS §3.2): the driver side, sans-IO, and a small blocking client.

:class:`SockProtocol` serves a :class:`~nutlite.drivers.framework.core.DriverState`: lines go in as bytes,
answers and broadcasts come out through each :class:`SockClient`'s ``write``, and instant commands /
SET requests come back as :class:`Request` objects for the driver to execute. :class:`SocketSession`
is the client used by ``upsdrvctl`` and ``driver -k``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nutlite.parseconf import Tokenizer

if TYPE_CHECKING:
    from nutlite.drivers.framework.core import DriverState

log = logging.getLogger("nutlite.driver")


class SockClient:
    """One connection to the driver socket (upsd, upsdrvctl, a test…).

    ``write`` takes bytes to send; ``close`` (optional) is called after LOGOUT.
    """

    _ids = 0

    def __init__(self, write: Callable[[bytes], None], close: Callable[[], None] | None = None,
                 name: str | None = None) -> None:
        SockClient._ids += 1
        self.write = write
        self.close = close
        self.name = name or f"client {SockClient._ids}"
        self.tokenizer = Tokenizer()
        self.broadcast = True  # receives every state change unless it said NOBROADCAST
        self.closing = False

    def send_lines(self, lines: Iterable[str]) -> None:
        data = "".join(line + "\n" for line in lines)
        if data:
            self.write(data.encode("ascii", "replace"))

    def send(self, line: str) -> None:
        self.write((line + "\n").encode("ascii", "replace"))


@dataclass
class Request:
    """An INSTCMD or SET from a socket client, to be executed by the driver."""

    client: SockClient
    kind: str  # "INSTCMD" or "SET"
    name: str  # command or variable
    value: str | None = None  # SET value, or the INSTCMD parameter
    tracking: str | None = None


class SockProtocol:
    """The driver side of the driver socket protocol over a :class:`DriverState`.

    Every change of the state is broadcast to the clients that did not ask for NOBROADCAST. Requests
    that need the driver come back from :meth:`feed`; once executed, :meth:`finish` sends the
    ``TRACKING`` answer when the client asked for one. Bad input is logged and skipped.
    """

    def __init__(self, state: DriverState, pid: int | None = None) -> None:
        self.state = state
        self.pid = os.getpid() if pid is None else pid
        self.clients: list[SockClient] = []
        self._batch_depth = 0
        self._held: list[str] = []
        state.on_change = self.broadcast

    def add_client(self, client: SockClient) -> None:
        self.clients.append(client)

    def remove_client(self, client: SockClient) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)

    def broadcast(self, line: str) -> None:
        """Send one state change to every listening client (held back while a :meth:`batch` is open)."""
        if self._batch_depth:
            self._held.append(line)
            return
        self._send_all((line + "\n").encode("ascii", "replace"))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The state changes made inside go to each client in one write when the (outermost) batch
        ends, not one write each: upsd applies what one read brings before it answers its own clients,
        so they see all the changes of a poll or none of them."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if not self._batch_depth and self._held:
                lines, self._held = self._held, []
                self._send_all("".join(line + "\n" for line in lines).encode("ascii", "replace"))

    def _send_all(self, data: bytes) -> None:
        for c in list(self.clients):
            if c.broadcast and not c.closing:
                try:
                    c.write(data)
                except Exception as exc:  # a broken client must not stop the others
                    log.debug("dropping %s: %s", c.name, exc)
                    self.remove_client(c)

    def feed(self, client: SockClient, data: bytes) -> list[Request]:
        """Take bytes from ``client``; answer what can be answered; return the driver's work."""
        out: list[Request] = []
        for line in client.tokenizer.feed(data.decode("latin-1")):
            if client.closing:
                break
            if line.error:
                log.warning("%s: line rejected (%s)", client.name, line.error)
                continue
            if not line.words:
                continue
            req = self.handle(client, line.words)
            if req is not None:
                out.append(req)
        return out

    def handle(self, client: SockClient, words: list[str]) -> Request | None:
        """One request line, already split into words."""
        cmd = words[0].upper()
        n = len(words)
        if cmd == "DUMPALL":
            client.send_lines(self.state.dump_lines())
        elif cmd == "PING":
            client.send("PONG")
        elif cmd == "INSTCMD":
            if n == 2:
                return Request(client, "INSTCMD", words[1])
            if n == 3:
                return Request(client, "INSTCMD", words[1], words[2])
            if n == 4 and words[2].upper() == "TRACKING":
                return Request(client, "INSTCMD", words[1], None, words[3])
            if n == 5 and words[3].upper() == "TRACKING":
                return Request(client, "INSTCMD", words[1], words[2], words[4])
            self._malformed(client, words, "INSTCMD <command> [<parameter>] [TRACKING <id>]")
        elif cmd == "SET":
            if n == 3:
                return Request(client, "SET", words[1], words[2])
            if n == 5 and words[3].upper() == "TRACKING":
                return Request(client, "SET", words[1], words[2], words[4])
            self._malformed(client, words, 'SET <variable> "<value>" [TRACKING <id>]')
        elif cmd == "NOBROADCAST" and n == 1:
            client.broadcast = False
        elif cmd == "BROADCAST" and n <= 2:
            try:
                client.broadcast = int(words[1]) > 0 if n == 2 else True
            except ValueError:
                self._malformed(client, words, "BROADCAST [<n>]")
        elif cmd == "GETPID" and n == 1:
            client.send(f"PID {self.pid}")
        elif cmd == "LOGOUT" and n == 1:
            client.send("OK Goodbye")
            client.closing = True
            if client.close is not None:
                client.close()
        elif cmd in ("DUMPVALUE", "DUMPSTATUS"):
            name = "ups.status" if cmd == "DUMPSTATUS" else (words[1] if n == 2 else None)
            if name is None or (cmd == "DUMPSTATUS" and n != 1):
                self._malformed(client, words, "DUMPVALUE <variable> or DUMPSTATUS")
                return None
            v = self.state.get(name)
            lines = ["DATASTALE"] if self.state.stale else []
            if v is not None:
                lines.extend(self.state.var_lines(v))
            if not self.state.stale:
                lines.append("DATAOK")
            lines.append("DUMPDONE")
            client.send_lines(lines)
        else:
            log.warning("%s: unknown command on the socket: %s", client.name, " ".join(words)[:200])
        return None

    def _malformed(self, client: SockClient, words: list[str], expected: str) -> None:
        log.warning("%s: malformed request %r (expected %s)", client.name, " ".join(words)[:200], expected)

    def finish(self, req: Request, result: int) -> None:
        """Report the result of an executed request to the client that asked (if it asked)."""
        if req.tracking is not None and not req.client.closing and req.client in self.clients:
            try:
                req.client.send(f"TRACKING {req.tracking} {int(result)}")
            except Exception as exc:
                log.debug("cannot answer %s: %s", req.client.name, exc)


# --------------------------------------------------------------------------------------------------
# A small synchronous client of a driver socket (upsdrvctl, driver -k)


class SocketSession:
    """Blocking line client of a driver socket."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(os.fspath(path))
        except OSError:
            self.sock.close()
            raise
        self._buf = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("ascii", "replace") + b"\n")

    def read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the driver")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the driver closed the connection")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("latin-1")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if predicate(line):
                return line

    def ping(self, timeout: float = 3.0) -> bool:
        try:
            self.send("PING")
            self.wait_for(lambda s: s == "PONG", timeout)
            return True
        except (OSError, TimeoutError, ConnectionError):
            return False

    def tracked(self, line: str, timeout: float) -> int:
        """Send ``line`` with a TRACKING id and return the driver's result code."""
        tid = f"nutlite-{os.getpid()}-{time.monotonic_ns()}"
        self.send(f"{line} TRACKING {tid}")
        reply = self.wait_for(lambda s: s.startswith(f"TRACKING {tid} "), timeout)
        return int(reply.split()[-1])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> SocketSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ping_socket(path: str | os.PathLike[str], timeout: float = 3.0) -> bool:
    """True if a driver answers PING on ``path``."""
    try:
        with SocketSession(path, timeout) as s:
            s.send("NOBROADCAST")
            return s.ping(timeout)
    except OSError:
        return False


def killpower_via_socket(path: str | os.PathLike[str], timeout: float = 30.0) -> int | None:
    """Ask the running driver to run its shutdown routine; its result code, or None if unreachable."""
    try:
        with SocketSession(path, 3.0) as s:
            s.send("NOBROADCAST")
            if not s.ping(3.0):
                return None
            s.tracked('SET driver.flag.allow_killpower "1"', 5.0)
            return s.tracked("INSTCMD driver.killpower", timeout)
    except (OSError, TimeoutError, ConnectionError, ValueError):
        return None
