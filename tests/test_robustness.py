"""Robustness of upsd against abusive clients and misbehaving drivers.

Every test runs against nutlite's upsd + nutlite's dummy-ups driver; most also run against Debian's NUT
2.8.0 (`-k debian`) as a baseline that shows the expectations are the real upsd's behaviour.
After each abuse the server must still answer a normal request on a new connection, no reply may contain
"Traceback", and (for nutlite) the upsd log must not contain one either.
"""

from __future__ import annotations

import random
import resource
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import DATA_DIR, ConnectionClosed, NutConnection, NutEnv, dummy_ups, require_real_nut

UPS = "dummy"
STATUS_OK = f'VAR {UPS} ups.status "OL CHRG"'
MAXAGE = 3

FLAVOURS = ["nutlite", pytest.param("debian", marks=pytest.mark.interop)]


def make_env(base: Path, flavour: str, dev_text: str | None = None) -> NutEnv:
    if flavour == "debian":
        require_real_nut()
    dev = dev_text if dev_text is not None else (DATA_DIR / "conformance.dev").read_text()
    return NutEnv(
        base,
        [dummy_ups(UPS, dev="test.dev", desc="robustness")],
        driver_flavour=flavour,
        upsd_flavour=flavour,
        maxage=MAXAGE,
        files={"test.dev": dev},
    )


@pytest.fixture(params=FLAVOURS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NutEnv]:
    e = make_env(tmp_path, request.param)
    try:
        e.start()
        yield e
        assert_healthy(e)
        if e.upsd_flavour == "nutlite":
            assert "Traceback" not in e.upsd_log(), f"upsd logged a traceback:\n{e.upsd_log()[-5000:]}"
    finally:
        e.stop()


def assert_healthy(env: NutEnv, what: str = "") -> None:
    """upsd is running and answers a normal request on a new connection."""
    assert env.upsd_running(), f"upsd died {what}\n{env.logs()}"
    with env.connect() as c:
        reply = c.request(f"GET VAR {UPS} ups.status", timeout=10)
    assert reply == STATUS_OK, f"after {what}: GET VAR {UPS} ups.status -> {reply!r}\n{env.logs()}"


def check_lines(lines: list[str], what: str) -> None:
    """Reply lines must be printable ASCII NUT replies, never a traceback."""
    for line in lines:
        assert "Traceback" not in line, f"{what}: {lines!r}"
        assert all(32 <= ord(ch) < 127 for ch in line), f"{what}: non-printable reply {line!r}"


def survive(env: NutEnv, c: NutConnection, data: bytes, what: str) -> list[str]:
    """Send `data` on `c`; the same connection must still answer afterwards; returns the replies."""
    c.send_raw(data)
    lines = c.sync(UPS, what)
    check_lines(lines, what)
    assert "<closed>" not in lines, f"{what}: upsd closed the connection ({lines!r})"
    assert c.request(f"GET VAR {UPS} ups.status") == STATUS_OK, what
    return lines


# --------------------------------------------------------------------------------------------------------
# malformed input


MALFORMED: list[bytes] = [
    b"\n",
    b"   \t  \n",
    b"#\n",
    b"=\n",
    b"= = = = =\n",
    b'""\n',
    b'"" "" "" ""\n',
    b'"\n"\n',  # a quoted newline
    b"\\\n\n",  # line continuation, then empty line
    b'GET VAR dummy "a#b"\n',  # parse error: '#' in quotes
    b'"#"\n',
    b'GET VAR "#" "#" "#"\n',
    b"GET VAR dummy \\\n",  # continuation into the marker line
    b"GET VAR dummy ups.status \\\\\n",
    b"\\\\\\\\\\\\\n",
    b'\\"\\"\\"\n',
    b"GET\n",
    b"GET VAR\n",
    b"LIST\n",
    b"SET VAR dummy\n",
    b"INSTCMD\n",
    b"USERNAME\n",
    b"LOGIN\n",
    b"VER\rVER\n",
    b"\r\r\r\r\n",
    b"GET VAR dummy ups.status\r",
    b"\n",
    b"GET VAR dummy \xff\xfe\xfd\n",
    b"\xc3\xa9\xc3\xa0 \xe2\x82\xac\n",
    b"GET VAR dummy \x7f\x7f\n",
    b"\x00\x00\x00\n",
    b"GET VAR \x00dummy ups.status\n",
    b"GET DESC dummy \x1b[31mred\x1b[0m\n",
    b"LIST VAR " + b"%s%n%x" * 20 + b"\n",
    b"GET VAR ../../../../etc/passwd ups.status\n",
    b"GET VAR dummy ups.status; rm -rf /\n",
    b"LIST CMD dummy\x00\n",
]


def test_malformed_lines(env: NutEnv) -> None:
    with env.connect() as c:
        for data in MALFORMED:
            survive(env, c, data, f"after {data!r}")
    assert_healthy(env, "malformed lines")


def test_overlong_words(env: NutEnv) -> None:
    with env.connect() as c:
        for n in (511, 512, 513, 1000, 5000, 60000):
            lines = survive(env, c, b"GET VAR dummy " + b"x" * n + b"\n", f"GET VAR with a {n}-char var name")
            assert lines == ["ERR VAR-NOT-SUPPORTED"], lines
            lines = survive(env, c, b"GET VAR " + b"u" * n + b" ups.status\n", f"{n}-char UPS name")
            assert lines == ["ERR UNKNOWN-UPS"], lines
        # a long value to SET (needs login; the reply is an ERR, not a crash)
        c.request("USERNAME admin")
        c.request("PASSWORD adminpw")
        lines = survive(env, c, b"SET VAR dummy ups.mfr " + b"v" * 5000 + b"\n", "SET with a 5000-char value")
        assert lines == ["ERR TOO-LONG"], lines
    assert_healthy(env, "overlong words")


def test_too_many_words(env: NutEnv) -> None:
    with env.connect() as c:
        words = b" ".join(b"w%d" % i for i in range(33))
        lines = survive(env, c, b"GET VAR dummy ups.status " + words + b"\n", "GET VAR + 33 extra words")
        assert lines == [STATUS_OK]
        many = b" ".join([b"x"] * 5000)
        lines = survive(env, c, b"GET VAR dummy ups.status " + many + b"\n", "GET VAR + 5000 extra words")
        assert lines == [STATUS_OK]
        survive(env, c, many + b"\n", "5000 words")
        survive(env, c, b'"" ' * 3000 + b"\n", "3000 empty words")
    assert_healthy(env, "too many words")


def test_100kb_line_without_newline(env: NutEnv) -> None:
    with env.connect() as c:
        c.send_raw(b"A" * 100_000)
        # nothing may come back before the line ends
        assert c.pending(0.5) == b""
        assert_healthy(env, "an unfinished 100 kB line on another connection")
        lines = survive(env, c, b"\n", "a 100 kB line")
        assert lines == ["ERR UNKNOWN-COMMAND"], lines
        lines = survive(env, c, b"B " * 50_000 + b"\n", "a 100 kB line of 50000 words")
        assert lines == ["ERR UNKNOWN-COMMAND"], lines
    # and a client that sends 100 kB and hangs up
    s = socket.create_connection(("127.0.0.1", env.port))
    s.sendall(b"C" * 100_000)
    s.close()
    assert_healthy(env, "100 kB then hang-up")


def test_binary_garbage(env: NutEnv) -> None:
    with env.connect() as c:
        survive(env, c, bytes(range(256)) + b"\n", "bytes 0x00-0xff")
        survive(env, c, bytes(range(255, -1, -1)) + b"\n", "bytes 0xff-0x00")
        rng = random.Random(20240)
        for i in range(10):
            blob = bytes(rng.randrange(256) for _ in range(4096))
            # close any quote the garbage may have left open, then end the line
            survive(env, c, blob + b'"\n', f"random blob #{i}")
        survive(env, c, bytes(range(256)) * 40 + b'"\n', "10 kB of all byte values")
    # garbage then hang-up, several times
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", env.port))
        s.sendall(bytes(range(256)) * 4)
        s.close()
    assert_healthy(env, "binary garbage")


def test_half_sent_lines(env: NutEnv) -> None:
    with env.connect() as c:
        for piece in (b"GET VAR dum", b"my ups.st", b"at"):
            c.send_raw(piece)
            time.sleep(0.3)
            assert c.pending(0.05) == b"", "upsd answered an unfinished line"
        c.send_raw(b"us\n")
        assert c.read_line() == STATUS_OK
        # byte by byte
        for byte in b"GET VAR dummy ups.status\n":
            c.send_raw(bytes([byte]))
            time.sleep(0.005)
        assert c.read_line() == STATUS_OK
        # a quoted word and an escape split across packets
        for piece in (b'GET VAR "dum', b'my" ups\\', b".status\n"):
            c.send_raw(piece)
            time.sleep(0.2)
        assert c.read_line() == STATUS_OK
        # a boundary in the middle of the second of two requests
        c.send_raw(b"GET VAR dummy ups.status\nGET VAR du")
        assert c.read_line() == STATUS_OK
        time.sleep(0.3)
        c.send_raw(b"mmy ups.status\n")
        assert c.read_line() == STATUS_OK
        # \r\n split between packets
        c.send_raw(b"GET VAR dummy ups.status\r")
        time.sleep(0.2)
        c.send_raw(b"\n")
        assert c.read_line() == STATUS_OK
    # a client that hangs up in the middle of a line
    s = socket.create_connection(("127.0.0.1", env.port))
    s.sendall(b"GET VAR dummy ups.sta")
    s.close()
    assert_healthy(env, "half-sent lines")


def test_many_requests_in_one_packet(env: NutEnv) -> None:
    with env.connect() as c:
        c.send_raw(b"GET VAR dummy ups.status\n" * 500)
        for i in range(500):
            assert c.read_line(10) == STATUS_OK, f"reply {i}"
        c.send_raw(b"LIST VAR dummy\n" * 50)
        for _ in range(50):
            block = c.read_list(10)
            assert block[0] == "BEGIN LIST VAR dummy" and block[-1] == "END LIST VAR dummy"
    assert_healthy(env, "500 pipelined requests")


@pytest.mark.slow
def test_idle_client_is_disconnected_after_60s(env: NutEnv) -> None:
    """NUT drops a client it has not heard from for 60 s (hard-coded in upsd)."""
    idle = env.connect()
    talker = env.connect()
    start = time.monotonic()
    # a client that keeps talking is not dropped
    deadline = start + 80
    closed_at = None
    while time.monotonic() < deadline:
        assert talker.request(f"GET VAR {UPS} ups.status") == STATUS_OK
        if idle.is_closed(timeout=1.0):
            closed_at = time.monotonic() - start
            break
    assert closed_at is not None, "an idle client was not disconnected within 80 s"
    assert 55 <= closed_at <= 75, f"idle client disconnected after {closed_at:.1f} s (NUT: 60 s)"
    assert talker.request(f"GET VAR {UPS} ups.status") == STATUS_OK
    idle.close()
    talker.close()


# --------------------------------------------------------------------------------------------------------
# misbehaving drivers


def poll(c: NutConnection, line: str, seconds: float, interval: float = 0.1) -> list[tuple[float, str]]:
    """Send `line` every `interval` for `seconds`; [(time, reply)]."""
    out = []
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        out.append((now, c.request(line)))
        time.sleep(interval)
    return out


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_driver_killed_and_restarted(tmp_path: Path, flavour: str) -> None:
    """SIGKILL the driver: clients get ERR DRIVER-NOT-CONNECTED (never the old data as current), the
    connection survives, and after a restart (with new data) only the new data is served."""
    env = make_env(tmp_path, flavour)
    try:
        env.start()
        c = env.connect()
        assert c.request("GET VAR dummy battery.charge") == 'VAR dummy battery.charge "87"'
        dev = env.confpath / "test.dev"
        env.kill_driver(UPS, signal.SIGKILL)
        killed = time.monotonic()
        # the device data changes while the driver is down
        dev.write_text(
            dev.read_text().replace("battery.charge: 87", "battery.charge: 55").replace(
                "ups.status: OL CHRG", "ups.status: OB DISCHRG"
            )
        )
        allowed_down = {"ERR DRIVER-NOT-CONNECTED", "ERR DATA-STALE", "ERR VAR-NOT-SUPPORTED"}
        seen: list[tuple[float, str]] = []
        first_err = None
        while time.monotonic() - killed < 5:
            reply = c.request("GET VAR dummy battery.charge")
            seen.append((time.monotonic() - killed, reply))
            if reply.startswith("ERR"):
                first_err = first_err or time.monotonic() - killed
                assert reply in allowed_down, seen
            elif first_err is not None:
                raise AssertionError(f"old data served again after an error: {seen}")
            if reply == "ERR DRIVER-NOT-CONNECTED" and time.monotonic() - killed > 1.5:
                break
            time.sleep(0.05)
        assert first_err is not None and first_err < 2.0, f"upsd kept serving a dead driver's data: {seen}"
        assert "ERR DRIVER-NOT-CONNECTED" in [r for _, r in seen], seen
        # everything that needs the driver says so; the rest still works
        assert c.request_list("LIST VAR dummy") == ["ERR DRIVER-NOT-CONNECTED"]
        assert c.request("GET VAR dummy ups.status") == "ERR DRIVER-NOT-CONNECTED"
        assert c.request("GET UPSDESC dummy") == 'UPSDESC dummy "robustness"'
        assert_healthy_down(env)

        env.start_driver(UPS)
        restarted = time.monotonic()
        replies: list[tuple[float, str, str]] = []
        while time.monotonic() - restarted < 20:
            charge = c.request("GET VAR dummy battery.charge")
            status = c.request("GET VAR dummy ups.status")
            replies.append((time.monotonic() - restarted, charge, status))
            assert charge in allowed_down or charge == 'VAR dummy battery.charge "55"', replies
            assert status in allowed_down or status in (
                'VAR dummy ups.status "WAIT"',
                'VAR dummy ups.status "OB DISCHRG"',
            ), replies
            if charge.startswith("VAR") and status == 'VAR dummy ups.status "OB DISCHRG"':
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"no fresh data 20 s after the driver restart: {replies[-5:]}\n{env.logs()}")
        block = c.request_list("LIST VAR dummy")
        assert 'VAR dummy battery.charge "55"' in block
        assert 'VAR dummy ups.status "OB DISCHRG"' in block
        c.close()
        if flavour == "nutlite":
            assert "Traceback" not in env.upsd_log()
    finally:
        env.stop()


def assert_healthy_down(env: NutEnv) -> None:
    """upsd answers on a new connection while the driver is down."""
    assert env.upsd_running(), env.logs()
    with env.connect() as c:
        assert c.request("VER").startswith("Network UPS Tools upsd ")
        assert c.request("GET VAR dummy ups.status") == "ERR DRIVER-NOT-CONNECTED"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_driver_stops_talking(tmp_path: Path, flavour: str) -> None:
    """SIGSTOP the driver: after MAXAGE (3 s; NUT: MAXAGE + 1 s grace) clients get ERR DATA-STALE;
    after SIGCONT the data comes back."""
    env = make_env(tmp_path, flavour)
    try:
        env.start()
        c = env.connect()
        assert c.request("GET VAR dummy battery.charge") == 'VAR dummy battery.charge "87"'
        env.signal_driver(UPS, signal.SIGSTOP)
        stopped = time.monotonic()
        stale_at = None
        seen: list[tuple[float, str]] = []
        while time.monotonic() - stopped < MAXAGE + 6:
            reply = c.request("GET VAR dummy battery.charge")
            seen.append((round(time.monotonic() - stopped, 2), reply))
            if reply == "ERR DATA-STALE":
                stale_at = time.monotonic() - stopped
                break
            assert reply == 'VAR dummy battery.charge "87"', seen
            time.sleep(0.1)
        assert stale_at is not None, f"never ERR DATA-STALE after SIGSTOP of the driver: {seen[-5:]}"
        assert MAXAGE - 1 <= stale_at <= MAXAGE + 4, f"DATA-STALE after {stale_at:.1f} s (MAXAGE {MAXAGE})"
        # stays stale while the driver is stopped, for every driver-backed request
        time.sleep(1)
        assert c.request("GET VAR dummy battery.charge") == "ERR DATA-STALE"
        assert c.request("GET VAR dummy ups.status") == "ERR DATA-STALE"
        assert c.request_list("LIST VAR dummy") == ["ERR DATA-STALE"]
        assert c.request("GET UPSDESC dummy") == 'UPSDESC dummy "robustness"'
        with env.connect() as c2:
            assert c2.request("VER").startswith("Network UPS Tools upsd ")
        env.signal_driver(UPS, signal.SIGCONT)
        resumed = time.monotonic()
        while True:
            reply = c.request("GET VAR dummy battery.charge")
            if reply == 'VAR dummy battery.charge "87"':
                break
            assert reply == "ERR DATA-STALE", reply
            assert time.monotonic() - resumed < MAXAGE + 10, "data still stale after SIGCONT"
            time.sleep(0.1)
        c.close()
        assert_healthy(env, "SIGSTOP/SIGCONT of the driver")
        if flavour == "nutlite":
            assert "Traceback" not in env.upsd_log()
    finally:
        env.stop()


# --------------------------------------------------------------------------------------------------------
# load


def raise_fd_limit(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.skip(f"cannot open {n} files here (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


@pytest.mark.parametrize("flavour", ["nutlite"])  # Debian's upsd needs ~50 s to accept 1000 clients
def test_1000_simultaneous_connections(tmp_path: Path, flavour: str) -> None:
    n = 1000
    raise_fd_limit(n + 1000)  # before the daemons start: they inherit it
    env = make_env(tmp_path, flavour)
    socks: list[socket.socket] = []
    try:
        env.start()
        start = time.monotonic()
        for i in range(n):
            try:
                socks.append(socket.create_connection(("127.0.0.1", env.port), timeout=30))
            except OSError as e:
                raise AssertionError(f"connection {i} failed: {e}\n{env.logs()}") from e
        connected = time.monotonic() - start
        for s in socks:
            s.sendall(b"GET VAR dummy ups.status\n")
        sel = selectors.DefaultSelector()
        bufs: dict[socket.socket, bytes] = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
        pending = set(socks)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                bufs[s] += data
                if not data or bufs[s].endswith(b"\n"):
                    sel.unregister(s)
                    pending.discard(s)
        sel.close()
        answers = list(bufs.values())
        assert not pending, f"{len(pending)} of {n} connections got no answer within 60 s"
        wrong = [a for a in answers if a != (STATUS_OK + "\n").encode()]
        assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:3]!r}"
        assert connected < 60, f"accepting {n} connections took {connected:.1f} s"
        # while all of them are open, a new client is still served
        with env.connect() as c:
            assert c.request(f"GET VAR {UPS} ups.status") == STATUS_OK
    finally:
        for s in socks:
            s.close()
        try:
            if env.upsd_running():
                assert_healthy(env, "1000 connections")
        finally:
            env.stop()


def test_connect_and_hang_up_storm(env: NutEnv) -> None:
    """Clients that connect and vanish (with and without a request, RST instead of FIN)."""
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", env.port))
        if i % 3 == 0:
            s.sendall(b"LIST VAR dummy\n")
        if i % 2 == 0:  # RST on close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert_healthy(env, "200 hang-ups")
    with env.connect() as c:
        c.send("USERNAME monsec")
        c.send("PASSWORD secpw")
        c.send("LOGIN dummy")
        assert [c.read_line(), c.read_line(), c.read_line()] == ["OK", "OK", "OK"]
    # the login went away with the connection
    deadline = time.monotonic() + 5
    with env.connect() as c:
        while c.request("GET NUMLOGINS dummy") != "NUMLOGINS dummy 0":
            assert time.monotonic() < deadline, "NUMLOGINS not decremented after the client vanished"
            time.sleep(0.05)


@pytest.mark.interop
def test_connection_closed_is_reported(tmp_path: Path) -> None:
    """Sanity check of the harness itself: LOGOUT closes and NutConnection sees it."""
    require_real_nut()
    env = make_env(tmp_path, "debian")
    try:
        env.start()
        with env.connect() as c:
            assert c.request("LOGOUT") == "OK Goodbye"
            assert c.is_closed(5)
            with pytest.raises(ConnectionClosed):
                c.read_line(1)
    finally:
        env.stop()
