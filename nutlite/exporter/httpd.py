"""A small HTTP/1.1 server for the exporter's GET endpoints.

``http.server`` would bring ``http.client``, ``email`` (its header parser), ``mimetypes`` and
``html.entities`` into a daemon that answers a handful of GET URLs; this module reads requests
with strict limits and writes whole responses, which is all a Prometheus scrape needs.

:func:`read_request` is the parser (bytes from a file-like object in, a :class:`Request` or an
:class:`HttpError` out); :class:`Server` is a threading TCP server (dual-stack when it listens on
every address, optional TLS with the handshake in the connection's own thread) that calls an
application ``Callable[[Request], Response]`` for each request, with HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

log = logging.getLogger("nutlite.exporter")

MAX_LINE = 8190  # request line and each header line (as common servers allow)
MAX_HEADERS = 100
MAX_BODY = 65536  # a GET carries no body; a small one is read and ignored
IDLE_TIMEOUT = 30.0  # seconds a connection may wait between or inside requests

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 413: "Content Too Large", 414: "URI Too Long",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    505: "HTTP Version Not Supported",
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class HttpError(Exception):
    """A request that cannot be answered normally: the status to send, then the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    """An HTTP request as the exporter's server reads it."""

    method: str
    target: str  # the request target as sent ("/probe?target=x")
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    client: str = ""  # peer address, for logs

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class Response:
    """An HTTP response of the exporter's server."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def http_date(when: float | None = None) -> str:
    """RFC 9110 IMF-fixdate, independent of the locale."""
    t = time.gmtime(when)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def _line(rfile: BinaryIO, what: str, status: int) -> bytes:
    raw = rfile.readline(MAX_LINE + 1)
    if len(raw) > MAX_LINE:
        raise HttpError(status, f"{what} longer than {MAX_LINE} bytes")
    return raw


def read_request(rfile: BinaryIO, client: str = "") -> Request | None:
    """The next request from ``rfile``; None when the peer closed the connection between requests."""
    raw = _line(rfile, "request line", 414)
    while raw in (b"\r\n", b"\n"):  # stray empty lines before a request are allowed (RFC 9112 2.2)
        raw = _line(rfile, "request line", 414)
    if not raw:
        return None
    try:
        text = raw.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError:
        raise HttpError(400, "request line is not ASCII") from None
    parts = text.split(" ")
    if len(parts) != 3 or not all(parts):
        raise HttpError(400, f"malformed request line {text[:80]!r}")
    method, target, version = parts
    if not version.startswith("HTTP/") or len(version) != 8 or version[6] != "." \
            or not (version[5].isdigit() and version[7].isdigit()):
        raise HttpError(400, f"bad HTTP version {version[:20]!r}")
    if version[5] != "1":
        raise HttpError(505, f"{version} is not supported (HTTP/1.0 and HTTP/1.1 are)")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = _line(rfile, "header line", 431)
        if raw in (b"\r\n", b"\n"):
            break
        if not raw:
            raise HttpError(400, "connection closed inside the headers")
        if raw[:1] in (b" ", b"\t"):
            raise HttpError(400, "folded header lines are not accepted")
        name, sep, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
        if not sep or not name or name != name.strip() or not name.isascii():
            raise HttpError(400, f"malformed header line {name[:40]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    else:
        raise HttpError(431, f"more than {MAX_HEADERS} header lines")
    if "transfer-encoding" in headers:
        raise HttpError(501, "request bodies with a transfer coding are not accepted")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise HttpError(400, f"bad Content-Length {length[:20]!r}")
    if int(length) > MAX_BODY:
        raise HttpError(413, f"request body of {length} bytes (at most {MAX_BODY})")
    if int(length):
        rfile.read(int(length))
    return Request(method, target, version, headers, client)


App = Callable[[Request], Response]


class Handler(socketserver.StreamRequestHandler):
    """One connection: requests answered in turn until the peer or a ``Connection: close`` ends it."""

    server: Server
    timeout = IDLE_TIMEOUT

    def setup(self) -> None:
        if hasattr(self.request, "do_handshake"):  # TLS: the handshake runs here, in this thread
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def handle(self) -> None:
        client = str(self.client_address[0]) if isinstance(self.client_address, tuple) else ""
        while True:
            try:
                req = read_request(self.rfile, client)
            except HttpError as exc:
                log.debug("bad HTTP request from %s: %s", client, exc.message)
                self._write(Response(exc.status, f"{exc.message}\n".encode()), head=False, close=True)
                return
            if req is None:
                return
            if req.method not in ("GET", "HEAD"):
                resp = Response(501, f"method {req.method[:20]} is not supported (GET and HEAD are)\n".encode(),
                                headers={"Allow": "GET, HEAD"})
            else:
                resp = self.server.app(req)
            close = not req.keep_alive
            self._write(resp, head=req.method == "HEAD", close=close)
            log.debug("%s %s %s %d %d", client, req.method, req.target[:200], resp.status, len(resp.body))
            if self.server.sent is not None:
                self.server.sent(len(resp.body))
            if close:
                return

    def _write(self, resp: Response, head: bool, close: bool) -> None:
        lines = [
            f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}",
            f"Server: {self.server.server_name}",
            f"Date: {http_date()}",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {len(resp.body)}",
            *(f"{k}: {v}" for k, v in resp.headers.items()),
        ]
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(data if head else data + resp.body)


class Server(socketserver.ThreadingTCPServer):
    """``app`` answers each request; ``tls`` (an ssl.SSLContext) wraps every connection.

    ``("", port)`` listens on every address, IPv4 included (a dual-stack IPv6 socket); a host with
    ``:`` is IPv6 only. ``turn`` is called at each turn of the accept loop (every poll interval),
    ``sent`` with the body's length after each response.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], app: App, server_name: str = "nutlite",
                 tls: object | None = None, turn: Callable[[], None] | None = None,
                 sent: Callable[[int], None] | None = None) -> None:
        host = addr[0]
        if ":" in host or host == "":
            self.address_family = socket.AF_INET6
        self.app = app
        self.server_name = server_name
        self.tls = tls
        self.turn = turn
        self.sent = sent
        super().__init__(addr if host else ("::", addr[1]), Handler, bind_and_activate=False)
        try:
            if self.address_family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "" else 1)
            self.server_bind()
            self.server_activate()
        except OSError:
            self.server_close()
            raise

    def service_actions(self) -> None:
        if self.turn is not None:
            self.turn()

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)  # type: ignore[attr-defined]
        return sock, addr

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("HTTP connection from %s failed", client_address, exc_info=True)
