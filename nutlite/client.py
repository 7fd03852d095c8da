"""Client library for the NUT network protocol (RFC 9271, protocol 1.3).

Three layers, so that the protocol logic exists once:

* a sans-IO core: :class:`LineReader` cuts bytes into reply lines and :class:`Exchange` is one
  request with the knowledge of how its reply is read (one line, or a ``BEGIN LIST`` ... ``END LIST``
  block) and turned into a Python value. The functions of :data:`requests` build them;
* :class:`NutClient`, a blocking client over a socket;
* :class:`AsyncNutClient`, the same methods for asyncio.

Both clients only move bytes: every request line is built and every reply is parsed by the core.
ERR replies raise :class:`NutError` (its ``message`` is the text NUT's client library shows for the
code, e.g. ``Variable not supported by UPS``); socket problems raise :class:`NutConnectionError`
and a reply that is not NUT protocol raises :class:`NutProtocolError`. After a connection or
protocol error the connection is closed, since its state is unknown.

Host and UPS names use NUT's ``upsname[@hostname[:port]]`` syntax, parsed by :func:`parse_upsname`
and :func:`split_hostport` (an IPv6 address goes in brackets: ``ups@[::1]:3493``).
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from nutlite.parseconf import ParseError, join_words, quote, split_line

if TYPE_CHECKING:  # asyncio and ssl are imported when used: the tools start faster without them
    import asyncio
    import ssl

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "AddressError",
    "AsyncNutClient",
    "Exchange",
    "LineReader",
    "NutClient",
    "NutClientError",
    "NutConnectionError",
    "NutError",
    "NutProtocolError",
    "NutTimeoutError",
    "UpsAddress",
    "VarType",
    "error_message",
    "make_ssl_context",
    "parse_upsname",
    "requests",
    "split_hostport",
]

DEFAULT_PORT = 3493
DEFAULT_TIMEOUT = 5.0  # seconds; what NUT's client library waits for a reply
MAX_LINE = 65536  # a longer reply line is not NUT protocol

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Errors

# ERR code -> the text NUT's client library (libupsclient 2.8.0) shows for it. Codes that the
# library does not know (INVALID-ARGUMENT, FEATURE-NOT-*, ALREADY-SSL-MODE, ...) show as
# "Unknown error" there; the code itself is always kept in NutError.code.
ERROR_MESSAGES: dict[str, str] = {
    "VAR-NOT-SUPPORTED": "Variable not supported by UPS",
    "UNKNOWN-UPS": "Unknown UPS",
    "ACCESS-DENIED": "Access denied",
    "PASSWORD-REQUIRED": "Password required",
    "PASSWORD-INCORRECT": "Password incorrect",
    "MISSING-ARGUMENT": "Missing argument",
    "DATA-STALE": "Data stale",
    "VAR-UNKNOWN": "Variable unknown",
    "ALREADY-LOGGED-IN": "Already logged in",
    "ALREADY-SET-PASSWORD": "Already set password",
    "UNKNOWN-TYPE": "Unknown variable type",
    "UNKNOWN-VAR": "Unknown variable",
    "READONLY": "Read-only variable",
    "TOO-LONG": "New value is too long",
    "INVALID-VALUE": "Invalid value for variable",
    "SET-FAILED": "Set command failed",
    "UNKNOWN-INSTCMD": "Unknown instant command",
    "INSTCMD-FAILED": "Instant command failed",
    "CMD-NOT-SUPPORTED": "Instant command not supported",
    "INVALID-USERNAME": "Invalid username",
    "ALREADY-SET-USERNAME": "Already set username",
    "UNKNOWN-COMMAND": "Unknown command",
    "INVALID-PASSWORD": "Invalid password",
    "USERNAME-REQUIRED": "Username required",
    "DRIVER-NOT-CONNECTED": "Driver not connected",
}
UNKNOWN_ERROR = "Unknown error"
# An old upsd answers queries it does not know with UNKNOWN-COMMAND; the library says so.
OLD_UPSD_MESSAGES = {
    "get": "variable unknown (old upsd detected)",
    "list": "upsd is too old to support this query",
}
TRACKING_RESULTS = ("SUCCESS", "PENDING", "UNKNOWN", "INVALID-ARGUMENT", "FAILED")


def error_message(code: str, context: str = "") -> str:
    """The human text for an ERR ``code`` (``context`` is ``get``/``list`` for those queries)."""
    if code == "UNKNOWN-COMMAND" and context in OLD_UPSD_MESSAGES:
        return OLD_UPSD_MESSAGES[context]
    return ERROR_MESSAGES.get(code, UNKNOWN_ERROR)



_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _quickack(sock: Any) -> None:
    """Acknowledge replies at once (Linux). NUT's upsd sends a LIST one line per segment; with delayed
    ACKs and Nagle each reply then waits about 40 ms. The option is not sticky: set before every read."""
    if _TCP_QUICKACK is not None and sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            pass


class NutClientError(Exception):
    """Base of every error this module raises; ``message`` is the text to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NutError(NutClientError):
    """The server answered ``ERR <code> [extra...]``."""

    def __init__(
        self, code: str, message: str | None = None, extra: Sequence[str] = (), reply: str = ""
    ) -> None:
        super().__init__(message if message is not None else error_message(code))
        self.code = code
        self.extra = list(extra)
        self.reply = reply or " ".join(["ERR", code, *self.extra])

    def __repr__(self) -> str:
        return f"NutError({self.code!r}, {self.message!r})"


class NutConnectionError(NutClientError):
    """The server could not be reached, or the connection broke."""


class NutTimeoutError(NutConnectionError):
    """No (complete) reply within the timeout."""


class NutProtocolError(NutClientError):
    """The server sent something that is not NUT protocol."""

    def __init__(self, detail: str, line: str | None = None) -> None:
        super().__init__("Protocol error")
        self.detail = detail
        self.line = line

    def __str__(self) -> str:
        return f"Protocol error: {self.detail}" + (f" ({self.line!r})" if self.line is not None else "")


class AddressError(ValueError):
    """A ``upsname[@hostname[:port]]`` or ``hostname[:port]`` that cannot be parsed."""

    def __init__(self, message: str, where: str = "upscli_splitaddr") -> None:
        super().__init__(message)
        self.message = message
        self.where = where  # name of the step that failed, as NUT's library reports it


# --------------------------------------------------------------------------------------------
# Addresses


@dataclass(frozen=True)
class UpsAddress:
    """A parsed ``upsname@hostname:port``; ``upsname`` is None for a bare host address."""

    upsname: str | None
    host: str
    port: int = DEFAULT_PORT

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.hostport if self.upsname is None else f"{self.upsname}@{self.hostport}"


def split_hostport(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split ``hostname[:port]`` (``[v6addr][:port]`` for IPv6) as NUT's client library does."""
    if not text:
        raise AddressError("can't parse empty string")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError("missing closing bracket in [domain literal]")
        host, rest = text[1:end], text[end + 1 :]
        if not rest.startswith(":"):
            return host, default_port
        portstr = rest[1:]
    else:
        host, sep, portstr = text.partition(":")
        if not sep:
            return host, default_port
    # Like strtol: leading digits count, the rest is ignored; the port must be 1..65535.
    digits = ""
    for ch in portstr:
        if not ch.isdigit():
            break
        digits += ch
    if not digits or not 0 < int(digits) < 65536:
        raise AddressError("no port specified after ':' separator")
    return host, int(digits)


def parse_upsname(text: str, default_host: str = "localhost", default_port: int = DEFAULT_PORT) -> UpsAddress:
    """Parse ``upsname[@hostname[:port]]``; without ``@`` the host is ``default_host``."""
    if not text:
        raise AddressError("can't parse empty string", "upscli_splitname")
    name, sep, hostpart = text.partition("@")
    if not sep:
        return UpsAddress(name, default_host, default_port)
    host, port = split_hostport(hostpart, default_port)
    return UpsAddress(name, host, port)


# --------------------------------------------------------------------------------------------
# Sans-IO core


class LineReader:
    """Cut a byte stream into reply lines (``\\n`` ends a line, a trailing ``\\r`` is dropped)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self.max_line = max_line

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_line(self) -> str | None:
        """The next complete line, or None until more data has been fed."""
        idx = self._buf.find(b"\n")
        if idx < 0:
            if len(self._buf) > self.max_line:
                raise NutProtocolError(f"reply line longer than {self.max_line} bytes")
            return None
        raw = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw.decode("utf-8", "replace")

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet returned as a line."""
        return bytes(self._buf)


@dataclass(frozen=True)
class VarType:
    """A ``GET TYPE`` answer: the words after the variable name, e.g. ``RW ENUM STRING:8``."""

    words: tuple[str, ...]

    def _has(self, word: str) -> bool:
        return any(w.upper() == word for w in self.words)

    @property
    def rw(self) -> bool:
        return self._has("RW")

    @property
    def enum(self) -> bool:
        return self._has("ENUM")

    @property
    def range(self) -> bool:
        return self._has("RANGE")

    @property
    def string(self) -> bool:
        return any(w.upper().startswith("STRING") for w in self.words)

    @property
    def number(self) -> bool:
        return not self.string

    @property
    def maxlen(self) -> int | None:
        """The ``n`` of ``STRING:n`` (None for other types)."""
        for w in self.words:
            if w.upper().startswith("STRING:"):
                try:
                    return int(w[7:])
                except ValueError:
                    return None
        return None

    def __str__(self) -> str:
        return " ".join(self.words)


def _check_request_word(word: str) -> str:
    if any(ch in word for ch in "\r\n\0"):
        raise ValueError(f"line breaks and NUL cannot be sent in a request: {word!r}")
    return word


def build_request(words: Sequence[str], quote_last: bool = False) -> str:
    """A request line for ``words`` (without the newline), quoting words that need it."""
    for w in words:
        _check_request_word(w)
    if quote_last and words:
        head = join_words(list(words[:-1]))
        return f"{head} {quote(words[-1])}" if head else quote(words[-1])
    return join_words(list(words))


def _tokenize(line: str) -> list[str]:
    try:
        return split_line(line)
    except ParseError as exc:
        raise NutProtocolError(f"cannot parse reply: {exc.message}", line) from None


def _upper(words: Sequence[str]) -> list[str]:
    return [w.upper() for w in words]


class Exchange(Generic[T]):
    """One request and the reading and parsing of its reply.

    Usage, for any transport: send :attr:`data`, :meth:`feed` reply lines until it returns True,
    then call :meth:`result` (which raises :class:`NutError` for an ERR reply).
    """

    def __init__(
        self,
        line: str,
        parse: Callable[[Exchange[Any]], T],
        *,
        listing: Sequence[str] | None = None,
        context: str = "",
    ) -> None:
        self.line = line
        self.parse = parse
        self.listing = list(listing) if listing is not None else None  # query words after LIST
        self.context = context
        self.reply: str | None = None  # first reply line, as received
        self.items: list[list[str]] = []  # tokenized item lines of a LIST block
        self.done = False

    @property
    def data(self) -> bytes:
        try:
            return (self.line + "\n").encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"NUT requests are ASCII only: {self.line!r}") from None

    def feed(self, line: str) -> bool:
        """Take one reply line; return True once the reply is complete."""
        if self.done:
            raise NutProtocolError("unexpected extra reply line", line)
        if self.reply is None:
            self.reply = line
            if self.listing is None or _is_err(line):
                self.done = True
            else:
                words = _tokenize(line)
                if _upper(words) != ["BEGIN", "LIST", *_upper(self.listing)]:
                    raise NutProtocolError(f"expected 'BEGIN LIST {' '.join(self.listing)}'", line)
            return self.done
        words = _tokenize(line)
        if _upper(words) == ["END", "LIST", *_upper(self.listing or [])]:
            self.done = True
        else:
            self.items.append(words)
        return self.done

    def result(self) -> T:
        if not self.done or self.reply is None:
            raise NutProtocolError("reply incomplete")
        if _is_err(self.reply):
            raise error_from_reply(self.reply, self.context)
        return self.parse(self)


def _is_err(line: str) -> bool:
    return line == "ERR" or line.startswith("ERR ")


def error_from_reply(line: str, context: str = "") -> NutError:
    """The :class:`NutError` for an ``ERR <code> [extra...]`` line."""
    try:
        words = split_line(line)
    except ParseError:
        words = line.split()
    code = words[1] if len(words) > 1 else ""
    return NutError(code, error_message(code, context), words[2:], line)


# --- reply parsers ---------------------------------------------------------------------------


def _raw(ex: Exchange[Any]) -> str:
    assert ex.reply is not None
    return ex.reply


def _ok(ex: Exchange[Any]) -> str:
    """Replies that must start with OK (``OK``, ``OK Goodbye``, ``OK PRIMARY-GRANTED`` ...)."""
    reply = _raw(ex)
    if reply == "OK" or reply.startswith("OK "):
        return reply
    raise NutProtocolError("expected OK", reply)


def _logout(ex: Exchange[Any]) -> str:
    reply = _raw(ex)
    if reply.startswith("OK") or reply.startswith("Goodbye"):  # "OK Goodbye"; older upsd "Goodbye..."
        return reply
    raise NutProtocolError("expected OK Goodbye", reply)


def _tracking_id(ex: Exchange[Any]) -> str | None:
    """``OK`` -> None, ``OK TRACKING <id>`` -> id."""
    words = _tokenize(_raw(ex))
    if words == ["OK"]:
        return None
    if len(words) == 3 and _upper(words[:2]) == ["OK", "TRACKING"]:
        return words[2]
    raise NutProtocolError("expected OK or OK TRACKING <id>", ex.reply)


def _words(ex: Exchange[Any], keyword: str, count: int) -> list[str]:
    words = _tokenize(_raw(ex))
    if len(words) < count or words[0].upper() != keyword:
        raise NutProtocolError(f"expected a {keyword} reply", ex.reply)
    return words


def _single_value(keyword: str, count: int) -> Callable[[Exchange[Any]], str]:
    """Replies like ``VAR <ups> <var> "<value>"``: the last of ``count`` words."""

    def parse(ex: Exchange[Any]) -> str:
        return _words(ex, keyword, count)[count - 1]

    return parse


def _type(ex: Exchange[Any]) -> VarType:
    return VarType(tuple(_words(ex, "TYPE", 3)[3:]))


def _numlogins(ex: Exchange[Any]) -> int:
    value = _words(ex, "NUMLOGINS", 3)[2]
    try:
        return int(value)
    except ValueError:
        raise NutProtocolError("NUMLOGINS is not a number", ex.reply) from None


def _tracking_status(ex: Exchange[Any]) -> str:
    reply = _raw(ex).strip()
    if reply in ("PENDING", "SUCCESS", "ON", "OFF"):
        return reply
    raise NutProtocolError("expected a tracking status", reply)


def _items(keyword: str, count: int) -> Callable[[Exchange[Any]], list[list[str]]]:
    def check(ex: Exchange[Any]) -> list[list[str]]:
        for item in ex.items:
            if len(item) < count or item[0].upper() != keyword:
                raise NutProtocolError(f"expected {keyword} lines in the list", " ".join(item))
        return ex.items

    return check


def _dict_items(keyword: str, key: int, value: int) -> Callable[[Exchange[Any]], dict[str, str]]:
    check = _items(keyword, value + 1)

    def parse(ex: Exchange[Any]) -> dict[str, str]:
        return {item[key]: item[value] for item in check(ex)}

    return parse


def _list_items(keyword: str, index: int) -> Callable[[Exchange[Any]], list[str]]:
    check = _items(keyword, index + 1)

    def parse(ex: Exchange[Any]) -> list[str]:
        return [item[index] for item in check(ex)]

    return parse


def _ranges(ex: Exchange[Any]) -> list[tuple[str, str]]:
    return [(item[3], item[4]) for item in _items("RANGE", 5)(ex)]


def _all_items(ex: Exchange[Any]) -> list[list[str]]:
    return ex.items


class _Requests:
    """Builders of every request of protocol 1.3 (each returns a fresh :class:`Exchange`)."""

    @staticmethod
    def raw(line: str) -> Exchange[str]:
        """Any single-line request; the result is the reply line (ERR still raises)."""
        return Exchange(_check_request_word(line), _raw)

    @staticmethod
    def raw_list(query: str | Sequence[str]) -> Exchange[list[list[str]]]:
        """``LIST <query>``; the result is the item lines as word lists."""
        words = split_line(query) if isinstance(query, str) else list(query)
        return Exchange(build_request(["LIST", *words]), _all_items, listing=words, context="list")

    @staticmethod
    def ver() -> Exchange[str]:
        return Exchange("VER", _raw)

    @staticmethod
    def netver() -> Exchange[str]:
        return Exchange("NETVER", _raw)

    @staticmethod
    def help() -> Exchange[str]:
        return Exchange("HELP", _raw)

    @staticmethod
    def starttls() -> Exchange[str]:
        return Exchange("STARTTLS", _ok)

    @staticmethod
    def username(name: str) -> Exchange[str]:
        return Exchange(build_request(["USERNAME", name]), _ok)

    @staticmethod
    def password(secret: str) -> Exchange[str]:
        return Exchange(build_request(["PASSWORD", secret]), _ok)

    @staticmethod
    def login(ups: str) -> Exchange[str]:
        return Exchange(build_request(["LOGIN", ups]), _ok)

    @staticmethod
    def logout() -> Exchange[str]:
        return Exchange("LOGOUT", _logout)

    @staticmethod
    def primary(ups: str) -> Exchange[str]:
        return Exchange(build_request(["PRIMARY", ups]), _ok)

    @staticmethod
    def master(ups: str) -> Exchange[str]:
        return Exchange(build_request(["MASTER", ups]), _ok)

    @staticmethod
    def fsd(ups: str) -> Exchange[str]:
        return Exchange(build_request(["FSD", ups]), _ok)

    @staticmethod
    def get_var(ups: str, var: str) -> Exchange[str]:
        return Exchange(build_request(["GET", "VAR", ups, var]), _single_value("VAR", 4), context="get")

    @staticmethod
    def get_type(ups: str, var: str) -> Exchange[VarType]:
        return Exchange(build_request(["GET", "TYPE", ups, var]), _type, context="get")

    @staticmethod
    def get_desc(ups: str, var: str) -> Exchange[str]:
        return Exchange(build_request(["GET", "DESC", ups, var]), _single_value("DESC", 4), context="get")

    @staticmethod
    def get_cmddesc(ups: str, cmd: str) -> Exchange[str]:
        return Exchange(
            build_request(["GET", "CMDDESC", ups, cmd]), _single_value("CMDDESC", 4), context="get"
        )

    @staticmethod
    def get_upsdesc(ups: str) -> Exchange[str]:
        return Exchange(build_request(["GET", "UPSDESC", ups]), _single_value("UPSDESC", 3), context="get")

    @staticmethod
    def get_numlogins(ups: str) -> Exchange[int]:
        return Exchange(build_request(["GET", "NUMLOGINS", ups]), _numlogins, context="get")

    @staticmethod
    def get_tracking(tracking_id: str | None = None) -> Exchange[str]:
        words = ["GET", "TRACKING"] + ([tracking_id] if tracking_id is not None else [])
        return Exchange(build_request(words), _tracking_status)

    @staticmethod
    def set_tracking(on: bool) -> Exchange[str]:
        return Exchange("SET TRACKING " + ("ON" if on else "OFF"), _ok)

    @staticmethod
    def set_var(ups: str, var: str, value: str) -> Exchange[str | None]:
        return Exchange(build_request(["SET", "VAR", ups, var, value], quote_last=True), _tracking_id)

    @staticmethod
    def instcmd(ups: str, cmd: str, param: str | None = None) -> Exchange[str | None]:
        words = ["INSTCMD", ups, cmd] + ([param] if param is not None else [])
        return Exchange(build_request(words), _tracking_id)

    @staticmethod
    def list_ups() -> Exchange[dict[str, str]]:
        return Exchange("LIST UPS", _dict_items("UPS", 1, 2), listing=["UPS"], context="list")

    @staticmethod
    def list_var(ups: str) -> Exchange[dict[str, str]]:
        return _listing(["VAR", ups], _dict_items("VAR", 2, 3))

    @staticmethod
    def list_rw(ups: str) -> Exchange[dict[str, str]]:
        return _listing(["RW", ups], _dict_items("RW", 2, 3))

    @staticmethod
    def list_cmd(ups: str) -> Exchange[list[str]]:
        return _listing(["CMD", ups], _list_items("CMD", 2))

    @staticmethod
    def list_enum(ups: str, var: str) -> Exchange[list[str]]:
        return _listing(["ENUM", ups, var], _list_items("ENUM", 3))

    @staticmethod
    def list_range(ups: str, var: str) -> Exchange[list[tuple[str, str]]]:
        return _listing(["RANGE", ups, var], _ranges)

    @staticmethod
    def list_client(ups: str) -> Exchange[list[str]]:
        return _listing(["CLIENT", ups], _list_items("CLIENT", 2))


def _listing(query: list[str], parse: Callable[[Exchange[Any]], T]) -> Exchange[T]:
    return Exchange(build_request(["LIST", *query]), parse, listing=query, context="list")


requests = _Requests()


def tracking_outcome(status: str) -> str:
    """How NUT's tools print a tracking status: ``SUCCESS``, ``PENDING`` or ``ERR <code>``."""
    return status if status in ("SUCCESS", "PENDING") else f"ERR {status}"


def make_ssl_context(
    *,
    cafile: str | None = None,
    capath: str | None = None,
    verify: bool = True,
    check_hostname: bool | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> ssl.SSLContext:
    """A client TLS context: verify against ``cafile``/``capath`` (system CAs if neither)."""
    from nutlite import lazyssl

    ssl = lazyssl.load()

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile, capath=capath)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif check_hostname is not None:
        ctx.check_hostname = check_hostname
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


def _conn_error(exc: OSError) -> NutConnectionError:
    if isinstance(exc, socket.gaierror):
        return NutConnectionError("No such host")
    if isinstance(exc, TimeoutError):
        return NutTimeoutError("Connection failure: " + os.strerror(errno.ETIMEDOUT))
    reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc) or type(exc).__name__)
    return NutConnectionError(f"Connection failure: {reason}")


def _disconnected(detail: str = "") -> NutConnectionError:
    return NutConnectionError("Server disconnected" + (f" ({detail})" if detail else ""))


def _timed_out(timeout: float) -> NutTimeoutError:
    return NutTimeoutError(f"Server disconnected (no reply within {timeout:g} s)")


# --------------------------------------------------------------------------------------------
# Blocking client


def host_arg(host: str) -> str | bytes:
    """``host`` for socket.getaddrinfo: an ASCII name as bytes, which skips the lazy import of the IDNA
    codec (a daemon that has dropped its privileges may no longer be able to read the library)."""
    return host.encode("ascii") if host.isascii() else host


class NutClient:
    """A blocking NUT client. Connects on first use (or :meth:`connect` / ``with``).

    ``timeout`` bounds connecting and each whole reply (a LIST block included); ``deadline`` (a
    :func:`time.monotonic` time), when set, bounds them all together.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.deadline = deadline
        self._sock: socket.socket | None = None
        self._reader = LineReader()
        self.tls = False

    # --- connection -------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _limit(self) -> tuple[float, float]:
        """(the time this step may take, the monotonic time it must end by)."""
        now = time.monotonic()
        end = now + self.timeout
        if self.deadline is not None and self.deadline < end:
            if self.deadline <= now:
                raise NutTimeoutError("Server disconnected (deadline passed)")
            end = self.deadline
        return end - now, end

    def connect(self) -> NutClient:
        if self._sock is not None:
            return self
        try:
            infos = socket.getaddrinfo(host_arg(self.host), self.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except OSError as exc:
            raise _conn_error(exc) from None
        _, deadline = self._limit()
        last: OSError = OSError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        for family, stype, proto, _, addr in infos:
            sock = socket.socket(family, stype, proto)
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock.connect(addr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._reader = LineReader()
            self.tls = False
            return self
        raise _conn_error(last)

    def close(self, logout: bool = True) -> None:
        """Close the connection, saying LOGOUT first (and waiting briefly for its answer)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if logout:
                sock.settimeout(min(self.timeout, 1.0))
                sock.sendall(b"LOGOUT\n")
                end = time.monotonic() + min(self.timeout, 1.0)
                while self._reader.next_line() is None and time.monotonic() < end:
                    data = sock.recv(4096)
                    if not data:
                        break
                    self._reader.feed(data)
        except (OSError, NutProtocolError):
            pass
        finally:
            sock.close()

    def __enter__(self) -> NutClient:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abort(self) -> None:
        self.close(logout=False)

    # --- I/O ----------------------------------------------------------------------------------
    def run(self, ex: Exchange[T]) -> T:
        """Send one request and return its parsed reply."""
        if self._sock is None:
            self.connect()
        sock = self._sock
        assert sock is not None
        try:
            limit, deadline = self._limit()
            sock.settimeout(limit)
            sock.sendall(ex.data)
            while True:
                line = self._reader.next_line()
                if line is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise _timed_out(limit)
                    sock.settimeout(remaining)
                    _quickack(sock)
                    try:
                        data = sock.recv(65536)
                    except TimeoutError:
                        raise _timed_out(limit) from None
                    except OSError as exc:
                        raise _disconnected(exc.strerror or str(exc)) from None
                    if not data:
                        raise _disconnected()
                    self._reader.feed(data)
                    continue
                if ex.feed(line):
                    break
        except (NutConnectionError, NutProtocolError):
            self._abort()
            raise
        except OSError as exc:  # send failed
            self._abort()
            raise _disconnected(exc.strerror or str(exc)) from None
        return ex.result()

    def request(self, line: str) -> str:
        """Send a raw request line; return the reply line (an ERR reply raises NutError)."""
        return self.run(requests.raw(line))

    def request_list(self, query: str | Sequence[str]) -> list[list[str]]:
        """``LIST <query>``: the item lines of the reply, as word lists."""
        return self.run(requests.raw_list(query))

    # --- protocol -----------------------------------------------------------------------------
    def starttls(
        self,
        *,
        context: ssl.SSLContext | None = None,
        cafile: str | None = None,
        capath: str | None = None,
        verify: bool = True,
        server_hostname: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        """Ask for TLS (``STARTTLS``) and do the handshake; a refusal raises NutError."""
        self.run(requests.starttls())
        if self._reader.pending:
            self._abort()
            raise NutProtocolError("data received before the TLS handshake")
        ctx = context or make_ssl_context(
            cafile=cafile, capath=capath, verify=verify, certfile=certfile, keyfile=keyfile
        )
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(self.timeout)
            self._sock = ctx.wrap_socket(
                sock, server_hostname=server_hostname or (self.host if ctx.check_hostname else None)
            )
        except OSError as exc:
            self._sock = None
            sock.close()
            raise NutConnectionError(f"TLS handshake failed: {exc}") from None
        self.tls = True

    def ver(self) -> str:
        return self.run(requests.ver())

    def netver(self) -> str:
        return self.run(requests.netver())

    def help(self) -> str:
        return self.run(requests.help())

    def username(self, name: str) -> str:
        return self.run(requests.username(name))

    def password(self, secret: str) -> str:
        return self.run(requests.password(secret))

    def login(self, ups: str) -> str:
        return self.run(requests.login(ups))

    def logout(self) -> str:
        """Say LOGOUT, read the goodbye and close the connection."""
        try:
            return self.run(requests.logout())
        finally:
            self._abort()

    def primary(self, ups: str) -> str:
        """``PRIMARY``; a server that refuses it is asked the old way, ``MASTER``."""
        try:
            return self.run(requests.primary(ups))
        except NutError:
            return self.run(requests.master(ups))

    def fsd(self, ups: str) -> str:
        return self.run(requests.fsd(ups))

    def list_ups(self) -> dict[str, str]:
        return self.run(requests.list_ups())

    def list_var(self, ups: str) -> dict[str, str]:
        return self.run(requests.list_var(ups))

    def list_rw(self, ups: str) -> dict[str, str]:
        return self.run(requests.list_rw(ups))

    def list_cmd(self, ups: str) -> list[str]:
        return self.run(requests.list_cmd(ups))

    def list_enum(self, ups: str, var: str) -> list[str]:
        return self.run(requests.list_enum(ups, var))

    def list_range(self, ups: str, var: str) -> list[tuple[str, str]]:
        return self.run(requests.list_range(ups, var))

    def list_client(self, ups: str) -> list[str]:
        return self.run(requests.list_client(ups))

    def get_var(self, ups: str, var: str) -> str:
        return self.run(requests.get_var(ups, var))

    def get_type(self, ups: str, var: str) -> VarType:
        return self.run(requests.get_type(ups, var))

    def get_desc(self, ups: str, var: str) -> str:
        return self.run(requests.get_desc(ups, var))

    def get_cmddesc(self, ups: str, cmd: str) -> str:
        return self.run(requests.get_cmddesc(ups, cmd))

    def get_upsdesc(self, ups: str) -> str:
        return self.run(requests.get_upsdesc(ups))

    def get_numlogins(self, ups: str) -> int:
        return self.run(requests.get_numlogins(ups))

    def set_var(self, ups: str, var: str, value: str) -> str | None:
        """Set a variable; returns the tracking id when tracking is on, else None."""
        return self.run(requests.set_var(ups, var, value))

    def instcmd(self, ups: str, cmd: str, param: str | None = None) -> str | None:
        """Run an instant command; returns the tracking id when tracking is on, else None."""
        return self.run(requests.instcmd(ups, cmd, param))

    def set_tracking(self, on: bool = True) -> str:
        return self.run(requests.set_tracking(on))

    def get_tracking(self, tracking_id: str | None = None) -> str:
        """Without id: ``ON``/``OFF``. With id: ``PENDING``, ``SUCCESS``, or the driver's failure
        ``UNKNOWN``/``INVALID-ARGUMENT``/``FAILED``. Other ERR replies raise NutError."""
        try:
            return self.run(requests.get_tracking(tracking_id))
        except NutError as exc:
            if tracking_id is not None and exc.code in TRACKING_RESULTS:
                return exc.code
            raise

    def wait_tracking(self, tracking_id: str, timeout: float = 10.0, interval: float = 1.0) -> str:
        """Poll ``GET TRACKING`` until the result is not PENDING or ``timeout`` has passed
        (then PENDING is returned)."""
        start = time.monotonic()
        status = "PENDING"
        while time.monotonic() - start < timeout:
            status = self.get_tracking(tracking_id)
            if status != "PENDING":
                break
            time.sleep(max(0.0, min(interval, timeout - (time.monotonic() - start))))
        return status


# --------------------------------------------------------------------------------------------
# asyncio client


class AsyncNutClient:
    """The asyncio twin of :class:`NutClient` (same methods, awaitable)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader_stream: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader = LineReader()
        self._lock: asyncio.Lock | None = None
        self.tls = False

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def connect(self) -> AsyncNutClient:
        import asyncio

        if self._writer is not None:
            return self
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=self.timeout
            )
        except TimeoutError:
            raise NutTimeoutError("Connection failure: " + os.strerror(errno.ETIMEDOUT)) from None
        except OSError as exc:
            raise _conn_error(exc) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._reader_stream, self._writer = reader, writer
        self._reader = LineReader()
        self.tls = False
        return self

    async def close(self, logout: bool = True) -> None:
        import asyncio

        writer, reader = self._writer, self._reader_stream
        self._writer = self._reader_stream = None
        if writer is None:
            return
        try:
            if logout and reader is not None:
                writer.write(b"LOGOUT\n")
                await asyncio.wait_for(self._read_goodbye(reader), timeout=min(self.timeout, 1.0))
        except (OSError, TimeoutError, NutProtocolError):
            pass
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
            except (OSError, TimeoutError):
                pass

    async def _read_goodbye(self, reader: asyncio.StreamReader) -> None:
        while self._reader.next_line() is None:
            data = await reader.read(4096)
            if not data:
                return
            self._reader.feed(data)

    async def __aenter__(self) -> AsyncNutClient:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _abort(self) -> None:
        await self.close(logout=False)

    async def run(self, ex: Exchange[T]) -> T:
        """Send one request and return its parsed reply (requests are serialized)."""
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._writer is None:
                await self.connect()
            try:
                await asyncio.wait_for(self._exchange(ex), timeout=self.timeout)
            except TimeoutError:
                await self._abort()
                raise _timed_out(self.timeout) from None
            except (NutConnectionError, NutProtocolError):
                await self._abort()
                raise
            except OSError as exc:
                await self._abort()
                raise _disconnected(exc.strerror or str(exc)) from None
        return ex.result()

    async def _exchange(self, ex: Exchange[Any]) -> None:
        writer, reader = self._writer, self._reader_stream
        assert writer is not None and reader is not None
        writer.write(ex.data)
        await writer.drain()
        while True:
            line = self._reader.next_line()
            if line is None:
                _quickack(writer.get_extra_info("socket"))
                data = await reader.read(65536)
                if not data:
                    raise _disconnected()
                self._reader.feed(data)
                continue
            if ex.feed(line):
                return

    async def request(self, line: str) -> str:
        return await self.run(requests.raw(line))

    async def request_list(self, query: str | Sequence[str]) -> list[list[str]]:
        return await self.run(requests.raw_list(query))

    async def starttls(
        self,
        *,
        context: ssl.SSLContext | None = None,
        cafile: str | None = None,
        capath: str | None = None,
        verify: bool = True,
        server_hostname: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        import asyncio

        await self.run(requests.starttls())
        if self._reader.pending:
            await self._abort()
            raise NutProtocolError("data received before the TLS handshake")
        ctx = context or make_ssl_context(
            cafile=cafile, capath=capath, verify=verify, certfile=certfile, keyfile=keyfile
        )
        writer = self._writer
        assert writer is not None
        try:
            await asyncio.wait_for(
                writer.start_tls(
                    ctx, server_hostname=server_hostname or (self.host if ctx.check_hostname else None)
                ),
                timeout=self.timeout,
            )
        except (OSError, TimeoutError) as exc:
            await self._abort()
            raise NutConnectionError(f"TLS handshake failed: {exc}") from None
        self.tls = True

    async def ver(self) -> str:
        return await self.run(requests.ver())

    async def netver(self) -> str:
        return await self.run(requests.netver())

    async def help(self) -> str:
        return await self.run(requests.help())

    async def username(self, name: str) -> str:
        return await self.run(requests.username(name))

    async def password(self, secret: str) -> str:
        return await self.run(requests.password(secret))

    async def login(self, ups: str) -> str:
        return await self.run(requests.login(ups))

    async def logout(self) -> str:
        try:
            return await self.run(requests.logout())
        finally:
            await self._abort()

    async def primary(self, ups: str) -> str:
        try:
            return await self.run(requests.primary(ups))
        except NutError:
            return await self.run(requests.master(ups))

    async def fsd(self, ups: str) -> str:
        return await self.run(requests.fsd(ups))

    async def list_ups(self) -> dict[str, str]:
        return await self.run(requests.list_ups())

    async def list_var(self, ups: str) -> dict[str, str]:
        return await self.run(requests.list_var(ups))

    async def list_rw(self, ups: str) -> dict[str, str]:
        return await self.run(requests.list_rw(ups))

    async def list_cmd(self, ups: str) -> list[str]:
        return await self.run(requests.list_cmd(ups))

    async def list_enum(self, ups: str, var: str) -> list[str]:
        return await self.run(requests.list_enum(ups, var))

    async def list_range(self, ups: str, var: str) -> list[tuple[str, str]]:
        return await self.run(requests.list_range(ups, var))

    async def list_client(self, ups: str) -> list[str]:
        return await self.run(requests.list_client(ups))

    async def get_var(self, ups: str, var: str) -> str:
        return await self.run(requests.get_var(ups, var))

    async def get_type(self, ups: str, var: str) -> VarType:
        return await self.run(requests.get_type(ups, var))

    async def get_desc(self, ups: str, var: str) -> str:
        return await self.run(requests.get_desc(ups, var))

    async def get_cmddesc(self, ups: str, cmd: str) -> str:
        return await self.run(requests.get_cmddesc(ups, cmd))

    async def get_upsdesc(self, ups: str) -> str:
        return await self.run(requests.get_upsdesc(ups))

    async def get_numlogins(self, ups: str) -> int:
        return await self.run(requests.get_numlogins(ups))

    async def set_var(self, ups: str, var: str, value: str) -> str | None:
        return await self.run(requests.set_var(ups, var, value))

    async def instcmd(self, ups: str, cmd: str, param: str | None = None) -> str | None:
        return await self.run(requests.instcmd(ups, cmd, param))

    async def set_tracking(self, on: bool = True) -> str:
        return await self.run(requests.set_tracking(on))

    async def get_tracking(self, tracking_id: str | None = None) -> str:
        try:
            return await self.run(requests.get_tracking(tracking_id))
        except NutError as exc:
            if tracking_id is not None and exc.code in TRACKING_RESULTS:
                return exc.code
            raise

    async def wait_tracking(self, tracking_id: str, timeout: float = 10.0, interval: float = 1.0) -> str:
        import asyncio

        loop = asyncio.get_running_loop()
        start = loop.time()
        status = "PENDING"
        while loop.time() - start < timeout:
            status = await self.get_tracking(tracking_id)
            if status != "PENDING":
                break
            await asyncio.sleep(max(0.0, min(interval, timeout - (loop.time() - start))))
        return status
