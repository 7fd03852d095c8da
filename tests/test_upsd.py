"""Integration tests of nutlite's upsd as a real process on loopback (tests/nutenv.py).

Most run against a scripted driver (`FakeDriver`); the `interop` ones feed nutlite's upsd from Debian's
real ``/lib/nut/dummy-ups`` (cross-wiring) and use Debian's ``upsc`` as a TLS client.
Protocol details are covered by tests/test_upsd_core.py and, against Debian's upsd, by
tests/test_conformance.py; robustness against abusive clients by tests/test_robustness.py.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nutenv import (
    DATA_DIR,
    REPO_ROOT,
    FakeDriver,
    NutConnection,
    NutEnv,
    UpsSpec,
    dummy_ups,
    free_port,
    require_real_nut,
)


def fake_ups(name: str = "fake", status: str = "OL", desc: str | None = "scripted") -> UpsSpec:
    fake = FakeDriver("/nonexistent")  # NutEnv sets the path
    fake.setvar("ups.status", status)
    fake.setvar("battery.charge", "100")
    fake.setvar("ups.id", "abc", flags=("RW", "STRING"), aux=8)
    fake.addcmd("test.battery.start")
    return UpsSpec(name, driver="fakedrv", port="/dev/null", desc=desc, launch="fake", fake=fake)


@pytest.fixture
def make_env(checked_env_factory: Callable[..., NutEnv]) -> Callable[..., NutEnv]:
    """``make(upses=[fake 'ups'], start=True, **NutEnv kwargs)``, nutlite's upsd by default; no upsd
    log may show a Traceback."""

    def make(upses: list[UpsSpec] | None = None, **kw: object) -> NutEnv:
        kw.setdefault("upsd_flavour", "nutlite")
        return checked_env_factory([fake_ups()] if upses is None else upses, **kw)

    return make


def wait_for(fn: Callable[[], object], timeout: float = 10.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}; last: {last!r}")


def reply(env: NutEnv, line: str) -> str:
    with env.connect() as c:
        return c.request(line)


def wait_reply(env: NutEnv, line: str, expected: str, timeout: float = 10.0) -> None:
    wait_for(lambda: reply(env, line) == expected, timeout, f"{line!r} -> {expected!r}")


def run_cli(env: NutEnv, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", "upsd", *args], env=env.environ(), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------------ drivers


def test_serves_a_driver_and_follows_its_changes(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    with env.connect() as c:
        assert c.request_list("LIST VAR fake") == [
            "BEGIN LIST VAR fake", 'VAR fake battery.charge "100"', 'VAR fake ups.id "abc"',
            'VAR fake ups.status "OL"', "END LIST VAR fake"]
        fake = env.upses["fake"].fake
        assert fake is not None
        fake.broadcast('SETINFO ups.status "OB DISCHRG"', 'SETINFO battery.charge "97"')
        wait_for(lambda: c.request("GET VAR fake ups.status") == 'VAR fake ups.status "OB DISCHRG"')
        assert c.request("GET VAR fake battery.charge") == 'VAR fake battery.charge "97"'
        # commands reach the driver
        assert c.request("USERNAME admin") == "OK"
        assert c.request("PASSWORD adminpw") == "OK"
        assert c.request("INSTCMD fake test.battery.start") == "OK"
        assert c.request('SET VAR fake ups.id "x y"') == "OK"
    wait_for(lambda: fake.received[-2:] == ["INSTCMD test.battery.start", 'SET ups.id "x y"'])


def test_driver_restart_gives_not_connected_then_fresh_data(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    fake = env.upses["fake"].fake
    assert fake is not None
    fake.stop()
    wait_reply(env, "GET VAR fake ups.status", "ERR DRIVER-NOT-CONNECTED", 5)
    assert reply(env, "LIST VAR fake") == "ERR DRIVER-NOT-CONNECTED"
    fake.setvar("ups.status", "OB LB")
    fake.vars.pop("battery.charge")
    fake.start()  # upsd retries about once a second
    wait_reply(env, "GET VAR fake ups.status", 'VAR fake ups.status "OB LB"', 5)
    # nothing of the old data is served
    assert reply(env, "GET VAR fake battery.charge") == "ERR VAR-NOT-SUPPORTED"


def test_wait_status_until_the_dump_arrives(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    fake = env.upses["fake"].fake
    assert fake is not None
    fake.stop()
    wait_reply(env, "GET VAR fake ups.status", "ERR DRIVER-NOT-CONNECTED", 5)
    fake.dump_lines = lambda: []  # type: ignore[method-assign]  # a driver that does not answer DUMPALL yet
    fake.start()
    wait_reply(env, "GET VAR fake ups.status", 'VAR fake ups.status "WAIT"', 5)
    fake.broadcast('SETINFO ups.status "OL"', "DATAOK", "DUMPDONE")
    wait_reply(env, "GET VAR fake ups.status", 'VAR fake ups.status "OL"', 5)
    fake.broadcast("DATASTALE")
    wait_reply(env, "GET VAR fake ups.status", "ERR DATA-STALE", 5)
    fake.broadcast("DATAOK")
    wait_reply(env, "GET VAR fake ups.status", 'VAR fake ups.status "OL"', 5)


def test_unknown_driver_socket_and_late_driver(make_env: Callable[..., NutEnv]) -> None:
    late = fake_ups("late")
    late.launch = "none"
    env = make_env([fake_ups(), late])
    assert reply(env, "GET VAR late ups.status") == "ERR DRIVER-NOT-CONNECTED"
    assert "Can't connect to UPS [late]" in env.upsd_log()
    late.launch = "fake"
    env.start_driver("late")
    wait_reply(env, "GET VAR late ups.status", 'VAR late ups.status "OL"', 5)


# ------------------------------------------------------------------------------------------------ interop


@pytest.mark.interop
def test_debian_driver_killed_restarted_and_stopped(make_env: Callable[..., NutEnv]) -> None:
    """nutlite's upsd reading Debian's dummy-ups: restart and staleness (MAXAGE) behaviour."""
    require_real_nut()
    env = make_env([dummy_ups(desc="Debian driver")], driver_flavour="debian", maxage=3,
                   files={"conformance.dev": DATA_DIR / "conformance.dev"})
    status = reply(env, "GET VAR dummy ups.status")
    assert status.startswith('VAR dummy ups.status "') and "WAIT" not in status
    with env.connect() as c:
        lines = c.request_list("LIST VAR dummy")
    assert lines[0] == "BEGIN LIST VAR dummy" and lines[-1] == "END LIST VAR dummy"
    assert 'VAR dummy driver.name "dummy-ups"' in lines

    env.kill_driver("dummy")
    wait_reply(env, "GET VAR dummy ups.status", "ERR DRIVER-NOT-CONNECTED", 5)
    env.start_driver("dummy")
    wait_reply(env, "GET VAR dummy ups.status", status, 10)

    # a frozen driver does not answer PING: stale after MAXAGE (+1 s), fine again once it answers
    env.kill_driver("dummy", signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_reply(env, "GET VAR dummy ups.status", "ERR DATA-STALE", 10)
        assert time.monotonic() - t0 > 2.5
        assert reply(env, "LIST VAR dummy") == "ERR DATA-STALE"
        wait_for(lambda: "Data for UPS [dummy] is stale" in env.upsd_log(), 3)
    finally:
        env.kill_driver("dummy", signal.SIGCONT)
    wait_reply(env, "GET VAR dummy ups.status", status, 10)
    wait_for(lambda: "UPS [dummy] data is no longer stale" in env.upsd_log(), 3)


@pytest.mark.interop
def test_debian_clients(make_env: Callable[..., NutEnv]) -> None:
    """Debian's upsc / upscmd / upsrw against nutlite's upsd (cross-wired with Debian's driver)."""
    require_real_nut()
    env = make_env([dummy_ups(desc="Debian driver")], driver_flavour="debian",
                   files={"conformance.dev": DATA_DIR / "conformance.dev"})
    target = f"dummy@127.0.0.1:{env.port}"
    out = subprocess.run(["upsc", target, "ups.status"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.strip() == reply(env, "GET VAR dummy ups.status").split('"')[1]
    out = subprocess.run(["upsc", "-l", f"127.0.0.1:{env.port}"], capture_output=True, text=True, timeout=10)
    assert out.stdout.split() == ["dummy"]
    out = subprocess.run(["upsc", target, "nosuch.var"], capture_output=True, text=True, timeout=10)
    assert "Error: Variable not supported by UPS" in out.stderr
    out = subprocess.run(["upsrw", "-s", "ups.mfr=Changed", "-u", "admin", "-p", "adminpw", target],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    wait_reply(env, "GET VAR dummy ups.mfr", 'VAR dummy ups.mfr "Changed"')


# ------------------------------------------------------------------------------------------------ TLS


def make_certfile(tmp: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    pem = tmp / "upsd.pem"
    pem.write_text(cert.read_text() + key.read_text())
    return pem


class TlsLines:
    """Line reading on a TLS socket."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buf = b""

    def request(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self.read_line()

    def read_line(self) -> str:
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


@contextlib.contextmanager
def tls_session(env: NutEnv, tmp_path: Path) -> Iterator[tuple[ssl.SSLSocket, TlsLines]]:
    """A connection to ``env``'s upsd that STARTTLS switched to TLS, upsd's certificate checked against
    the one :func:`make_certfile` made in ``tmp_path``."""
    ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        raw.sendall(b"STARTTLS\n")
        assert raw.recv(100) == b"OK STARTTLS\n"
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            yield tls, TlsLines(tls)


def test_starttls(make_env: Callable[..., NutEnv], tmp_path: Path) -> None:
    pem = make_certfile(tmp_path)
    env = make_env(upsd_conf_extra=f"CERTFILE {pem}\n")
    with tls_session(env, tmp_path) as (_, c):
        assert c.request("VER").startswith("Network UPS Tools upsd ")
        assert c.request("STARTTLS") == "ERR ALREADY-SSL-MODE"
        assert c.request("GET VAR fake ups.status") == 'VAR fake ups.status "OL"'
        assert c.request("LIST VAR fake") == "BEGIN LIST VAR fake"
        while c.read_line() != "END LIST VAR fake":
            pass
        assert c.request("USERNAME monpri") == "OK"
        assert c.request("PASSWORD pripw") == "OK"
        assert c.request("LOGIN fake") == "OK"
        assert reply(env, "LIST CLIENT fake") == "BEGIN LIST CLIENT fake"
        assert c.request("LOGOUT") == "OK Goodbye"
        with pytest.raises((EOFError, ssl.SSLError, OSError)):
            c.read_line()
    # a client that does not speak TLS after OK STARTTLS is dropped; upsd carries on
    with env.connect() as c:
        c.send("STARTTLS")
        assert c.read_line() == "OK STARTTLS"
        c.send("this is not a TLS handshake")
        assert c.is_closed(5)
    assert "TLS handshake with 127.0.0.1 failed" in env.upsd_log()
    assert reply(env, "STARTTLS") == "OK STARTTLS"


def test_slowed_answer_over_tls_then_the_session_goes_on(make_env: Callable[..., NutEnv], tmp_path: Path) -> None:
    """The reply held back for a guessing address (tests/test_upsd_security.py) also works after STARTTLS."""
    from nutlite.upsd.throttle import FREE_FAILURES, LoginThrottle

    pem = make_certfile(tmp_path)
    env = make_env(upsd_conf_extra=f"CERTFILE {pem}\n")
    for i in range(FREE_FAILURES + 2):
        with env.connect() as c:
            assert [c.request(x) for x in ("USERNAME monpri", f"PASSWORD bad{i}", "LOGIN fake")] == [
                "OK", "OK", "ERR ACCESS-DENIED"]
    with tls_session(env, tmp_path) as (tls, c):
        assert c.request("USERNAME monpri") == "OK"
        assert c.request("PASSWORD pripw") == "OK"
        t0 = time.monotonic()
        tls.sendall(b"LOGIN fake\nVER\n")  # VER waits behind the held LOGIN answer
        assert c.read_line() == "OK"
        assert time.monotonic() - t0 >= LoginThrottle().delay_for(FREE_FAILURES + 2) - 0.01
        assert c.read_line().startswith("Network UPS Tools upsd ")
        assert c.request("GET NUMLOGINS fake") == "NUMLOGINS fake 1"
        assert c.request("LOGOUT") == "OK Goodbye"


@pytest.mark.interop
def test_debian_upsc_uses_starttls(make_env: Callable[..., NutEnv], tmp_path: Path) -> None:
    require_real_nut()
    pem = make_certfile(tmp_path)
    env = make_env(upsd_conf_extra=f"CERTFILE {pem}\n")
    out = subprocess.run(["upsc", f"fake@127.0.0.1:{env.port}", "ups.status"], capture_output=True, text=True,
                         timeout=20)
    assert out.stdout.strip() == "OL", out
    assert "Connected to NUT server 127.0.0.1 in SSL" in out.stderr


def test_starttls_without_certfile(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    with env.connect() as c:
        assert c.request("STARTTLS") == "ERR FEATURE-NOT-CONFIGURED"
        assert c.request("STARTTLS") == "ERR FEATURE-NOT-CONFIGURED"
        assert c.request("VER").startswith("Network UPS Tools upsd ")


def test_bad_certfile_is_a_clear_error(make_env: Callable[..., NutEnv], tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    env = make_env(start=False, upsd_conf_extra=f"CERTFILE {bad}\n")
    env.write_configs()
    out = run_cli(env, "-F")
    assert out.returncode == 1
    assert f"CERTFILE {bad}" in out.stderr and "certificate" in out.stderr


# ------------------------------------------------------------------------------------------------ reload, stop


def test_sighup_reload(make_env: Callable[..., NutEnv]) -> None:
    env = make_env([fake_ups("old"), fake_ups("keep")])
    old_driver = env.upses["old"].fake
    assert old_driver is not None
    with env.connect() as pri:
        assert [pri.request(x) for x in ("USERNAME monpri", "PASSWORD pripw", "LOGIN keep", "FSD keep")] == [
            "OK", "OK", "OK", "OK FSD-SET"]
        # new ups.conf: "old" goes, "new" comes (its driver runs already), "keep" gets a description
        new = fake_ups("new", status="OB")
        env.upses = {"keep": env.upses["keep"], "new": new}
        env.upses["keep"].desc = "kept"
        env.start_driver("new")
        env.users = "[admin]\n  password = changed\n  actions = SET\n"
        env.write_configs()
        os.kill(env.upsd_pid, signal.SIGHUP)
        wait_reply(env, "GET VAR new ups.status", 'VAR new ups.status "OB"', 10)
        with env.connect() as c:
            assert c.request_list("LIST UPS") == [
                "BEGIN LIST UPS", 'UPS keep "kept"', 'UPS new "scripted"', "END LIST UPS"]
        assert reply(env, "GET VAR old ups.status") == "ERR UNKNOWN-UPS"
        # the FSD latch and the login survive; the driver connection too
        assert reply(env, "GET VAR keep ups.status") == 'VAR keep ups.status "FSD OL"'
        assert reply(env, "GET NUMLOGINS keep") == "NUMLOGINS keep 1"
        # changed users apply
        assert pri.request("PRIMARY keep") == "ERR ACCESS-DENIED"
    with env.connect() as c:
        for line, expected in [("USERNAME admin", "OK"), ("PASSWORD changed", "OK"),
                               ("SET VAR new ups.id y", "OK")]:
            assert c.request(line) == expected
    assert "reloading" in env.upsd_log()
    old_driver.stop()


def test_bad_config_on_reload_keeps_the_old_one(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    ups_conf = env.confpath / "ups.conf"
    good = ups_conf.read_text()
    ups_conf.write_text(good + "[fake]\n  driver = x\n  port = y\n")  # defined twice: an error
    os.kill(env.upsd_pid, signal.SIGHUP)
    wait_for(lambda: "old configuration stays in force" in env.upsd_log(), 10)
    assert "ups.conf:" in env.upsd_log() and "defined twice" in env.upsd_log()
    assert reply(env, "GET VAR fake ups.status") == 'VAR fake ups.status "OL"'
    ups_conf.write_text("# nothing\n")  # no UPS at all: refused like at start
    os.kill(env.upsd_pid, signal.SIGHUP)
    wait_for(lambda: env.upsd_log().count("old configuration stays in force") == 2, 10)
    assert reply(env, "GET VAR fake ups.status") == 'VAR fake ups.status "OL"'


def test_control_reload_and_stop(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    pidfile = env.statepath / "upsd.pid"
    assert int(pidfile.read_text()) == env.upsd_pid
    env.upses["fake"].desc = "after reload"
    env.write_configs()
    out = run_cli(env, "-c", "reload")
    assert out.returncode == 0, out.stderr
    wait_reply(env, "GET UPSDESC fake", 'UPSDESC fake "after reload"')
    out = run_cli(env, "-c", "stop")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: not env.upsd_running(), 10, "upsd to stop")
    assert env._upsd is not None and env._upsd.popen is not None
    assert env._upsd.popen.returncode == 0
    assert not pidfile.exists()
    out = run_cli(env, "-c", "stop")
    assert out.returncode == 1 and "upsd.pid" in out.stderr


def test_second_instance_refuses_to_start(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    out = run_cli(env, "-F")
    assert out.returncode == 1
    assert "already running" in out.stderr


# ------------------------------------------------------------------------------------------------ limits


def test_maxconn(make_env: Callable[..., NutEnv]) -> None:
    # MAXCONN counts driver connections and clients: 1 driver + 2 clients
    env = make_env(upsd_conf_extra="MAXCONN 3\n", start=False)
    env.start(wait=False)
    with env.connect() as a, env.connect() as b:
        assert a.request("VER").startswith("Network")
        assert b.request("VER").startswith("Network")
        with env.connect() as c:  # the kernel accepts it, upsd does not serve it yet
            c.send("NETVER")
            assert c.pending(1.0) == b""
            a.close()
            assert c.read_line(5) == "1.3"
        assert b.request("NETVER") == "1.3"


def test_idle_clients_are_dropped_after_60s_unit() -> None:
    """The 60 s rule itself is in the core (tests/test_upsd_core.py); here: the constant."""
    from nutlite.upsd.core import IDLE_TIMEOUT

    assert IDLE_TIMEOUT == 60.0


def test_1000_clients_memory_and_start_time(make_env: Callable[..., NutEnv]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2200:
        pytest.skip(f"open-files hard limit {hard} too low for 1000 clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))
    try:
        env = make_env(start=False)
        env.write_configs()
        env.start_driver("fake")
        t0 = time.monotonic()
        env.start_upsd()
        ready = time.monotonic() - t0
        assert ready < 3.0, f"upsd took {ready:.2f}s to accept connections"
        socks = []
        try:
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
                socks.append(s)
            for s in socks:
                s.sendall(b"GET VAR fake ups.status\n")
            for s in socks:
                assert s.recv(100) == b'VAR fake ups.status "OL"\n'
            rss_kb = int(next(line.split()[1] for line in open(f"/proc/{env.upsd_pid}/status")
                              if line.startswith("VmRSS")))
            assert rss_kb < 30 * 1024, f"upsd RSS {rss_kb} kB with 1000 clients"
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: reply(env, "VER").startswith("Network"), 10)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_slow_reader_does_not_grow_memory_forever(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        with contextlib.suppress(OSError):
            for _ in range(100000):  # ~20 MB of replies that are never read
                s.sendall(b"LIST VAR fake\n" * 10)
    finally:
        s.close()
    wait_for(lambda: reply(env, "VER").startswith("Network"), 10)


# ------------------------------------------------------------------------------------------------ daemon


def test_sd_notify_ready_watchdog_reload_stop(make_env: Callable[..., NutEnv], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        env = make_env(start=False)
        env.write_configs()
        env.start_driver("fake")
        env.start_upsd(wait=False)
        messages: list[str] = []

        def got(text: str) -> bool:
            while not any(text in m for m in messages):
                messages.append(sock.recv(4096).decode())
            return True

        got("READY=1")
        # ready means listening
        assert reply(env, "GET VAR fake ups.status") == 'VAR fake ups.status "OL"'
        got("WATCHDOG=1")
        messages.clear()
        os.kill(env.upsd_pid, signal.SIGHUP)
        got("RELOADING=1")
        got("READY=1")
        env.stop_upsd()
        got("STOPPING=1")
    finally:
        sock.close()


def test_world_readable_users_file_warning(make_env: Callable[..., NutEnv]) -> None:
    env = make_env(start=False)
    env.write_configs()
    users = env.confpath / "upsd.users"
    users.chmod(0o644)
    (env.confpath / "upsd.conf").chmod(0o640)  # (warned about too: tests/test_upsd_security.py)
    env.start_driver("fake")
    env.start_upsd()
    assert f"{users} is world readable" in env.upsd_log()
    env.stop_upsd()
    users.chmod(0o640)
    before = len(env.upsd_log())
    env.start_upsd()
    assert "world readable" not in env.upsd_log()[before:]


def test_listen_several_addresses_and_ipv6(make_env: Callable[..., NutEnv]) -> None:
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    env = make_env(start=False)
    port2 = free_port()
    env.upsd_conf_extra = f"LISTEN ::1 {env.port}\nLISTEN 127.0.0.2 {port2}\n"
    env.start()
    with socket.create_connection(("::1", env.port), timeout=5) as s6:
        s6.sendall(b"USERNAME monsec\nPASSWORD secpw\nLOGIN fake\n")
        data = b""
        while data.count(b"\n") < 3:
            data += s6.recv(100)
        with env.connect() as c:
            assert c.request_list("LIST CLIENT fake") == ["BEGIN LIST CLIENT fake", "CLIENT fake ::1",
                                                          "END LIST CLIENT fake"]
    with NutConnection(port2, host="127.0.0.2") as c:
        assert c.request("NETVER") == "1.3"


def test_listen_failure_is_fatal(make_env: Callable[..., NutEnv]) -> None:
    env = make_env(start=False, upsd_conf_extra="LISTEN 192.0.2.1 3493\n")  # TEST-NET: not ours, never bound
    env.write_configs()
    out = run_cli(env, "-F")
    assert out.returncode == 1
    assert "not listening on 192.0.2.1 port 3493" in out.stderr


def test_config_errors_are_reported(make_env: Callable[..., NutEnv]) -> None:
    env = make_env(start=False, upsd_conf_extra="MAXAGE soon\n")
    env.write_configs()
    out = run_cli(env, "-F")
    assert out.returncode == 1
    assert "upsd.conf:2" in out.stderr and "MAXAGE" in out.stderr
    env.upsd_conf_extra = ""
    env.upses = {}
    env.write_configs()
    out = run_cli(env, "-F")
    assert out.returncode == 1 and "no UPS defined" in out.stderr


def test_runs_without_ups_when_allowed(make_env: Callable[..., NutEnv]) -> None:
    env = make_env([], upsd_conf_extra="ALLOW_NO_DEVICE true\n", start=False)
    env.start(wait=False)
    assert reply(env, "LIST UPS") == "BEGIN LIST UPS"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch user")
def test_drops_root_after_binding(make_env: Callable[..., NutEnv]) -> None:
    env = make_env(start=False)
    env.upsd_argv = lambda: [sys.executable, "-m", "nutlite", "upsd", "-F", "-u", "nobody"]  # type: ignore[method-assign]
    env.write_configs()
    env.start_driver("fake")
    env.start_upsd()
    import pwd

    def uids() -> list[str]:
        with open(f"/proc/{env.upsd_pid}/status") as fh:
            return next(line for line in fh if line.startswith("Uid:")).split()[1:]

    # upsd listens before it drops root: the switch may come a moment after the port answers
    deadline = time.monotonic() + 5
    while uids() != [str(pwd.getpwnam("nobody").pw_uid)] * 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uids() == [str(pwd.getpwnam("nobody").pw_uid)] * 4
    assert reply(env, "VER").startswith("Network")


def test_help_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "nutlite", "upsd", "-h"], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=20)
    assert out.returncode == 0 and "-c" in out.stdout and "reload" in out.stdout
    assert out.stdout.startswith("usage: nutlite upsd ")
    for flag in ("-P PID", "-q", "-r DIR", "-B", "-4", "-6", "-u USER", "-D", "-F", "-V"):
        assert f"  {flag} " in out.stdout, flag
    assert "\nFiles:\n" in out.stdout and "upsd.users" in out.stdout
    assert "``" not in out.stdout and ":mod:" not in out.stdout
    out = subprocess.run([sys.executable, "-m", "nutlite", "upsd", "-V"], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=20)
    assert out.returncode == 0 and "upsd" in out.stdout


def test_bind_listeners_families_and_wildcard() -> None:
    from nutlite.config import UpsdConf
    from nutlite.upsd.main import ListenError, bind_listeners

    p1, p2 = free_port(), free_port()
    conf = UpsdConf("upsd.conf", listen=[("127.0.0.1", p1), ("::1", p2)])
    socks = bind_listeners(conf, socket.AF_INET)  # -4: the IPv6 line is left out
    try:
        assert [s.getsockname()[:2] for s in socks] == [("127.0.0.1", p1)]
    finally:
        for s in socks:
            s.close()
    socks = bind_listeners(UpsdConf("upsd.conf", listen=[("*", p1)]))  # both wildcards, v6 only on ::
    try:
        assert {s.getsockname()[0] for s in socks} <= {"0.0.0.0", "::"}
        for s in socks:
            if s.family == socket.AF_INET6:
                assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        for s in socks:
            s.close()
    with pytest.raises(ListenError):
        bind_listeners(UpsdConf("upsd.conf", listen=[("192.0.2.1", p1)]))


# ------------------------------------------------------------------------------------------------ NUT's flags


def upsd_with(env: NutEnv, *flags: str) -> None:
    """Make `env` start nutlite's upsd with `flags` (and the harness's -u)."""
    argv = [sys.executable, "-m", "nutlite", "upsd", "-F", *env._user_args(), *flags]
    env.upsd_argv = lambda: argv  # type: ignore[method-assign]


def test_P_signals_the_given_pid_not_the_pid_file(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    pidfile = env.statepath / "upsd.pid"
    pidfile.write_text("999999999\n")  # a pid file pointing nowhere
    assert run_cli(env, "-c", "reload").returncode == 1
    out = run_cli(env, "-c", "reload", "-P", str(env.upsd_pid))
    assert out.returncode == 0, out.stderr
    wait_for(lambda: "reloading" in env.upsd_log(), 10, "the reload")
    out = run_cli(env, "-c", "stop", "-P", "999999999")
    assert out.returncode == 1 and "-P 999999999: no such process" in out.stderr
    out = run_cli(env, "-c", "stop", "-P", "0")  # never "every process of my group"
    assert out.returncode == 1 and "expected a process id" in out.stderr
    assert env.upsd_running()
    out = run_cli(env, "-c", "stop", "-P", str(env.upsd_pid))
    assert out.returncode == 0
    wait_for(lambda: not env.upsd_running(), 10, "upsd to stop")


@pytest.mark.parametrize("quiet", ["-q", "-qq"])
def test_q_raises_the_log_threshold(make_env: Callable[..., NutEnv], quiet: str) -> None:
    env = make_env(start=False)
    upsd_with(env, quiet)
    env.write_configs()
    (env.confpath / "upsd.users").chmod(0o644)  # a warning to see
    env.start_driver("fake")
    env.start_upsd()
    env.wait_ready()
    log = env.upsd_log()
    assert "listening on" not in log and "Connected to UPS" not in log  # info lines
    assert ("world readable" in log) == (quiet == "-q")  # warnings: only -qq hides them
    env.stop_upsd()
    upsd_with(env)
    env.start_upsd()
    assert "listening on" in env.upsd_log()


def can_connect(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def listening_families(pid: int) -> set[int]:
    """The IP versions of the TCP sockets that process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for version, table in ((4, "/proc/net/tcp"), (6, "/proc/net/tcp6")):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                found.add(version)
    return found


@pytest.mark.parametrize("flag", ["-4", "-6"])
def test_4_and_6_listen_on_one_family_only(make_env: Callable[..., NutEnv], flag: str) -> None:
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    env = make_env(start=False)
    env.upsd_conf_extra = f"LISTEN ::1 {env.port}\n"  # and the harness's LISTEN 127.0.0.1
    upsd_with(env, flag)
    env.write_configs()
    env.start_driver("fake")
    env.start_upsd(wait=False)
    wanted, other = ("127.0.0.1", "::1") if flag == "-4" else ("::1", "127.0.0.1")
    wait_for(lambda: can_connect(wanted, env.port), 20, f"upsd on {wanted}")
    # upsd's own listening sockets (another test's server may hold the same port on the other family)
    assert listening_families(env.upsd_pid) == {6 if flag == "-6" else 4}
    assert f"listening on {wanted} port" in env.upsd_log()
    assert f"listening on {other} port" not in env.upsd_log()


def test_r_is_accepted_with_one_warning(make_env: Callable[..., NutEnv], tmp_path: Path) -> None:
    env = make_env(start=False)
    upsd_with(env, "-r", str(tmp_path))
    env.start()
    assert reply(env, "GET VAR fake ups.status") == 'VAR fake ups.status "OL"'
    assert env.upsd_log().count("does not chroot") == 1
    os.kill(env.upsd_pid, signal.SIGHUP)  # reload and the driver socket work as without -r
    wait_for(lambda: "configuration reloaded" in env.upsd_log(), 10, "the reload")
    out = run_cli(env, "-F", "-r", str(tmp_path / "nosuch"))
    assert out.returncode == 1 and f"-r {tmp_path / 'nosuch'}: no such directory" in out.stderr


def test_B_goes_to_the_background_even_with_D(make_env: Callable[..., NutEnv]) -> None:
    env = make_env(start=False)
    env.write_configs()
    env.start_driver("fake")
    pidfile = env.statepath / "upsd.pid"
    out = run_cli(env, "-B", "-D", *env._user_args())
    assert out.returncode == 0, out.stderr  # the parent returns; the daemon runs on
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "the pid file"))  # type: ignore[arg-type]
    try:
        assert pid != os.getpid()
        wait_reply(env, "GET VAR fake ups.status", 'VAR fake ups.status "OL"')
        assert run_cli(env, "-c", "stop").returncode == 0
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the daemon to stop")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
