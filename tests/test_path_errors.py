"""The daemons' permission and path errors, through real processes: like the drivers' (see
test_cli_errors.py), upsd, upsmon and upslog name the path, who they run as, the owner, group and mode
of the path and of its folder, and what to change (NUT FAQ #4), without a Python traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import DEFAULT_USERS, STAY_ROOT, free_port, readable_install
from test_cli_errors import Site, assert_faq4, needs_root, no_traceback, unreadable_as_nut

UPSMON_CONF = "MONITOR u@127.0.0.1:{port} 1 monpri pripw primary\nSHUTDOWNCMD \"/bin/true\"\n"


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    port = free_port()
    for name, text in (("upsd.conf", f"LISTEN 127.0.0.1 {port}\n"), ("upsd.users", DEFAULT_USERS),
                       ("upsmon.conf", UPSMON_CONF.format(port=port))):
        (s.conf / name).write_text(text)
        (s.conf / name).chmod(0o644)
    yield s
    s.remove()


def until_output(argv: list[str], env: dict[str, str], cwd: Path, text: str, timeout: float = 20) -> str:
    """Start a daemon, wait until its output holds ``text`` (or it exits), stop it, return the output."""
    log = cwd / "daemon.out"
    with open(log, "wb") as out:
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=cwd, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while text not in log.read_text(errors="replace") and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    return log.read_text(errors="replace")


@needs_root
@pytest.mark.parametrize(("tool", "conf"), [("upsd", "upsd.users"), ("upsmon", "upsmon.conf")])
def test_started_as_nut_cannot_read_its_conf(site: Site, tool: str, conf: str) -> None:
    """Started as nut by hand, upsd and upsmon say which file they cannot read and what to change."""
    r = unreadable_as_nut(site.conf / conf, [tool, "-F"], site.env())
    assert r.returncode == 1


@needs_root
def test_upsd_as_root_with_u_nut_says_what_it_cannot_reach(site: Site) -> None:
    """Root reads upsd.users at start; as nut, upsd could not re-read it, nor connect to a driver socket
    that only root may use: both say the path, its owner and mode, and what to change."""
    users = site.conf / "upsd.users"
    users.chmod(0o600)
    sock_path = site.state / "dummy-ups-u"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as drv:
        drv.bind(str(sock_path))
        drv.listen(1)
        sock_path.chmod(0o600)
        with readable_install(user="nut") as install:
            out = until_output(install.argv("upsd", "-F", "-u", "nut"), install.env(site.env()), install.folder,
                               f"Can't connect to UPS [u] at {sock_path}")
            assert "Traceback" not in out, out
            assert f"cannot re-read {users}: not readable by user nut" in out, out
            assert_faq4(out, users, "nut", "A reload will keep the users read at start")
            assert f"Can't connect to UPS [u] at {sock_path}: Permission denied" in out, out
            assert_faq4(out, sock_path, "nut", "run upsd as a member of the socket's group")


@needs_root
def test_upsmon_as_nut_cannot_use_its_powerdownflag(site: Site) -> None:
    folder = site.base / "private"
    folder.mkdir(mode=0o700)
    flag = folder / "killpower"
    conf = site.conf / "upsmon.conf"
    conf.write_text(conf.read_text() + f"POWERDOWNFLAG {flag}\n")
    with readable_install(user="nut") as install:
        out = until_output(install.argv("upsmon", "-F", user="nut"), install.env(site.env()), install.folder,
                           "POWERDOWNFLAG")
    assert "Traceback" not in out, out
    assert f"cannot read POWERDOWNFLAG {flag}: Permission denied" in out, out
    assert_faq4(out, folder, "nut", f"make {folder} writable by nut")


def test_upslog_cannot_open_its_log_file(site: Site) -> None:
    log = site.base / "missing" / "ups.log"
    r = subprocess.run([sys.executable, "-m", "nutlite", "upslog", "-s", "u@127.0.0.1:1",
                        "-l", str(log)], env=site.env(), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    out = no_traceback(r)
    assert r.returncode == 1
    assert f"could not open logfile {log}: No such file or directory" in out, out
    assert f"{log} does not exist" in out and f"{site.base} is owned by user" in out, out
    assert f"Create {log.parent} if it is missing" in out, out


def test_upsd_without_its_state_folder_says_where_the_sockets_are_looked_for(site: Site) -> None:
    missing = site.base / "nowhere"
    out = until_output([sys.executable, "-m", "nutlite", "upsd", "-F", *STAY_ROOT],
                       site.env(NUT_STATEPATH=str(missing)), site.base, "folder of the driver sockets")
    assert "Traceback" not in out, out
    assert f"no driver can be reached in the state folder {missing}: does not exist" in out, out
    assert f"{missing} does not exist" in out and f"{site.base} is owned by user" in out, out
    assert "point NUT_STATEPATH or STATEPATH in upsd.conf at the folder of the driver sockets" in out, out
