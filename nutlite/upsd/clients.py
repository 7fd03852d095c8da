"""Client connections of ``nutlite upsd``: raw non-blocking sockets in one epoll set.

Each connection hands what it reads to the protocol core (:class:`nutlite.upsd.core.Server`) and writes
the reply -- at once, or, when the core says the reply is due later (an address slowed down for failed
logins), at that time: meanwhile only that connection waits (nothing more is read from it), never the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from nutlite.upsd.lines import LineReader

if TYPE_CHECKING:
    import socket

    from nutlite.upsd.main import Upsd

log = logging.getLogger("nutlite.upsd")

WRITE_LIMIT = 4 * 1024 * 1024  # a client that lets this much reply data pile up is dropped

monotonic = time.monotonic


class _Tls:
    """TLS on a client socket, through OpenSSL memory buffers (see ClientConn)."""

    __slots__ = ("ssl", "inc", "out", "obj", "ready")

    def __init__(self, ssl_module: Any, ctx: Any) -> None:
        self.ssl = ssl_module
        self.inc = ssl_module.MemoryBIO()
        self.out = ssl_module.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.ready = False


class ClientPoller:
    """All client sockets in one epoll set, which the event loop watches as a single reader.

    One loop callback then serves every ready client in a tight loop, instead of one asyncio handle
    per socket event (Linux: epoll).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import select

        self.select = select
        self.ep = select.epoll()
        self.loop = loop
        self.conns: dict[int, ClientConn] = {}
        loop.add_reader(self.ep.fileno(), self.run)

    def add(self, conn: ClientConn) -> None:
        self.ep.register(conn.fd, self.select.EPOLLIN)
        self.conns[conn.fd] = conn

    def modify(self, conn: ClientConn, read: bool, write: bool) -> None:
        sel = self.select
        self.ep.modify(conn.fd, (sel.EPOLLIN if read else 0) | (sel.EPOLLOUT if write else 0))

    def remove(self, conn: ClientConn) -> None:
        if self.conns.get(conn.fd) is conn:
            del self.conns[conn.fd]
            with contextlib.suppress(OSError, ValueError):
                self.ep.unregister(conn.fd)

    def run(self) -> None:
        try:
            events = self.ep.poll(0, 512)
        except InterruptedError:
            return
        conns = self.conns
        out_flag = self.select.EPOLLOUT
        for fd, ev in events:
            c = conns.get(fd)
            if c is None:
                continue
            try:
                if ev & out_flag:
                    c.on_writable()
                    if ev == out_flag or c.gone:
                        continue
                c.on_readable()
            except Exception:  # never let one client's trouble stop the others
                log.exception("internal error serving %s", c.addr)
                c.drop()

    def close(self) -> None:
        self.loop.remove_reader(self.ep.fileno())
        self.ep.close()


class ClientConn:
    """One client connection on a raw non-blocking socket, polled by :class:`ClientPoller`.

    (asyncio's stream transports cost about twice the time per request; upsd's requests are small and
    its replies are written in one piece, so a plain socket does.) After STARTTLS the bytes go through
    an ``ssl.SSLObject`` over memory buffers. A reply the core says is due later (``Session.answer_at``)
    is held on a timer; until it is sent nothing more is read from this client.
    """

    __slots__ = ("upsd", "poller", "sock", "fd", "addr", "session", "wbuf", "closing", "gone", "tls",
                 "held")

    def __init__(self, upsd: Upsd, sock: socket.socket, addr: str) -> None:
        self.upsd = upsd
        self.poller = upsd.poller
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.wbuf: bytearray | None = None
        self.closing = False
        self.gone = False
        self.tls: _Tls | None = None
        self.held: asyncio.TimerHandle | None = None  # the timer of a reply held back
        self.session = upsd.core.connect(addr, monotonic())
        self.session.transport = self
        self.poller.add(self)

    # -- input
    def on_readable(self) -> None:
        if self.held is not None:
            return
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop()
            return
        if not data:  # EOF: upsd drops the client (after what we still owe it is written)
            self.close()
            return
        if self.tls is not None:
            self._tls_in(data)
        else:
            self.handle(data)

    def handle(self, data: bytes) -> None:
        s = self.session
        now = monotonic()
        out = self.upsd.core.feed(s, data, now)
        if s.answer_at > now:
            self._hold(out, s.answer_at - now)
            return
        self._deliver(out)

    def _deliver(self, out: bytes) -> None:
        s = self.session
        if out:
            self.write(out)
            if self.gone:
                return
        if s.close_after:
            self.close()
        elif s.start_tls:
            s.start_tls = False
            self._start_tls()

    def _hold(self, out: bytes, delay: float) -> None:
        """Send ``out`` in ``delay`` seconds; read nothing more from this client until then."""
        self.held = self.upsd.loop.call_later(delay, self._release, out)
        self.poller.modify(self, False, self.wbuf is not None)

    def _release(self, out: bytes) -> None:
        self.held = None
        if self.gone:
            return
        try:
            self._deliver(out)
        except Exception:  # as in ClientPoller.run: one client's trouble stays its own
            log.exception("internal error serving %s", self.addr)
            self.drop()
            return
        if not self.gone and not self.closing:
            self.poller.modify(self, True, self.wbuf is not None)

    # -- output
    def write(self, data: bytes) -> None:
        if self.tls is not None:
            self.tls.obj.write(data)
            data = self.tls.out.read()
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self.gone or not data:
            return
        if self.wbuf is not None:
            self.wbuf += data
            if len(self.wbuf) > WRITE_LIMIT:
                log.info("Client %s does not read its replies; disconnecting", self.addr)
                self.drop()
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.drop()
            return
        if n < len(data):
            self.wbuf = bytearray(data[n:])
            self.poller.modify(self, not self.closing and self.held is None, True)

    def on_writable(self) -> None:
        wbuf = self.wbuf
        if wbuf is None:
            return
        try:
            n = self.sock.send(wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop()
            return
        del wbuf[:n]
        if not wbuf:
            self.wbuf = None
            if self.closing:
                self.drop()
            else:
                self.poller.modify(self, self.held is None, False)

    # -- closing
    def close(self) -> None:
        """Close once the pending output is written."""
        if self.wbuf is None:
            self.drop()
        elif not self.closing:
            self.closing = True
            self.poller.modify(self, False, True)

    def drop(self) -> None:
        """Close now."""
        if self.gone:
            return
        self.gone = True
        if self.held is not None:
            self.held.cancel()
            self.held = None
        self.poller.remove(self)
        self.wbuf = None
        with contextlib.suppress(OSError):
            self.sock.close()
        self.upsd.client_gone(self)

    # -- TLS
    def _start_tls(self) -> None:
        ctx = self.upsd.ssl_context
        if ctx is None:  # CERTFILE went away with a reload
            self.drop()
            return
        from nutlite import lazyssl

        self.tls = _Tls(lazyssl.load(), ctx)
        self.session.tls = True
        self.session.reader = LineReader()

    def _tls_in(self, data: bytes) -> None:
        t = self.tls
        assert t is not None
        ssl = t.ssl
        t.inc.write(data)
        if not t.ready:
            try:
                t.obj.do_handshake()
                t.ready = True
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS handshake with %s failed: %s", self.addr, exc)
                self._send(t.out.read())
                self.close()
                return
            self._send(t.out.read())
            if not t.ready:
                return
            log.debug("Client %s switched to TLS", self.addr)
        plain: list[bytes] = []
        eof = False
        while True:
            try:
                chunk = t.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS error from %s: %s", self.addr, exc)
                self.drop()
                return
            if not chunk:
                eof = True
                break
            plain.append(chunk)
        pending = t.out.read()
        if pending:
            self._send(pending)
        if plain:
            self.handle(b"".join(plain))
        if eof:
            self.close()
