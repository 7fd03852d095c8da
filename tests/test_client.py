"""nutlite.client: the sans-IO protocol core, the sync and asyncio clients.

* unit tests of the core (addresses, line reading, every reply kind, ERR mapping) -- no network;
* the I/O layer against small in-process servers (disconnects, garbage, silence, STARTTLS);
* both clients against Debian's real upsd 2.8.0 with dummy-ups and a scripted driver (interop).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nutenv import DATA_DIR, FakeDriver, NutEnv, UpsSpec, free_port, require_real_nut

from nutlite.client import (
    AddressError,
    AsyncNutClient,
    Exchange,
    LineReader,
    NutClient,
    NutConnectionError,
    NutError,
    NutProtocolError,
    NutTimeoutError,
    UpsAddress,
    VarType,
    build_request,
    error_message,
    parse_upsname,
    requests,
    split_hostport,
    tracking_outcome,
)
from nutlite.parseconf import quote

# --------------------------------------------------------------------------------------------
# Addresses (expected results observed with Debian's upsc 2.8.0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ups", UpsAddress("ups", "localhost", 3493)),
        ("ups@host", UpsAddress("ups", "host", 3493)),
        ("ups@127.0.0.1:13494", UpsAddress("ups", "127.0.0.1", 13494)),
        ("ups@127.0.0.1:13494:abc", UpsAddress("ups", "127.0.0.1", 13494)),  # strtol: trailing junk ignored
        ("ups@[::1]:3495", UpsAddress("ups", "::1", 3495)),
        ("ups@[::1]", UpsAddress("ups", "::1", 3493)),
        ("ups@[127.0.0.1]:1", UpsAddress("ups", "127.0.0.1", 1)),
        ("@host", UpsAddress("", "host", 3493)),
        ("a@b@c", UpsAddress("a", "b@c", 3493)),
    ],
)
def test_parse_upsname(text: str, expected: UpsAddress) -> None:
    assert parse_upsname(text) == expected


@pytest.mark.parametrize(
    "text, message, where",
    [
        ("", "can't parse empty string", "upscli_splitname"),
        ("ups@", "can't parse empty string", "upscli_splitaddr"),
        ("ups@host:", "no port specified after ':' separator", "upscli_splitaddr"),
        ("ups@host:abc", "no port specified after ':' separator", "upscli_splitaddr"),
        ("ups@host:0", "no port specified after ':' separator", "upscli_splitaddr"),
        ("ups@host:70000", "no port specified after ':' separator", "upscli_splitaddr"),
        ("ups@::1", "no port specified after ':' separator", "upscli_splitaddr"),
        ("ups@[::1", "missing closing bracket in [domain literal]", "upscli_splitaddr"),
    ],
)
def test_parse_upsname_errors(text: str, message: str, where: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_upsname(text)
    assert info.value.message == message
    assert info.value.where == where


def test_split_hostport_and_str() -> None:
    assert split_hostport("localhost") == ("localhost", 3493)
    assert split_hostport("h:1234") == ("h", 1234)
    assert split_hostport("[fe80::1]:99") == ("fe80::1", 99)
    assert str(UpsAddress("u", "::1", 3493)) == "u@[::1]:3493"
    assert str(UpsAddress(None, "h", 1)) == "h:1"
    assert parse_upsname("u", default_host="other", default_port=9) == UpsAddress("u", "other", 9)


# --------------------------------------------------------------------------------------------
# Line reading and request building


def test_line_reader_pieces_and_crlf() -> None:
    r = LineReader()
    r.feed(b"VAR u x ")
    assert r.next_line() is None
    r.feed(b'"1"\r\nOK\nPART')
    assert r.next_line() == 'VAR u x "1"'
    assert r.next_line() == "OK"
    assert r.next_line() is None
    assert r.pending == b"PART"


def test_line_reader_refuses_endless_line() -> None:
    r = LineReader(max_line=10)
    r.feed(b"x" * 11)
    with pytest.raises(NutProtocolError):
        r.next_line()


def test_build_request_quoting() -> None:
    assert requests.get_var("ups", "battery.charge").line == "GET VAR ups battery.charge"
    assert requests.set_var("ups", "ups.id", 'a "b" #c\\').line == r'SET VAR ups ups.id "a \"b\" \#c\\"'
    assert (
        requests.set_var("ups", "ups.id", "plain").line == 'SET VAR ups ups.id "plain"'
    )  # as Debian's upsrw
    assert requests.set_var("ups", "ups.id", "").line == 'SET VAR ups ups.id ""'
    assert requests.instcmd("ups", "load.off", "5").line == "INSTCMD ups load.off 5"  # as Debian's upscmd
    assert requests.instcmd("ups", "x.y", "a b").line == 'INSTCMD ups x.y "a b"'
    assert requests.username("a user").line == 'USERNAME "a user"'
    assert requests.password("pw").line == "PASSWORD pw"
    assert requests.list_enum("ups", "input.sensitivity").line == "LIST ENUM ups input.sensitivity"
    assert requests.get_tracking("ID").line == "GET TRACKING ID"
    assert requests.get_tracking().line == "GET TRACKING"
    assert requests.set_tracking(False).line == "SET TRACKING OFF"
    assert build_request(["LIST", "UPS"]) == "LIST UPS"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_request_rejects_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError):
        requests.set_var("ups", "ups.id", bad)
    with pytest.raises(ValueError):
        requests.raw("GET VAR " + bad)


def test_request_is_ascii_only() -> None:
    with pytest.raises(ValueError):
        _ = requests.set_var("ups", "ups.id", "é").data


# --------------------------------------------------------------------------------------------
# Reply parsing (sans-IO)


def feed(ex: Exchange[object], *lines: str) -> object:
    for i, line in enumerate(lines):
        done = ex.feed(line)
        assert done == (i == len(lines) - 1), f"completion after line {i}: {line!r}"
    return ex.result()


def test_single_line_replies() -> None:
    assert (
        feed(requests.get_var("u", "ups.mfr"), r'VAR u ups.mfr "Fake \"Co\" \#1 \\ x"') == 'Fake "Co" #1 \\ x'
    )
    assert (
        feed(requests.get_desc("u", "ups.id"), 'DESC u ups.id "UPS system identifier"')
        == "UPS system identifier"
    )
    assert feed(requests.get_cmddesc("u", "load.off"), 'CMDDESC u load.off "Turn off"') == "Turn off"
    assert feed(requests.get_upsdesc("u"), 'UPSDESC u "Test UPS"') == "Test UPS"
    assert feed(requests.get_numlogins("u"), "NUMLOGINS u 2") == 2
    assert feed(requests.ver(), "Network UPS Tools upsd 2.8.0 - http://www.networkupstools.org/").startswith(
        "Network UPS Tools upsd 2.8.0"
    )
    assert feed(requests.netver(), "1.3") == "1.3"
    assert feed(requests.help(), "Commands: HELP VER GET LIST").startswith("Commands:")
    assert feed(requests.login("u"), "OK") == "OK"
    assert feed(requests.primary("u"), "OK PRIMARY-GRANTED") == "OK PRIMARY-GRANTED"
    assert feed(requests.fsd("u"), "OK FSD-SET") == "OK FSD-SET"
    assert feed(requests.logout(), "OK Goodbye") == "OK Goodbye"
    assert feed(requests.logout(), "Goodbye...") == "Goodbye..."  # older upsd
    assert feed(requests.raw("GET VAR u x"), 'VAR u x "1"') == 'VAR u x "1"'


def test_type_replies() -> None:
    t = feed(requests.get_type("u", "ups.id"), "TYPE u ups.id RW STRING:8")
    assert isinstance(t, VarType)
    assert (t.rw, t.string, t.maxlen, t.number, t.enum, t.range) == (True, True, 8, False, False, False)
    assert str(t) == "RW STRING:8"
    t = feed(requests.get_type("u", "x"), "TYPE u x RW ENUM RANGE NUMBER")
    assert isinstance(t, VarType)
    assert (t.rw, t.enum, t.range, t.number, t.maxlen) == (True, True, True, True, None)
    t = feed(requests.get_type("u", "x"), "TYPE u x NUMBER")
    assert isinstance(t, VarType) and not t.rw and t.number


def test_set_and_instcmd_replies() -> None:
    assert feed(requests.set_var("u", "v", "1"), "OK") is None
    tid = "2DDC5036-F665-4D29-BE4C-0374D091D263"
    assert feed(requests.set_var("u", "v", "1"), f"OK TRACKING {tid}") == tid
    assert feed(requests.instcmd("u", "c.d"), f"OK TRACKING {tid}") == tid
    assert feed(requests.instcmd("u", "c.d"), "OK") is None
    with pytest.raises(NutProtocolError):
        feed(requests.instcmd("u", "c.d"), "OK SOMETHING ELSE")


@pytest.mark.parametrize("status", ["PENDING", "SUCCESS"])
def test_tracking_status(status: str) -> None:
    assert feed(requests.get_tracking("id"), status) == status


def test_tracking_outcome_text() -> None:
    assert tracking_outcome("SUCCESS") == "SUCCESS"
    assert tracking_outcome("FAILED") == "ERR FAILED"


def test_list_replies() -> None:
    assert feed(
        requests.list_ups(),
        "BEGIN LIST UPS",
        'UPS dummy "Test UPS"',
        'UPS other "Description unavailable"',
        "END LIST UPS",
    ) == {"dummy": "Test UPS", "other": "Description unavailable"}
    assert feed(
        requests.list_var("Dummy"),
        "BEGIN LIST VAR Dummy",
        'VAR Dummy battery.charge "100"',
        r'VAR Dummy ups.mfr "a \"q\""',
        "END LIST VAR Dummy",
    ) == {"battery.charge": "100", "ups.mfr": 'a "q"'}
    assert feed(requests.list_rw("u"), "BEGIN LIST RW u", 'RW u ups.id "abc"', "END LIST RW u") == {
        "ups.id": "abc"
    }
    assert feed(requests.list_cmd("u"), "BEGIN LIST CMD u", "CMD u a.b", "CMD u c.d", "END LIST CMD u") == [
        "a.b",
        "c.d",
    ]
    assert feed(
        requests.list_enum("u", "v"),
        "BEGIN LIST ENUM u v",
        'ENUM u v "x y"',
        'ENUM u v "z"',
        "END LIST ENUM u v",
    ) == ["x y", "z"]
    assert feed(
        requests.list_range("u", "v"),
        "BEGIN LIST RANGE u v",
        'RANGE u v "0" "60"',
        'RANGE u v "120" "180"',
        "END LIST RANGE u v",
    ) == [("0", "60"), ("120", "180")]
    assert feed(
        requests.list_client("u"), "BEGIN LIST CLIENT u", "CLIENT u 127.0.0.1", "END LIST CLIENT u"
    ) == ["127.0.0.1"]
    assert feed(requests.list_var("u"), "BEGIN LIST VAR u", "END LIST VAR u") == {}
    assert feed(requests.raw_list("VAR u"), "BEGIN LIST VAR u", 'VAR u a "1"', "END LIST VAR u") == [
        ["VAR", "u", "a", "1"]
    ]


def test_list_header_echo_is_case_insensitive() -> None:
    # upsd echoes the name as typed; a server that answers in another case is still understood.
    assert feed(requests.list_cmd("ups"), "BEGIN LIST CMD UPS", "CMD UPS a.b", "END LIST CMD UPS") == ["a.b"]


@pytest.mark.parametrize(
    "make, lines",
    [
        (lambda: requests.list_var("u"), ["BEGIN LIST VAR other"]),
        (lambda: requests.list_var("u"), ["HELLO WORLD"]),
        (lambda: requests.list_var("u"), ["BEGIN LIST VAR u", "CMD u x", "END LIST VAR u"]),
        (lambda: requests.list_var("u"), ["BEGIN LIST VAR u", 'VAR u "unterminated']),
        (
            lambda: requests.list_range("u", "v"),
            ["BEGIN LIST RANGE u v", 'RANGE u v "1"', "END LIST RANGE u v"],
        ),
        (lambda: requests.get_var("u", "v"), ["HELLO WORLD"]),
        (lambda: requests.get_var("u", "v"), ['VAR u v "unterminated']),
        (lambda: requests.get_var("u", "v"), ["VAR u v"]),
        (lambda: requests.get_numlogins("u"), ["NUMLOGINS u many"]),
        (lambda: requests.get_type("u", "v"), ["DESC u v x"]),
        (lambda: requests.login("u"), ["Goodbye"]),
        (lambda: requests.get_tracking("id"), ["MAYBE"]),
    ],
)
def test_protocol_errors(make: Callable[[], Exchange[object]], lines: list[str]) -> None:
    ex = make()
    with pytest.raises(NutProtocolError) as info:
        for line in lines:
            if ex.feed(line):
                break
        ex.result()
    assert info.value.message == "Protocol error"


def test_feed_after_done_is_an_error() -> None:
    ex = requests.login("u")
    assert ex.feed("OK")
    with pytest.raises(NutProtocolError):
        ex.feed("OK")


# Codes and texts as Debian's upsc 2.8.0 prints them (checked against the real binary).
DEBIAN_MESSAGES = {
    "ACCESS-DENIED": "Access denied",
    "UNKNOWN-UPS": "Unknown UPS",
    "VAR-NOT-SUPPORTED": "Variable not supported by UPS",
    "CMD-NOT-SUPPORTED": "Instant command not supported",
    "INVALID-ARGUMENT": "Unknown error",
    "INSTCMD-FAILED": "Instant command failed",
    "SET-FAILED": "Set command failed",
    "READONLY": "Read-only variable",
    "TOO-LONG": "New value is too long",
    "FEATURE-NOT-SUPPORTED": "Unknown error",
    "FEATURE-NOT-CONFIGURED": "Unknown error",
    "ALREADY-SSL-MODE": "Unknown error",
    "DRIVER-NOT-CONNECTED": "Driver not connected",
    "DATA-STALE": "Data stale",
    "ALREADY-LOGGED-IN": "Already logged in",
    "INVALID-PASSWORD": "Invalid password",
    "ALREADY-SET-PASSWORD": "Already set password",
    "INVALID-USERNAME": "Invalid username",
    "ALREADY-SET-USERNAME": "Already set username",
    "USERNAME-REQUIRED": "Username required",
    "PASSWORD-REQUIRED": "Password required",
    "UNKNOWN-COMMAND": "Unknown command",
    "INVALID-VALUE": "Invalid value for variable",
    "VAR-UNKNOWN": "Variable unknown",
    "UNKNOWN-TYPE": "Unknown variable type",
    "UNKNOWN-INSTCMD": "Unknown instant command",
    "MISSING-ARGUMENT": "Missing argument",
    "PASSWORD-INCORRECT": "Password incorrect",
    "UNKNOWN-VAR": "Unknown variable",
    "SOMETHING-NEW": "Unknown error",
}


@pytest.mark.parametrize("code, message", sorted(DEBIAN_MESSAGES.items()))
def test_err_mapping(code: str, message: str) -> None:
    assert error_message(code) == message
    ex = requests.instcmd("u", "c.d")
    ex.feed(f"ERR {code}")
    with pytest.raises(NutError) as info:
        ex.result()
    assert (info.value.code, info.value.message, info.value.reply) == (code, message, f"ERR {code}")


def test_err_extra_words_and_contexts() -> None:
    ex = requests.get_var("u", "v")
    ex.feed('ERR ACCESS-DENIED "SSL handshake failed"')
    with pytest.raises(NutError) as info:
        ex.result()
    assert info.value.extra == ["SSL handshake failed"]
    # An old upsd that does not know a query: NUT's library words it per kind of query.
    for make, text in [
        (lambda: requests.get_var("u", "v"), "variable unknown (old upsd detected)"),
        (lambda: requests.list_var("u"), "upsd is too old to support this query"),
        (lambda: requests.instcmd("u", "c.d"), "Unknown command"),
    ]:
        ex = make()
        assert ex.feed("ERR UNKNOWN-COMMAND")
        with pytest.raises(NutError) as info:
            ex.result()
        assert info.value.message == text


def test_list_error_instead_of_begin() -> None:
    ex = requests.list_var("nope")
    assert ex.feed("ERR UNKNOWN-UPS")
    with pytest.raises(NutError, match="Unknown UPS"):
        ex.result()


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60))
def test_values_round_trip(value: str) -> None:
    """Any printable-ASCII value upsd sends (pconf_encode'd, quoted) is returned unchanged."""
    ex = requests.get_var("ups", "some.var")
    ex.feed(f"VAR ups some.var {quote(value)}")
    assert ex.result() == value
    ex = requests.list_enum("ups", "v")
    for line in ("BEGIN LIST ENUM ups v", f"ENUM ups v {quote(value)}", "END LIST ENUM ups v"):
        ex.feed(line)
    assert ex.result() == [value]


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60))
def test_set_var_request_round_trip(value: str) -> None:
    """What SET VAR sends tokenizes (as upsd does) back to exactly the value."""
    from nutlite.parseconf import split_line

    assert split_line(requests.set_var("ups", "ups.id", value).line) == ["SET", "VAR", "ups", "ups.id", value]


# --------------------------------------------------------------------------------------------
# The I/O layer against small in-process servers


Handler = Callable[[socket.socket, str], bool | None]  # return True to stop serving this client


class LineServer:
    """A threaded TCP server on 127.0.0.1 that calls ``handler(conn, line)`` for each request line."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._conns: list[socket.socket] = []

    def __enter__(self) -> LineServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self._thread.join(5)
        self.sock.close()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            self._conns.append(conn)
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode().rstrip("\r")
                    self.received.append(line)
                    if line == "STARTTLS" and self.tls is not None:
                        conn.sendall(b"OK STARTTLS\n")
                        conn = self.tls.wrap_socket(conn, server_side=True)
                        self._conns.append(conn)
                        continue
                    if line == "LOGOUT":
                        conn.sendall(b"OK Goodbye\n")
                        conn.close()
                        return
                    if self.handler(conn, line):
                        conn.close()
                        return


def answer(replies: dict[str, str]) -> Handler:
    def handler(conn: socket.socket, line: str) -> None:
        conn.sendall(replies.get(line, "ERR UNKNOWN-COMMAND\n").encode())

    return handler


def closing(conn: socket.socket, line: str) -> bool:
    return True


def garbage(conn: socket.socket, line: str) -> None:
    conn.sendall(b"HELLO WORLD\n")


def silent(conn: socket.socket, line: str) -> None:
    return None


def partial_list(conn: socket.socket, line: str) -> bool:
    conn.sendall(b'BEGIN LIST UPS\nUPS a "b"\n')
    return True


def closed_port() -> int:
    return free_port()


def test_sync_basic_and_segmented_replies() -> None:
    def handler(conn: socket.socket, line: str) -> None:
        if line == "LIST UPS":
            for chunk in (b"BEGIN LIST U", b'PS\nUPS a "de', b'sc"\r\nUPS b "x"\n', b"END LIST UPS\n"):
                conn.sendall(chunk)
                time.sleep(0.01)
        else:
            conn.sendall(
                b'VAR a ups.status "OL"\nNUMLOGINS a 1\n' if line == "GET VAR a ups.status" else b"OK\n"
            )

    with LineServer(handler) as srv, NutClient("127.0.0.1", srv.port, timeout=2) as c:
        assert c.list_ups() == {"a": "desc", "b": "x"}
        assert c.get_var("a", "ups.status") == "OL"
        # The second line of that segment is the answer to the next request.
        assert c.get_numlogins("a") == 1
    deadline = time.monotonic() + 3  # the server thread records what it got in its own time
    while srv.received[-1:] != ["LOGOUT"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.received[-1] == "LOGOUT"  # closing says goodbye


def test_sync_connection_errors() -> None:
    with pytest.raises(NutConnectionError, match="^Connection failure: Connection refused$"):
        NutClient("127.0.0.1", closed_port()).connect()
    with pytest.raises(NutConnectionError, match="^No such host$"):
        NutClient("nonexistent.invalid", 3493).connect()


def test_sync_server_closes() -> None:
    with LineServer(closing) as srv:
        c = NutClient("127.0.0.1", srv.port, timeout=2)
        with pytest.raises(NutConnectionError) as info:
            c.get_var("u", "ups.status")
        assert info.value.message == "Server disconnected"
        assert not c.connected
        with LineServer(answer({"VER": "V\n"})) as srv2:
            c.port = srv2.port
            assert c.ver() == "V"  # reconnects on next use


def test_sync_partial_list_is_an_error() -> None:
    with LineServer(partial_list) as srv, pytest.raises(NutConnectionError, match="Server disconnected"):
        NutClient("127.0.0.1", srv.port, timeout=2).list_ups()


def test_sync_garbage() -> None:
    with LineServer(garbage) as srv:
        c = NutClient("127.0.0.1", srv.port, timeout=2)
        with pytest.raises(NutProtocolError):
            c.list_ups()
        assert not c.connected  # state unknown: dropped


def test_sync_timeout_is_bounded() -> None:
    with LineServer(silent) as srv:
        c = NutClient("127.0.0.1", srv.port, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(NutTimeoutError):
            c.get_var("u", "ups.status")
        assert time.monotonic() - start < 2.5


def test_sync_trickling_server_cannot_extend_the_timeout() -> None:
    def trickle(conn: socket.socket, line: str) -> None:
        conn.sendall(b"BEGIN LIST UPS\n")
        for i in range(40):
            conn.sendall(f'UPS u{i} "x"\n'.encode())
            time.sleep(0.05)

    with LineServer(trickle) as srv:
        start = time.monotonic()
        with pytest.raises(NutTimeoutError):
            NutClient("127.0.0.1", srv.port, timeout=0.5).list_ups()
        assert time.monotonic() - start < 2


def test_sync_primary_falls_back_to_master() -> None:
    with LineServer(answer({"PRIMARY u": "ERR UNKNOWN-COMMAND\n", "MASTER u": "OK MASTER-GRANTED\n"})) as srv:
        with NutClient("127.0.0.1", srv.port) as c:
            assert c.primary("u") == "OK MASTER-GRANTED"
    assert srv.received[:2] == ["PRIMARY u", "MASTER u"]


def test_sync_tracking_wait() -> None:
    polls: list[float] = []

    def handler(conn: socket.socket, line: str) -> None:
        if line.startswith("GET TRACKING"):
            polls.append(time.monotonic())
            conn.sendall(b"PENDING\n" if len(polls) < 3 else b"ERR FAILED\n")
        else:
            conn.sendall(b"OK TRACKING ID1\n" if line.startswith("INSTCMD") else b"OK\n")

    with LineServer(handler) as srv, NutClient("127.0.0.1", srv.port) as c:
        c.set_tracking(True)
        tid = c.instcmd("u", "load.off")
        assert tid == "ID1"
        assert c.wait_tracking(tid, timeout=5, interval=0.05) == "FAILED"
        assert len(polls) == 3
        polls.clear()
        assert c.wait_tracking(tid, timeout=0.1, interval=0.05) in ("PENDING", "FAILED")
        assert c.wait_tracking(tid, timeout=0) == "PENDING"  # no time: no poll, like upscmd -t 0


def test_get_tracking_errors() -> None:
    replies = {"GET TRACKING a": "ERR UNKNOWN\n", "GET TRACKING b": "ERR FEATURE-NOT-CONFIGURED\n"}
    with LineServer(answer(replies)) as srv, NutClient("127.0.0.1", srv.port) as c:
        assert c.get_tracking("a") == "UNKNOWN"
        with pytest.raises(NutError) as info:
            c.get_tracking("b")
        assert info.value.code == "FEATURE-NOT-CONFIGURED"


def run_async(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_async_basic_and_errors() -> None:
    replies = {
        "VER": "Network UPS Tools upsd x - y\n",
        "LIST UPS": 'BEGIN LIST UPS\nUPS a "d"\nEND LIST UPS\n',
        "GET VAR a nope.x": "ERR VAR-NOT-SUPPORTED\n",
    }

    async def main(port: int) -> None:
        async with AsyncNutClient("127.0.0.1", port, timeout=2) as c:
            assert await c.ver() == "Network UPS Tools upsd x - y"
            # concurrent requests on one connection are serialized
            got = await asyncio.gather(c.list_ups(), c.ver(), c.list_ups())
            assert got == [{"a": "d"}, "Network UPS Tools upsd x - y", {"a": "d"}]
            with pytest.raises(NutError) as info:
                await c.get_var("a", "nope.x")
            assert info.value.message == "Variable not supported by UPS"
            assert c.connected

    with LineServer(answer(replies)) as srv:
        run_async(main(srv.port))
    assert srv.received[-1] == "LOGOUT"


def test_async_connection_problems() -> None:
    async def expect(port: int, exc: type[Exception], text: str, timeout: float = 2) -> None:
        c = AsyncNutClient("127.0.0.1", port, timeout=timeout)
        with pytest.raises(exc) as info:
            await c.list_ups()
        assert text in info.value.message  # type: ignore[attr-defined]
        assert not c.connected

    run_async(expect(closed_port(), NutConnectionError, "Connection failure: Connection refused"))
    for handler, exc, text in [
        (closing, NutConnectionError, "Server disconnected"),
        (partial_list, NutConnectionError, "Server disconnected"),
        (garbage, NutProtocolError, "Protocol error"),
        (silent, NutTimeoutError, "Server disconnected"),
    ]:
        with LineServer(handler) as srv:
            start = time.monotonic()
            run_async(expect(srv.port, exc, text, timeout=0.5))
            assert time.monotonic() - start < 2.5


def test_async_no_such_host() -> None:
    async def main() -> None:
        with pytest.raises(NutConnectionError, match="^No such host$"):
            await AsyncNutClient("nonexistent.invalid", 3493).connect()

    run_async(main())


def test_async_tracking_and_primary() -> None:
    state = {"polls": 0}

    def handler(conn: socket.socket, line: str) -> None:
        if line.startswith("GET TRACKING"):
            state["polls"] += 1
            conn.sendall(b"PENDING\n" if state["polls"] < 2 else b"SUCCESS\n")
        elif line == "PRIMARY u":
            conn.sendall(b"ERR UNKNOWN-COMMAND\n")
        elif line.startswith("SET VAR"):
            conn.sendall(b"OK TRACKING T\n")
        else:
            conn.sendall(b"OK MASTER-GRANTED\n" if line == "MASTER u" else b"OK\n")

    async def main(port: int) -> None:
        async with AsyncNutClient("127.0.0.1", port) as c:
            assert await c.primary("u") == "OK MASTER-GRANTED"
            assert await c.set_var("u", "ups.id", "x") == "T"
            assert await c.wait_tracking("T", timeout=5, interval=0.05) == "SUCCESS"

    with LineServer(handler) as srv:
        run_async(main(srv.port))
    assert 'SET VAR u ups.id "x"' in srv.received


# --- STARTTLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_starttls_sync(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with LineServer(answer({"VER": "secret ver\n"}), tls=server_context(cert, key)) as srv:
        with NutClient("127.0.0.1", srv.port) as c:
            c.starttls(cafile=str(cert))
            assert c.tls
            assert c.ver() == "secret ver"
        # Verification on: a certificate we do not trust fails the handshake.
        c = NutClient("127.0.0.1", srv.port)
        with pytest.raises(NutConnectionError, match="TLS handshake failed"):
            c.starttls()
        assert not c.connected
        with NutClient("127.0.0.1", srv.port) as c:
            c.starttls(verify=False)
            assert c.ver() == "secret ver"


def test_starttls_async(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files

    async def main(port: int) -> None:
        async with AsyncNutClient("127.0.0.1", port) as c:
            await c.starttls(cafile=str(cert))
            assert c.tls
            assert await c.ver() == "secret ver"

    with LineServer(answer({"VER": "secret ver\n"}), tls=server_context(cert, key)) as srv:
        run_async(main(srv.port))


def test_starttls_refused() -> None:
    with LineServer(answer({"STARTTLS": "ERR FEATURE-NOT-CONFIGURED\n", "VER": "v\n"})) as srv:
        with NutClient("127.0.0.1", srv.port) as c:
            with pytest.raises(NutError) as info:
                c.starttls()
            assert info.value.code == "FEATURE-NOT-CONFIGURED"
            assert c.ver() == "v"  # and the connection goes on in clear text, as NUT's clients do


# --------------------------------------------------------------------------------------------
# Against Debian's real upsd 2.8.0 (interop)

TID_RE = r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$"


def make_fake() -> FakeDriver:
    fake = FakeDriver("unused")
    fake.setvar("battery.charge", "90")
    fake.setvar("input.sensitivity", "H", flags=["RW"], enums=["H", "M", "L"])
    fake.setvar("ups.delay.shutdown", "20", flags=["RW"], ranges=[(0, 60), (120, 180)])
    fake.setvar("ups.id", "abc", flags=["RW", "STRING"], aux=8)
    fake.setvar("ups.mfr", 'Fake "Co" #1 \\ x')
    fake.setvar("ups.status", "OL")
    fake.addcmd("load.off", "test.battery.start", "fake.cmd")
    return fake


def spare_fake() -> FakeDriver:
    fake = FakeDriver("unused")
    fake.setvar("ups.status", "OL")
    return fake


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NutEnv]:
    require_real_nut()
    base = tmp_path_factory.mktemp("nut")
    env = NutEnv(
        base,
        [
            UpsSpec("dummy", port="conformance.dev", desc="Test UPS"),
            UpsSpec("fake", launch="fake", fake=make_fake(), desc='Fake "UPS"'),
            UpsSpec("nodriver", launch="none"),
            UpsSpec("spare", launch="fake", fake=spare_fake()),
        ],
        driver_flavour="debian",
        upsd_flavour="debian",
        files={"conformance.dev": DATA_DIR / "conformance.dev"},
    )
    env.start()
    try:
        yield env
    finally:
        env.stop()


def fake_of(env: NutEnv) -> FakeDriver:
    fake = env.upses["fake"].fake
    assert fake is not None
    return fake


def raw_list_var(env: NutEnv, ups: str) -> dict[str, str]:
    """LIST VAR read with the test harness's own minimal client (an independent parser)."""
    from nutenv import nut_split

    with env.connect() as conn:
        lines = conn.request_list(f"LIST VAR {ups}")
    return {nut_split(ln)[2]: nut_split(ln)[3] for ln in lines[1:-1]}


@pytest.mark.interop
def test_sync_client_against_debian_upsd(debian: NutEnv) -> None:
    with NutClient("127.0.0.1", debian.port) as c:
        assert c.ver().startswith("Network UPS Tools upsd 2.8.0 - ")
        assert c.netver() == "1.3"
        assert c.help().startswith("Commands: HELP VER GET LIST")
        assert c.list_ups() == {
            "dummy": "Test UPS",
            "fake": 'Fake "UPS"',
            "nodriver": "Description unavailable",
            "spare": "Description unavailable",
        }
        assert c.get_upsdesc("dummy") == "Test UPS"
        assert c.list_var("dummy") == raw_list_var(debian, "dummy")
        values = c.list_var("dummy")
        assert values["ups.id"] == "hash # tag" and values["input.sensitivity"] == 'say "hi"'
        assert values["ups.mfr.date"] == "back\\slash"
        assert c.get_var("fake", "ups.mfr") == 'Fake "Co" #1 \\ x'
        assert c.get_var("FAKE", "UPS.STATUS") == "OL"  # upsd looks names up case-insensitively
        assert c.list_rw("fake") == {"input.sensitivity": "H", "ups.delay.shutdown": "20", "ups.id": "abc"}
        assert str(c.get_type("fake", "ups.id")) == "RW STRING:8"
        assert str(c.get_type("fake", "input.sensitivity")) == "RW ENUM NUMBER"
        assert str(c.get_type("fake", "ups.delay.shutdown")) == "RW RANGE NUMBER"
        assert c.get_type("fake", "battery.charge").words == ("NUMBER",)
        assert c.list_enum("fake", "input.sensitivity") == ["H", "M", "L"]
        assert c.list_range("fake", "ups.delay.shutdown") == [("0", "60"), ("120", "180")]
        assert c.get_desc("fake", "ups.id") == "UPS system identifier"
        assert sorted(c.list_cmd("fake")) == ["fake.cmd", "load.off", "test.battery.start"]
        assert c.get_cmddesc("fake", "load.off") == "Turn off the load immediately"
        assert c.get_cmddesc("fake", "fake.cmd") == "Description unavailable"
        assert c.get_numlogins("fake") == 0
        assert c.get_tracking() == "OFF"
        for call, code in [
            (lambda: c.list_var("nope"), "UNKNOWN-UPS"),
            (lambda: c.get_var("dummy", "nope.var"), "VAR-NOT-SUPPORTED"),
            (lambda: c.get_var("nodriver", "ups.status"), "DRIVER-NOT-CONNECTED"),
            (lambda: c.instcmd("fake", "load.off"), "USERNAME-REQUIRED"),
            (lambda: c.get_tracking("x"), "FEATURE-NOT-CONFIGURED"),
        ]:
            with pytest.raises(NutError) as info:
                call()
            assert info.value.code == code
        assert c.connected  # ERR replies leave the connection usable


@pytest.mark.interop
def test_sync_client_writes_against_debian_upsd(debian: NutEnv) -> None:
    fake = fake_of(debian)
    with NutClient("127.0.0.1", debian.port) as c:
        c.username("nobody")
        c.password("nobodypw")
        with pytest.raises(NutError, match="Access denied"):
            c.set_var("fake", "ups.id", "x")
    with NutClient("127.0.0.1", debian.port) as c:
        assert c.username("admin") == "OK"
        assert c.password("adminpw") == "OK"
        with pytest.raises(NutError) as info:
            c.username("again")
        assert info.value.code == "ALREADY-SET-USERNAME"
        assert c.set_var("fake", "ups.id", 'a"#b') is None
        assert c.instcmd("fake", "test.battery.start") is None
        for value, code in [("waytoolongvalue", "TOO-LONG")]:
            with pytest.raises(NutError) as info:
                c.set_var("fake", "ups.id", value)
            assert info.value.code == code
        with pytest.raises(NutError, match="Invalid value for variable"):
            c.set_var("fake", "input.sensitivity", "Q")
        with pytest.raises(NutError, match="Read-only variable"):
            c.set_var("fake", "ups.mfr", "x")
        with pytest.raises(NutError, match="Instant command not supported"):
            c.instcmd("fake", "no.such.cmd")
        assert c.set_tracking(True) == "OK"
        assert c.get_tracking() == "ON"
        fake.tracking_result = 0
        tid = c.instcmd("fake", "load.off", "5")
        assert tid is not None
        import re

        assert re.match(TID_RE, tid)
        assert c.wait_tracking(tid, timeout=5, interval=0.1) == "SUCCESS"
        fake.tracking_result = 3
        tid = c.set_var("fake", "ups.delay.shutdown", "30")
        assert tid is not None
        assert c.wait_tracking(tid, timeout=5, interval=0.1) == "FAILED"
        fake.tracking_result = None
        tid = c.instcmd("fake", "fake.cmd")
        assert tid is not None and c.get_tracking(tid) == "PENDING"
        fake.tracking_result = 0
    assert 'SET ups.id "a\\"\\#b"' in fake.received
    assert any(r.startswith("INSTCMD load.off 5 TRACKING") for r in fake.received)


@pytest.mark.interop
def test_sync_client_upsmon_sequence_against_debian_upsd(debian: NutEnv) -> None:
    with NutClient("127.0.0.1", debian.port) as c:
        c.username("monpri")
        c.password("pripw")
        assert c.login("dummy") == "OK"
        assert c.primary("dummy") == "OK PRIMARY-GRANTED"
        with pytest.raises(NutError, match="Already logged in"):
            c.login("dummy")
        assert c.get_numlogins("dummy") == 1
        assert c.list_client("dummy") == ["127.0.0.1"]
        with NutClient("127.0.0.1", debian.port) as other:
            assert other.list_client("dummy") == ["127.0.0.1"]
        assert c.logout() == "OK Goodbye"
        assert not c.connected
    deadline = time.monotonic() + 5
    with NutClient("127.0.0.1", debian.port) as c:
        while c.get_numlogins("dummy") != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get_numlogins("dummy") == 0


@pytest.mark.interop
def test_async_client_against_debian_upsd(debian: NutEnv) -> None:
    fake = fake_of(debian)

    async def main() -> None:
        async with AsyncNutClient("127.0.0.1", debian.port) as c:
            assert (await c.ver()).startswith("Network UPS Tools upsd 2.8.0")
            assert await c.netver() == "1.3"
            assert (await c.list_ups())["fake"] == 'Fake "UPS"'
            assert await c.list_var("dummy") == raw_list_var(debian, "dummy")
            assert await c.get_var("fake", "ups.mfr") == 'Fake "Co" #1 \\ x'
            assert str(await c.get_type("fake", "ups.id")) == "RW STRING:8"
            assert await c.list_enum("fake", "input.sensitivity") == ["H", "M", "L"]
            assert await c.list_range("fake", "ups.delay.shutdown") == [("0", "60"), ("120", "180")]
            assert await c.get_desc("fake", "ups.status") == "UPS status"
            assert await c.get_cmddesc("fake", "test.battery.start") == "Start a battery test"
            assert await c.get_upsdesc("nodriver") == "Unavailable"
            assert await c.get_numlogins("fake") == 0
            assert sorted(await c.list_rw("fake")) == ["input.sensitivity", "ups.delay.shutdown", "ups.id"]
            assert "load.off" in await c.list_cmd("fake")
            assert await c.list_client("fake") == []
            with pytest.raises(NutError, match="Driver not connected"):
                await c.list_var("nodriver")
            await c.username("admin")
            await c.password("adminpw")
            await c.set_tracking(True)
            fake.tracking_result = 1
            tid = await c.instcmd("fake", "test.battery.start")
            assert tid is not None
            assert await c.wait_tracking(tid, timeout=5, interval=0.1) == "UNKNOWN"
            fake.tracking_result = 0
            tid = await c.set_var("fake", "input.sensitivity", "M")
            assert tid is not None
            assert await c.wait_tracking(tid, timeout=5, interval=0.1) == "SUCCESS"
            assert await c.request("GET VAR fake battery.charge") == 'VAR fake battery.charge "90"'
            assert (await c.request_list("CMD fake"))[0][:2] == ["CMD", "fake"]
            assert await c.logout() == "OK Goodbye"
        async with AsyncNutClient("127.0.0.1", debian.port) as c:
            await c.username("monpri")
            await c.password("pripw")
            assert await c.login("spare") == "OK"
            assert await c.primary("spare") == "OK PRIMARY-GRANTED"
            assert await c.get_numlogins("spare") == 1
            assert await c.fsd("spare") == "OK FSD-SET"
            assert await c.get_var("spare", "ups.status") == "FSD OL"

    run_async(main())
