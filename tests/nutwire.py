"""Test doubles at the wire level, below NutEnv: a raw NUT network-protocol client (`NutConnection`)
and `FakeDriver`, an in-process driver-socket server with scripted state (it gives both upsds the same
ENUM/RANGE/STRING:n variables, which dummy-ups cannot declare); plus NUT's quoting for test files."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def nut_quote(value: str) -> str:
    """Quote a value for a NUT config file or protocol line (pconf_encode inside double quotes)."""
    return '"' + re.sub(r'([\\"#])', r"\\\1", value) + '"'


def nut_split(line: str) -> list[str]:
    """Split one line the way NUT's parseconf does (enough for test use: quotes, backslash, '#', '=')."""
    words: list[str] = []
    cur: list[str] | None = None
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur = (cur or []) + [line[i + 1]]
            i += 2
            continue
        if ch == '"' and cur is None:
            cur = []
            i += 1
            while i < len(line) and line[i] != '"':
                if line[i] == "\\" and i + 1 < len(line):
                    i += 1
                cur.append(line[i])
                i += 1
            words.append("".join(cur))
            cur = None
            i += 1
            continue
        if ch == "#":
            break
        if ch == "=":
            if cur is not None:
                words.append("".join(cur))
                cur = None
            words.append("=")
        elif ch.isspace():
            if cur is not None:
                words.append("".join(cur))
                cur = None
        else:
            cur = (cur or []) + [ch]
        i += 1
    if cur is not None:
        words.append("".join(cur))
    return words


# --------------------------------------------------------------------------------------------------------
# Raw line-protocol client


class ConnectionClosed(EOFError):
    """The server closed the connection."""


class NutConnection:
    """A raw NUT network-protocol connection: send lines, read reply lines and LIST blocks."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        self.eof = False

    # -- sending
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, line: str) -> None:
        """Send one request line (a newline is appended)."""
        self.send_raw(line.encode("latin-1") + b"\n")

    # -- receiving
    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for data from upsd")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("timed out waiting for data from upsd") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise ConnectionClosed("upsd closed the connection")
        self._buf += data

    def read_line_bytes(self, timeout: float | None = None) -> bytes:
        """One reply line as bytes, without its ``\\n``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._buf:
            if self.eof:
                raise ConnectionClosed("upsd closed the connection")
            self._fill(deadline)
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def read_line(self, timeout: float | None = None) -> str:
        """One reply line (latin-1 decoded, without ``\\n``). TimeoutError / ConnectionClosed."""
        return self.read_line_bytes(timeout).decode("latin-1")

    def read_list(self, timeout: float | None = None) -> list[str]:
        """A LIST reply: ``BEGIN LIST ...`` through ``END LIST ...``, or the single ERR line sent instead."""
        first = self.read_line(timeout)
        if not first.startswith("BEGIN LIST"):
            return [first]
        lines = [first]
        end = "END" + first[len("BEGIN") :]
        while True:
            line = self.read_line(timeout)
            lines.append(line)
            if line == end:
                return lines

    def pending(self, timeout: float = 0.2) -> bytes:
        """Whatever arrives within `timeout` (buffered data included); b'' if nothing."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            while True:
                self._fill(deadline)
        data, self._buf = self._buf, b""
        return data

    def read_until_eof(self, timeout: float | None = None) -> list[str]:
        """All remaining lines until the server closes; TimeoutError if it does not."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with contextlib.suppress(ConnectionClosed):
            while not self.eof:
                self._fill(deadline)
        data, self._buf = self._buf, b""
        lines = data.decode("latin-1").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines

    def is_closed(self, timeout: float = 2.0) -> bool:
        """True if the server closes the connection within `timeout` (data received meanwhile is kept)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False

    # -- synchronisation
    _marker = 0
    SYNC_RE = re.compile(r'^DESC \S+ nutenv\.sync\.(\d+) "')

    def sync(self, ups: str, what: str = "", step_timeout: float = 0.4, tries: int = 8) -> list[str]:
        """Return every line the server sends before it answers a marker request.

        A request that upsd rejects with a parse error gets no reply at all, and Debian's upsd also drops
        the rest of what it read with it; so after a request we send ``GET DESC <ups> nutenv.sync.<n>``
        (needs a connected UPS: it echoes the unique name) and resend a new marker every `step_timeout`
        until one is answered. Replies to later markers are drained. Lines received before the first
        marker reply are returned (plus "<closed>" if the server closed the connection).
        """
        sent: list[int] = []
        lines: list[str] = []
        while True:
            NutConnection._marker += 1
            sent.append(NutConnection._marker)
            try:
                self.send(f"GET DESC {ups} nutenv.sync.{NutConnection._marker}")
            except OSError:
                return [*lines, "<closed>"]
            try:
                while True:
                    line = self.read_line(step_timeout)
                    m = self.SYNC_RE.match(line)
                    if m and int(m.group(1)) in sent:
                        got = int(m.group(1))
                        for later in (n for n in sent if n > got):
                            extra = self.read_line(10)
                            m2 = self.SYNC_RE.match(extra)
                            if not m2 or int(m2.group(1)) != later:
                                raise AssertionError(
                                    f"{what}: expected the reply to marker {later}, got {extra!r} "
                                    f"(lines so far: {lines!r})"
                                )
                        return lines
                    lines.append(line)
            except TimeoutError:
                if len(sent) >= tries:
                    raise AssertionError(
                        f"{what}: upsd answered none of {len(sent)} marker requests "
                        f"'GET DESC {ups} nutenv.sync.N' (lines received: {lines!r})"
                    ) from None
            except ConnectionClosed:
                return [*lines, "<closed>"]

    # -- convenience
    def request(self, line: str, timeout: float | None = None) -> str:
        self.send(line)
        return self.read_line(timeout)

    def request_list(self, line: str, timeout: float | None = None) -> list[str]:
        self.send(line)
        return self.read_list(timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> NutConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------------
# A scripted driver (driver side of the driver<->upsd socket protocol)


@dataclass
class FakeVar:
    value: str
    flags: tuple[str, ...] = ()
    aux: int = 0
    enums: list[str] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)


class FakeDriver:
    """A driver socket server with scripted state, run in a thread of the test process.

    Answers DUMPALL (in NUT's order: per variable SETINFO, ADDENUMs, ADDRANGEs, SETAUX, SETFLAGS; variables
    in the order given; then ADDCMDs; DATAOK; DUMPDONE) and PING; records every other line it receives in
    `received`; on SET of a known variable it updates and broadcasts the value (if `apply_set`); answers
    ``TRACKING <id>`` with `tracking_result` (unless None).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.vars: dict[str, FakeVar] = {}
        self.cmds: list[str] = []
        self.received: list[str] = []
        self.apply_set = True
        self.tracking_result: int | None = 0
        self.stale = False
        self._lock = threading.Lock()
        self._clients: dict[socket.socket, bytes] = {}
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sel: selectors.BaseSelector | None = None

    # -- state
    def setvar(
        self,
        name: str,
        value: str,
        flags: Sequence[str] = (),
        aux: int = 0,
        enums: Sequence[str] = (),
        ranges: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.vars[name] = FakeVar(value, tuple(flags), aux, list(enums), list(ranges))

    def addcmd(self, *cmds: str) -> None:
        self.cmds.extend(cmds)

    def dump_lines(self) -> list[str]:
        out: list[str] = ["DATASTALE"] if self.stale else []
        for name, v in self.vars.items():
            out.append(f"SETINFO {name} {nut_quote(v.value)}")
            out.extend(f"ADDENUM {name} {nut_quote(e)}" for e in v.enums)
            out.extend(f"ADDRANGE {name} {lo} {hi}" for lo, hi in v.ranges)
            if v.aux:
                out.append(f"SETAUX {name} {v.aux}")
            if v.flags:
                out.append(f"SETFLAGS {name} {' '.join(v.flags)}")
        out.extend(f"ADDCMD {c}" for c in self.cmds)
        if not self.stale:
            out.append("DATAOK")
        out.append("DUMPDONE")
        return out

    # -- server
    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(self.path)
        os.chmod(self.path, 0o660)
        lst.listen(16)
        lst.setblocking(False)
        self._listener = lst
        self._stop.clear()
        self._sel = selectors.DefaultSelector()
        self._sel.register(lst, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name=f"FakeDriver {self.path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and every connection (like a dying driver)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for s in list(self._clients):
                s.close()
            self._clients.clear()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._clients)

    def broadcast(self, *lines: str) -> None:
        data = "".join(line + "\n" for line in lines).encode("latin-1")
        with self._lock:
            for s in list(self._clients):
                with contextlib.suppress(OSError):
                    s.sendall(data)

    def _run(self) -> None:
        assert self._sel is not None
        while not self._stop.is_set():
            for key, _ in self._sel.select(0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    with contextlib.suppress(BlockingIOError):
                        conn, _ = sock.accept()
                        conn.setblocking(True)
                        with self._lock:
                            self._clients[conn] = b""
                        self._sel.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self._sel.unregister(sock)
                    with self._lock:
                        self._clients.pop(sock, None)
                    sock.close()
                    continue
                with self._lock:
                    buf = self._clients.get(sock, b"") + data
                    *lines, rest = buf.split(b"\n")
                    self._clients[sock] = rest
                for raw in lines:
                    self._handle(sock, raw.decode("latin-1").rstrip("\r"))
        self._sel.close()

    def _send(self, sock: socket.socket, lines: Iterable[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode("latin-1")
        with contextlib.suppress(OSError):
            sock.sendall(data)

    def _handle(self, sock: socket.socket, line: str) -> None:
        words = nut_split(line)
        if not words:
            return
        cmd = words[0].upper()
        if cmd == "DUMPALL":
            self._send(sock, self.dump_lines())
            return
        if cmd == "PING":
            self._send(sock, ["PONG"])
            return
        self.received.append(line)
        tracking = None
        if len(words) >= 2 and words[-2].upper() == "TRACKING":
            tracking = words[-1]
        if cmd == "SET" and len(words) >= 3 and self.apply_set and words[1] in self.vars:
            self.vars[words[1]].value = words[2]
            self.broadcast(f"SETINFO {words[1]} {nut_quote(words[2])}")
        if tracking is not None and self.tracking_result is not None:
            self._send(sock, [f"TRACKING {tracking} {self.tracking_result}"])


# --------------------------------------------------------------------------------------------------------
# The environment
