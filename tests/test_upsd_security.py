"""upsd's defences: password guessing slowed down per address (nutlite.upsd.throttle), required
configuration files, warnings about readable secrets, and dropping root.

The throttle's curve and rules are shown on the sans-IO core with a fake clock; the rest runs a real
nutlite upsd from the harness (tests/nutenv.py).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nutenv import REPO_ROOT, FakeDriver, NutConnection, NutEnv, UpsSpec

from nutlite.config import load_upsd_users
from nutlite.upsd.core import Server, Session
from nutlite.upsd.throttle import FREE_FAILURES, MAX_DELAY, LoginThrottle

USERS = "[admin]\n  password = right\n  actions = SET FSD\n  instcmds = ALL\n[viewer]\n  password = view\n"


def core_server(throttle: LoginThrottle | None = None, now: float = 10.0) -> Server:
    """A core with the users above and one UPS "ups" whose driver connected at `now` (one command)."""
    srv = Server(throttle=throttle)
    srv.configure(users=load_upsd_users("upsd.users", text=USERS))
    ups = srv.add_ups("ups")
    srv.driver_connected(ups, now)
    srv.driver_data(ups, b"ADDCMD load.off\n", now)
    return srv


def attempt(srv: Server, addr: str, password: str, now: float, user: str = "admin",
            command: str = "FSD ups") -> tuple[str, float]:
    """One guess on a new connection, as a password guesser makes it: (reply to `command`, its delay)."""
    s = srv.connect(addr, now)
    assert srv.feed(s, f"USERNAME {user}\nPASSWORD {password}\n".encode(), now) == b"OK\nOK\n"
    assert s.answer_at <= now  # USERNAME / PASSWORD check nothing: never held
    reply = srv.feed(s, command.encode() + b"\n", now).decode().strip()
    delay = round(max(0.0, s.answer_at - now), 6)  # (float noise of the clock sums)
    srv.disconnect(s)
    return reply, delay


# --------------------------------------------------------------------------------------------- core


def test_guessing_curve_free_failures_then_growing_delay_capped_at_30s() -> None:
    srv = core_server()
    now = 1000.0
    delays = []
    for i in range(1000):  # a guesser that sends its next guess as soon as it has the answer
        reply, delay = attempt(srv, "127.0.0.1", f"guess{i}", now)
        assert reply == "ERR ACCESS-DENIED"
        delays.append(delay)
        now += delay + 0.001
    assert delays[:FREE_FAILURES] == [0.0] * FREE_FAILURES
    slowed = delays[FREE_FAILURES:]
    assert 0 < slowed[0] < 0.5  # the first slowed answer is still quick
    assert all(b >= a for a, b in zip(slowed, slowed[1:], strict=False))
    first_cap = delays.index(MAX_DELAY)
    assert all(b > a for a, b in zip(slowed[:first_cap - FREE_FAILURES], slowed[1:first_cap - FREE_FAILURES + 1],
                                    strict=False))  # growing until the cap
    assert first_cap < 30
    assert delays[999] == MAX_DELAY
    assert max(delays) == MAX_DELAY
    # the guessing rate: about one guess per 30 s in the end, not thousands a second
    assert sum(delays[900:]) / 100 == pytest.approx(MAX_DELAY)


def test_right_password_waits_as_long_as_a_wrong_one_while_slowed() -> None:
    srv = core_server()
    now = 50.0
    for i in range(FREE_FAILURES + 3):
        _, delay = attempt(srv, "127.0.0.1", f"bad{i}", now)
        now += delay + 1
    wait_wrong = srv.throttle.delay_for(srv.throttle.failures("127.0.0.1"))
    reply, delay = attempt(srv, "127.0.0.1", "right", now)
    assert reply == "OK FSD-SET"
    assert delay == pytest.approx(wait_wrong) and delay > 0
    reply, delay2 = attempt(srv, "127.0.0.1", "wrongagain", now + delay + 1)
    assert reply == "ERR ACCESS-DENIED" and delay2 == pytest.approx(wait_wrong)
    # a success forgives nothing (an attacker who knows one account cannot reset the count with it)
    assert srv.throttle.failures("127.0.0.1") == FREE_FAILURES + 4


def test_other_addresses_are_never_slowed() -> None:
    srv = core_server()
    now = 10.0
    for i in range(50):
        _, delay = attempt(srv, "127.0.0.1", f"bad{i}", now)
        now += delay
    assert attempt(srv, "127.0.0.2", "right", now) == ("OK FSD-SET", 0.0)
    for i in range(FREE_FAILURES):  # a few typos elsewhere cost nothing
        assert attempt(srv, "::1", f"typo{i}", now) == ("ERR ACCESS-DENIED", 0.0)
    assert attempt(srv, "127.0.0.2", "right", now) == ("OK FSD-SET", 0.0)


def test_parallel_connections_from_one_address_are_serialized() -> None:
    srv = core_server()
    now = 10.0
    for i in range(FREE_FAILURES):
        attempt(srv, "127.0.0.1", f"bad{i}", now)
    sessions: list[Session] = []
    for i in range(20):  # twenty guesses sent at the same moment on twenty connections
        s = srv.connect("127.0.0.1", now)
        srv.feed(s, f"USERNAME admin\nPASSWORD p{i}\n".encode(), now)
        sessions.append(s)
    due = []
    for s in sessions:
        assert srv.feed(s, b"FSD ups\n", now) == b"ERR ACCESS-DENIED\n"
        due.append(s.answer_at)
    gaps = [b - a for a, b in zip([now, *due], due, strict=False)]
    for i, gap in enumerate(gaps):  # each answer waits its own delay after the one before
        assert gap == pytest.approx(srv.throttle.delay_for(FREE_FAILURES + i))
    # so twenty parallel guesses take as long as twenty in a row
    assert due[-1] - now > 20 * srv.throttle.delay_for(FREE_FAILURES)


def test_pipelined_commands_of_one_session_are_one_guess_but_each_waits() -> None:
    srv = core_server()
    now = 10.0
    s = srv.connect("127.0.0.1", now)
    lines = "USERNAME admin\nPASSWORD bad\n" + "LOGIN ups\nINSTCMD ups load.off\nFSD ups\nPRIMARY ups\n" * 5
    out = srv.feed(s, lines.encode(), now).decode().split("\n")
    assert out.count("ERR ACCESS-DENIED") == 20
    assert srv.throttle.failures("127.0.0.1") == 1 and s.answer_at <= now
    for i in range(FREE_FAILURES):
        attempt(srv, "127.0.0.1", f"bad{i}", now)
    now += 100
    s2 = srv.connect("127.0.0.1", now)
    srv.feed(s2, b"USERNAME admin\nPASSWORD right\n", now)
    # three checks in one read, each waits in turn; the reply comes in one piece at the end
    assert srv.feed(s2, b"FSD ups\nFSD ups\nPRIMARY ups\n", now) == b"OK FSD-SET\nOK FSD-SET\nERR ACCESS-DENIED\n"
    assert s2.answer_at - now == pytest.approx(3 * srv.throttle.delay_for(FREE_FAILURES + 1))


def test_what_counts_as_a_wrong_guess() -> None:
    srv = core_server()
    now = 10.0
    # wrong password, unknown user, on every command that checks them
    commands = ["LOGIN ups", "FSD ups", "PRIMARY ups", "MASTER ups", "SET VAR ups x y", "INSTCMD ups load.off"]
    for i, cmd in enumerate(commands):
        assert attempt(srv, "127.0.0.3", f"bad{i}", now, command=cmd)[0] == "ERR ACCESS-DENIED", cmd
    assert attempt(srv, "127.0.0.3", "x", now, user="nosuchuser")[0] == "ERR ACCESS-DENIED"
    assert srv.throttle.failures("127.0.0.3") == 7
    # not guesses: a right password without the right, a command before USERNAME/PASSWORD, or a reply
    # given before the credentials are looked at
    for _ in range(20):
        assert attempt(srv, "127.0.0.4", "view", now, user="viewer", command="FSD ups")[0] == "ERR ACCESS-DENIED"
        assert attempt(srv, "127.0.0.4", "bad", now, command="LOGIN nosuchups")[0] == "ERR UNKNOWN-UPS"
        s = srv.connect("127.0.0.4", now)
        assert srv.feed(s, b"LOGIN ups\n", now) == b"ERR USERNAME-REQUIRED\n"
    assert srv.throttle.failures("127.0.0.4") == 0


def test_quiet_period_forgives_and_one_log_line_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nutlite.upsd")
    srv = core_server()
    now = 10.0
    for burst in range(2):
        for i in range(40):
            _, delay = attempt(srv, "198.51.100.7", f"b{burst}-{i}", now)
            now += delay
        assert attempt(srv, "198.51.100.7", "bad", now)[1] > 0
        now += srv.throttle.forgive_after + 1  # quiet: forgiven
        if burst == 0:
            assert srv.throttle.expire(now) == 1 and len(srv.throttle) == 0
        assert attempt(srv, "198.51.100.7", "right", now) == ("OK FSD-SET", 0.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "FSD" not in r.getMessage()]
    assert len(warnings) == 2, warnings  # one per burst
    assert all("198.51.100.7" in w and "slowing down" in w for w in warnings)
    assert any("198.51.100.7" in r.getMessage() and "no longer slowed" in r.getMessage()
               for r in caplog.records if r.levelno == logging.INFO)


def test_memory_is_bounded_oldest_address_goes_first() -> None:
    srv = core_server(LoginThrottle(max_addresses=100))
    now = 10.0
    for i in range(5000):  # an attacker with many addresses
        attempt(srv, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "bad", now + i * 0.001)
    assert len(srv.throttle) == 100
    assert srv.throttle.failures("10.0.0.0") == 0  # evicted
    assert srv.throttle.failures("10.0.19.135") == 1  # the newest (i = 4999) is kept


# --------------------------------------------------------------------------------------------- process


def fake_ups(name: str = "fake") -> UpsSpec:
    fake = FakeDriver("/nonexistent")
    fake.setvar("ups.status", "OL")
    return UpsSpec(name, driver="fakedrv", port="/dev/null", launch="fake", fake=fake)


@pytest.fixture
def make_env(checked_env_factory: Callable[..., NutEnv]) -> Callable[..., NutEnv]:
    """``make(start=True, base=None, **NutEnv kwargs)`` with one fake UPS; no upsd log may show a
    Traceback."""
    return lambda **kw: checked_env_factory([fake_ups()], **kw)


def timed_login(port: int, password: str, source: str = "127.0.0.1", user: str = "monpri") -> tuple[str, float]:
    """USERNAME, PASSWORD, LOGIN on a new connection from `source`: (LOGIN's reply, its latency)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0)) as sock, \
            sock.makefile("rb") as replies:

        def request(line: str) -> str:
            sock.sendall(line.encode() + b"\n")
            return replies.readline().decode().rstrip("\n")

        assert request(f"USERNAME {user}") == "OK"
        assert request(f"PASSWORD {password}") == "OK"
        t0 = time.monotonic()
        r = request("LOGIN fake")
        return r, time.monotonic() - t0


def test_real_upsd_slows_one_address_and_not_another(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    curve = LoginThrottle().delay_for  # the wait after that many failures
    first = [timed_login(env.port, f"wrong{i}") for i in range(10)]
    assert all(r == "ERR ACCESS-DENIED" for r, _ in first)
    assert all(t < 0.5 for _, t in first[:FREE_FAILURES]), first
    assert all(t >= curve(i) - 0.01 for i, (_, t) in enumerate(first) if i >= FREE_FAILURES), first
    later = [timed_login(env.port, f"wrong{i}") for i in range(10, 13)]
    assert all(r == "ERR ACCESS-DENIED" for r, _ in later)
    times = [t for _, t in later]
    assert all(t >= curve(10 + i) - 0.01 for i, t in enumerate(times)), times
    assert all(b > a for a, b in zip(times, times[1:], strict=False)), times  # later and later
    assert times[-1] > 1.0
    # while one more guess from 127.0.0.1 waits, a right login from 127.0.0.2 is answered at once
    result: list[tuple[str, float]] = []
    guesser = threading.Thread(target=lambda: result.append(timed_login(env.port, "wrong13")))
    guesser.start()
    time.sleep(0.3)
    assert guesser.is_alive()
    reply, latency = timed_login(env.port, "pripw", source="127.0.0.2")
    assert reply == "OK" and latency < 0.5
    with NutConnection(env.port) as c:  # commands that check no password are not slowed either
        t0 = time.monotonic()
        assert c.request("GET VAR fake ups.status") == 'VAR fake ups.status "OL"'
        assert time.monotonic() - t0 < 0.5
    guesser.join(60)
    assert result and result[0][0] == "ERR ACCESS-DENIED" and result[0][1] > times[-1]
    # the right password from the slowed address waits as long as a wrong one
    reply, latency = timed_login(env.port, "pripw")
    assert reply == "OK" and latency > 1.0
    lines = [ln for ln in env.upsd_log().splitlines() if "slowing down" in ln]
    assert len(lines) == 1 and "127.0.0.1" in lines[0], lines


# ----------------------------------------------------------------------------- configuration files


def run_upsd(env: NutEnv, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", "upsd", *args], env=env.environ(), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", ["upsd.conf", "upsd.users"])
def test_missing_file_refuses_to_start_and_names_it(make_env: Callable[..., NutEnv], name: str) -> None:
    env = make_env(start=False)
    env.write_configs()
    (env.confpath / name).unlink()
    out = run_upsd(env, "-F", *env._user_args())
    assert out.returncode == 1, out.stderr
    assert f"{env.confpath / name}: file not found; create it" in out.stderr
    assert ("LISTEN 127.0.0.1 3493" if name == "upsd.conf" else "password = ") in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.interop
@pytest.mark.parametrize("name", ["upsd.conf", "upsd.users"])
def test_debian_upsd_also_refuses_a_missing_file(make_env: Callable[..., NutEnv], name: str,
                                                 real_nut: None) -> None:
    env = make_env(start=False, upsd_flavour="debian")
    env.write_configs()
    (env.confpath / name).unlink()
    out = subprocess.run(env.upsd_argv(), env=env.environ(), capture_output=True, text=True, timeout=20)
    assert out.returncode == 1
    assert str(env.confpath / name) in out.stderr


def admin_login(env: NutEnv, password: str = "adminpw") -> str:
    with env.connect() as c:
        c.request("USERNAME admin")
        c.request(f"PASSWORD {password}")
        return c.request("FSD fake")


def wait_log(env: NutEnv, text: str, count: int = 1, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while env.upsd_log().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the upsd log:\n{env.upsd_log()[-3000:]}"
        time.sleep(0.05)


def test_reload_without_users_file_keeps_the_users(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()
    users = env.confpath / "upsd.users"
    users.unlink()
    os.kill(env.upsd_pid, signal.SIGHUP)
    wait_log(env, "the old configuration stays in force")
    assert f"{users}: file not found" in env.upsd_log()
    assert admin_login(env) == "OK FSD-SET"


def test_world_readable_upsd_conf_warning(make_env: Callable[..., NutEnv]) -> None:
    env = make_env(start=False)
    env.write_configs()
    conf = env.confpath / "upsd.conf"
    conf.chmod(0o644)
    (env.confpath / "upsd.users").chmod(0o640)
    env.start_driver("fake")
    env.start_upsd()
    wait_log(env, "listening on")
    assert f"{conf} is world readable" in env.upsd_log()
    env.stop_upsd()
    conf.chmod(0o640)
    before = len(env.upsd_log())
    env.start_upsd()
    wait_log(env, "listening on", 2)
    assert "world readable" not in env.upsd_log()[before:]


# ----------------------------------------------------------------------------- dropping root


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
    assert m and len(set(m.groups())) == 1, status
    return int(m.group(1))


@pytest.fixture
def nut_layout() -> Iterator[Path]:
    """A base folder laid out like NUT's: upsd (as user nut) can search it; the state path is root:nut
    2770 (so the driver socket's group is nut) -- the harness's pytest tmp dirs are root-only."""
    try:
        pw = pwd.getpwnam("nut")
    except KeyError:
        pytest.skip("no user nut here")
    base = Path(tempfile.mkdtemp(prefix="nutlite-asnut-"))
    base.chmod(0o755)
    (base / "state").mkdir()
    os.chown(base / "state", 0, pw.pw_gid)
    (base / "state").chmod(0o2770)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_without_u_becomes_nut_and_still_reloads(nut_layout: Path, make_env: Callable[..., NutEnv]) -> None:
    nut = pwd.getpwnam("nut")
    env = make_env(start=False, base=nut_layout)
    env.upsd_argv = lambda: [sys.executable, "-m", "nutlite", "upsd", "-F"]  # type: ignore[method-assign]
    env.write_configs()
    os.chmod(env.statepath, 0o2770)
    users = env.confpath / "upsd.users"
    os.chown(users, 0, nut.pw_gid)
    users.chmod(0o640)  # NUT's layout
    env.start_driver("fake")
    env.start_upsd()
    env.wait_ready()
    assert uid_of(env.upsd_pid) == nut.pw_uid
    assert admin_login(env) == "OK FSD-SET"
    # a reload as user nut reads the root:nut 0640 file
    env.users = env.users.replace("adminpw", "newpw")
    users.write_text(env.users)
    os.kill(env.upsd_pid, signal.SIGHUP)
    wait_log(env, "configuration reloaded")
    assert admin_login(env, "newpw") == "OK FSD-SET"
    # a file it cannot read: the users stay, the log says why
    users.chmod(0o600)
    os.kill(env.upsd_pid, signal.SIGHUP)
    wait_log(env, "the old configuration stays in force")
    assert f"cannot read {users}: Permission denied" in env.upsd_log()
    assert admin_login(env, "newpw") == "OK FSD-SET"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_u_root_stays_root(make_env: Callable[..., NutEnv]) -> None:
    env = make_env()  # the harness passes -u root
    assert "-u" in env.upsd_argv() and "root" in env.upsd_argv()
    assert uid_of(env.upsd_pid) == 0
    assert admin_login(env) == "OK FSD-SET"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_root_without_u_and_without_a_nut_account_exits_1(make_env: Callable[..., NutEnv], tmp_path: Path) -> None:
    """In a private mount namespace /etc/passwd lacks the nut account: upsd says what to do, exits 1."""
    passwd = tmp_path / "passwd"
    passwd.write_text("".join(ln for ln in open("/etc/passwd").readlines() if not ln.startswith("nut:")))
    env = make_env(start=False)
    env.write_configs()
    script = 'mount --bind "$0" /etc/passwd || exit 99; exec "$@"'
    out = subprocess.run(["unshare", "--mount", "sh", "-c", script, str(passwd), sys.executable, "-m", "nutlite",
                          "upsd", "-F"], env=env.environ(), cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=30)
    if out.returncode == 99 or "unshare:" in out.stderr:
        pytest.skip(f"cannot make a private mount namespace here: {out.stderr.strip()}")
    assert out.returncode == 1, out.stderr
    assert "no 'nut' account" in out.stderr and "-u root" in out.stderr
    assert "Traceback" not in out.stderr
