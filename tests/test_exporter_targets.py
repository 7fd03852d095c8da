"""nutlite exporter: which servers /probe and /ups_metrics may name, and where NUT credentials go.

The exporter runs as `python -m nutlite exporter` (a real process), against listeners that record
whether a connection arrived, a scripted NUT server that records what it is sent, and a real upsd from
the harness. The pattern matcher behind --allow-target is tested on its own first.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import select
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import REPO_ROOT, STAY_ROOT, NutEnv, free_port, readable_install
from test_exporter import ScriptedNut, get, parse, value

from nutlite.exporter.targets import AllowList, Target, TargetPattern, TargetPatternError

NO_CONNECTION_WAIT = 0.5  # seconds a refused target's listener waits for a connection that must not come

# ------------------------------------------------------------------------------------------------
# The pattern matcher


def allows(pattern: str, target: str) -> bool:
    return TargetPattern.parse(pattern).matches(Target.parse(target))


@pytest.mark.parametrize(
    ("pattern", "target", "expected"),
    [
        # A host name matches the name as written, on any port; never an address or another name.
        ("nas.lan", "nas.lan", True),
        ("nas.lan", "nas.lan:4000", True),
        ("nas.lan", "NAS.Lan.", True),
        ("nas.lan", "nas.lan.evil.example", False),
        ("nas.lan", "evil-nas.lan", False),
        ("nas.lan", "10.0.0.5", False),
        # host:port: that port only.
        ("nas.lan:3493", "nas.lan", True),
        ("nas.lan:3493", "nas.lan:3494", False),
        # Addresses, in any spelling of the same address.
        ("10.0.0.5", "10.0.0.5:3493", True),
        ("10.0.0.5", "10.0.0.6", False),
        ("10.0.0.5", "[::ffff:10.0.0.5]", True),
        ("10.0.0.5", "10.0.0.5.", False),  # a name (resolved by DNS), not the address
        ("::1", "[::1]:3493", True),
        ("[::1]:3493", "[0:0:0::1]:3493", True),
        ("[::1]:3493", "[::1]:3494", False),
        ("[::1]:3493", "127.0.0.1:3493", False),
        # CIDR: a target written as an address inside the network.
        ("10.0.0.0/24", "10.0.0.77:3493", True),
        ("10.0.0.0/24", "10.0.0.77:9999", True),
        ("10.0.0.0/24", "10.0.1.1", False),
        ("10.0.0.0/24", "[::ffff:10.0.0.9]", True),
        ("10.0.0.0/24", "ten.lan", False),  # names are not resolved
        ("10.0.0.0/24", "10.0.0.5.", False),
        ("10.0.0.0/24", "10.0.5", False),  # inet_aton's short form is a name here, not 10.0.0.5
        ("127.0.0.0/8", "localhost", False),
        ("2001:db8::/32", "[2001:db8:1::5]:3493", True),
        ("2001:db8::/32", "[2001:db9::1]", False),
        ("2001:db8::/32", "10.0.0.1", False),
        ("::/0", "[2001:db8::1]", True),
        ("0.0.0.0/0", "192.168.1.1", True),
        ("0.0.0.0/0", "nas.lan", False),
        # '*': anything.
        ("*", "nas.lan:1", True),
        ("*", "[2001:db8::1]", True),
    ],
)
def test_pattern_matching(pattern: str, target: str, expected: bool) -> None:
    assert allows(pattern, target) is expected


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "empty"),
        ("10.0.0.0/33", "not a CIDR network"),
        ("10.0.0/24", "not a CIDR network"),
        ("nas.lan/24", "not a CIDR network"),
        ("10.0.0.0/24:3493", "not a CIDR network"),
        ("*.lan", "must stand alone"),
        ("*:3493", "must stand alone"),
        ("nas.lan:0", "not a number from 1 to 65535"),
        ("nas.lan:65536", "not a number from 1 to 65535"),
        ("nas.lan:http", "not a number from 1 to 65535"),
        ("nas.lan:", "not a number from 1 to 65535"),
        ("[::1]:x", "not a number from 1 to 65535"),
        ("[nas.lan]:3493", "brackets hold an IPv6 address"),
        ("[::1", "brackets hold an IPv6 address"),
        ("[::1]3493", "expected ':PORT'"),
        ("nas lan", "not a host name"),
        ("nas..lan", "not a host name"),
        ("-nas.lan", "not a host name"),
        ("nas.lan:3493:1", "in brackets"),
    ],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, why: str) -> None:
    with pytest.raises(TargetPatternError) as err:
        TargetPattern.parse(pattern)
    message = str(err.value)
    assert message.startswith(f"bad --allow-target {pattern!r}: "), message
    assert why in message


def test_allow_list_defaults_to_the_configured_servers() -> None:
    allow = AllowList.parse([Target("127.0.0.1", 3493), Target.parse("nas.lan:4000")], [])
    assert allow.allows(Target.parse("127.0.0.1")) and allow.allows(Target.parse("NAS.lan:4000"))
    assert not allow.allows(Target.parse("127.0.0.1:3494"))  # a configured host, another port
    assert not allow.allows(Target.parse("nas.lan"))
    assert not allow.allows(Target.parse("10.0.0.1"))
    allow = AllowList.parse([Target("127.0.0.1")], ["10.0.0.0/24", "nas.lan:3493", "[::1]"])
    assert allow.allows(Target.parse("10.0.0.3")) and allow.allows(Target.parse("[::1]:1"))
    assert allow.allows(Target.parse("nas.lan")) and not allow.allows(Target.parse("nas.lan:3494"))


# ------------------------------------------------------------------------------------------------
# The command


@contextlib.contextmanager
def exporter(tmp_path: Path, *args: str) -> Iterator[tuple[str, Path]]:
    """`nutlite exporter` on a free loopback port with ``args``; yields (base URL, its stderr file)."""
    port = free_port()
    log = tmp_path / f"exporter-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-m", "nutlite", "exporter", "--listen", f"127.0.0.1:{port}", "--timeout", "2",
            *STAY_ROOT, *args]
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                get(url + "/-/healthy", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, f"the exporter exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"the exporter did not start: {log.read_text()}"
                time.sleep(0.05)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0, log.read_text()


@contextlib.contextmanager
def listener(family: socket.AddressFamily = socket.AF_INET) -> Iterator[socket.socket]:
    """A real listening socket on loopback: a port a refused target names."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.listen(4)
    try:
        yield sock
    finally:
        sock.close()


def assert_no_connection(sock: socket.socket) -> None:
    readable, _, _ = select.select([sock], [], [], NO_CONNECTION_WAIT)
    assert not readable, "the exporter connected to a refused target"


def creds_file(tmp_path: Path, sections: str = "") -> Path:
    f = tmp_path / "exporter.credentials"
    f.write_text(f"username = monuser\npassword = secret\n{sections}")
    f.chmod(0o600)
    return f


def test_other_targets_are_refused_without_a_connection(tmp_path: Path) -> None:
    """The reported problem: with only --server and a credentials file, a URL could send the exporter
    (and its NUT password) anywhere. Now: 403, a log line, and not even a TCP connection."""
    nut = ScriptedNut({"u": {"ups.status": "OL"}})
    try:
        with listener() as other, listener(socket.AF_INET6) as other6, \
                exporter(tmp_path, "--server", f"127.0.0.1:{nut.port}",
                         "--credentials-file", str(creds_file(tmp_path))) as (url, log):
            port = other.getsockname()[1]
            for path in (f"/probe?target=127.0.0.1:{port}",
                         f"/ups_metrics?server=127.0.0.1&serverport={port}",
                         f"/ups_metrics?serverport={port}",  # the configured host, another port
                         f"/ups_metrics?server=127.0.0.1:{nut.port},127.0.0.1:{port}",
                         f"/probe?target=[::1]:{other6.getsockname()[1]}"):
                status, body = get(url + path)
                assert status == 403, (path, status, body)
                assert b"refused" in body and b"--allow-target" in body, body
                assert b"secret" not in body
            assert_no_connection(other)
            assert_no_connection(other6)
            assert nut.lines == []  # a refused request scrapes no server at all, not even an allowed one
            status, body = get(f"{url}/probe?target=127.0.0.1:{port}")
            assert body.decode() == (
                f"target 127.0.0.1:{port} refused: this exporter scrapes only its --server targets, the servers"
                f" of its credentials file and what --allow-target allows; start it with --allow-target"
                f" 127.0.0.1:{port} (or a network such as 10.0.0.0/24, or '*') to allow it\n")
            # Its own server is still scraped, through every endpoint, with the default login.
            assert get(f"{url}/probe?target=127.0.0.1:{nut.port}")[0] == 200
            assert get(f"{url}/ups_metrics?server=127.0.0.1&serverport={nut.port}")[0] == 200
            assert nut.lines.count("USERNAME monuser") == 2
            # A malformed target is a bad request, also without a connection.
            assert get(f"{url}/probe?target=nas%0Alan:{port}")[0] == 400
            assert_no_connection(other)
            text = log.read_text()
    finally:
        nut.close()
    assert f"refused /probe target 127.0.0.1:{port} asked by 127.0.0.1" in text, text
    assert f"refused /ups_metrics target 127.0.0.1:{port} asked by 127.0.0.1" in text, text
    assert text.count("refused /") == 6, text  # one line per refused request
    assert "secret" not in text


@pytest.mark.parametrize("how", ["host:port", "host", "cidr", "star"])
def test_allowed_targets_are_scraped(how: str, tmp_path: Path, nutlite_env: NutEnv) -> None:
    port = nutlite_env.port
    pattern = {"host:port": f"127.0.0.1:{port}", "host": "127.0.0.1", "cidr": "127.0.0.0/8", "star": "*"}[how]
    with exporter(tmp_path, "--server", f"127.0.0.1:{free_port()}", "--allow-target", pattern) as (url, _):
        status, body = get(f"{url}/probe?target=127.0.0.1:{port}")
        assert status == 200, body
        assert value(parse(body), "network_ups_tools_battery_charge", ups="dummy") == 87.0
        status, body = get(f"{url}/ups_metrics?server=127.0.0.1&serverport={port}&ups=dummy")
        assert status == 200, body
        assert value(parse(body), "network_ups_tools_up", ups="dummy") == 1.0
        # A name is not an address: the CIDR does not cover "localhost" (it would, resolved).
        expected = 200 if how == "star" else 403
        assert get(f"{url}/probe?target=localhost:{port}")[0] == expected
        if how == "host:port":
            with listener() as other:  # the same address, another port: not allowed
                assert get(f"{url}/probe?target=127.0.0.1:{other.getsockname()[1]}")[0] == 403
                assert_no_connection(other)


def test_credentials_go_only_to_their_server(tmp_path: Path) -> None:
    """The section-less login goes to the --server only; a section's login only to that server; a target
    a URL names (allowed by '*') gets no login at all."""
    configured = ScriptedNut({"a": {"ups.status": "OL"}})
    chosen = ScriptedNut({"b": {"ups.status": "OB"}})
    section = ScriptedNut({"c": {"ups.status": "OL"}})
    creds = creds_file(tmp_path, f"\n[127.0.0.1:{section.port}]\nusername = sectionuser\npassword = sectionpw\n")
    try:
        with exporter(tmp_path, "--server", f"127.0.0.1:{configured.port}", "--credentials-file", str(creds),
                      "--allow-target", "*") as (url, log):
            assert get(url + "/metrics")[0] == 200
            assert configured.lines[:2] == ["USERNAME monuser", "PASSWORD secret"]
            for path in (f"/probe?target=127.0.0.1:{chosen.port}",
                         f"/ups_metrics?server=127.0.0.1&serverport={chosen.port}",
                         f"/ups_metrics?serverport={chosen.port}"):
                status, body = get(url + path)
                assert status == 200, (path, body)
                assert value(parse(body), "network_ups_tools_ups_status", ups="b", flag="OB") == 1.0
            assert chosen.lines == ["LIST UPS", "LIST VAR b", "LOGOUT"] * 3
            status, body = get(f"{url}/probe?target=127.0.0.1:{section.port}")
            assert status == 200
            assert section.lines[:2] == ["USERNAME sectionuser", "PASSWORD sectionpw"]
            # And /metrics again: the configured server still gets its own login, never the section's.
            get(url + "/metrics")
            text = log.read_text()
    finally:
        for nut in (configured, chosen, section):
            nut.close()
    assert not [line for line in configured.lines if "section" in line]
    assert configured.lines.count("PASSWORD secret") == 2
    assert not [line for line in section.lines if "monuser" in line or "secret" in line.split()]
    assert "secret" not in text and "sectionpw" not in text


def test_credentials_file_sections_are_allowed_by_default(tmp_path: Path) -> None:
    section = ScriptedNut({"c": {"ups.status": "OL"}})
    creds = creds_file(tmp_path, f"[127.0.0.1:{section.port}]\nusername = sectionuser\npassword = sectionpw\n")
    try:
        with exporter(tmp_path, "--server", f"127.0.0.1:{free_port()}", "--credentials-file", str(creds)) as (url, _):
            status, body = get(f"{url}/ups_metrics?server=127.0.0.1&serverport={section.port}")
            assert status == 200, body
            assert value(parse(body), "network_ups_tools_up", ups="c") == 1.0
    finally:
        section.close()
    assert section.lines[:2] == ["USERNAME sectionuser", "PASSWORD sectionpw"]


@pytest.mark.parametrize("pattern", ["10.0.0.0/33", "*.lan", "nas.lan:99999", ""])
def test_bad_allow_target_is_a_clear_start_up_error(pattern: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "nutlite", "exporter", "--listen", f"127.0.0.1:{free_port()}",
                          "--allow-target", "127.0.0.1", "--allow-target", pattern],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"nutlite exporter: bad --allow-target {pattern!r}: "), out.stderr
    assert len(out.stderr.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_started_as_root_it_runs_as_nut(tmp_path: Path, nutlite_env: NutEnv) -> None:
    """Without -u, an exporter started by root switches to NUT's account once it listens, and serves."""
    pw = pwd.getpwnam("nut")
    install = readable_install(("nutlite", "prometheus_client", "sdnotify"))
    port = free_port()
    proc = subprocess.Popen(install.argv("exporter", "--listen", f"127.0.0.1:{port}",
                                         "--server", f"127.0.0.1:{nutlite_env.port}"),
                            env=install.env(), cwd=install.folder, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.05)
        assert status == 200 and b'ups="dummy"' in body, body
        uid = re.search(r"^Uid:\s+(\d+)", Path(f"/proc/{proc.pid}/status").read_text(), re.M)
        assert uid and int(uid.group(1)) == pw.pw_uid
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        install.remove()
