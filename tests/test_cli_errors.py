"""What a user sees when something is wrong, through real processes: start-up errors about a path say
which path, its owner and mode, who the program runs as and what to change (NUT FAQ #4), and no Python
traceback reaches the user (the last-resort guard of ``nutlite.cli``); the driver command line takes
every flag of Debian's drivers, ``-h`` lists a driver's settings, and every command a message hints at
runs."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import DATA_DIR, REAL_NUT_DIR, REPO_ROOT, STAY_ROOT, readable_install, require_real_nut

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to switch users")


def nutlite(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=REPO_ROOT)


def no_traceback(r: subprocess.CompletedProcess[str]) -> str:
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    return out


def mode_of(path: Path) -> str:
    return f"mode {stat.S_IMODE(os.stat(path).st_mode):04o}"


class Site:
    """A configuration folder and a state folder that the user ``nut`` can get at (pytest's tmp dirs
    are root-only), with one dummy-ups UPS [u] on x.dev."""

    def __init__(self, ups_conf: str = "[u]\n  driver = dummy-ups\n  port = x.dev\n") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="nutlite-err-"))
        self.conf, self.state = self.base / "conf", self.base / "state"
        self.conf.mkdir()
        self.state.mkdir()
        (self.conf / "ups.conf").write_text(ups_conf)
        shutil.copyfile(DATA_DIR / "conformance.dev", self.conf / "x.dev")
        for d in (self.base, self.conf):
            d.chmod(0o755)
        for f in self.conf.iterdir():
            f.chmod(0o644)
        self.state.chmod(0o777)

    def env(self, **extra: str) -> dict[str, str]:
        skip = ("NUT_ALTPIDPATH", "NOTIFY_SOCKET", "NUTLITE_DEBUG")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env.update(NUT_CONFPATH=str(self.conf), NUT_STATEPATH=str(self.state), PYTHONPATH=str(REPO_ROOT))
        env.update(extra)
        return env

    def driver(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return nutlite("driver", "-a", "u", "-F", *args, env=self.env(**extra))

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.remove()


def assert_faq4(out: str, path: Path, user: str, advice: str) -> None:
    """The facts of NUT FAQ #4 about ``path`` for a program running as ``user``, and the advice."""
    assert str(path) in out, out
    assert f"This program is currently running as {user} (UID {pwd.getpwnam(user).pw_uid})" in out, out
    assert re.search(rf"{re.escape(str(path))} is owned by user \S+ \(UID \d+\), group \S+ \(GID \d+\), "
                     rf"mode {stat.S_IMODE(os.stat(path).st_mode):04o}", out), out
    assert advice in out, out


# --------------------------------------------------------------------------------------------------
# Start-up errors about paths


@needs_root
def test_state_folder_the_driver_user_cannot_write(site: Site) -> None:
    """Started as root, the driver becomes nut; a root-owned 0755 state folder is then not writable."""
    site.state.chmod(0o755)
    r = site.driver()
    out = no_traceback(r)
    assert r.returncode != 0
    assert_faq4(out, site.state, "nut", f"Make {site.state} writable by nut")
    assert not (site.state / "dummy-ups-u").exists()


@needs_root
def test_old_socket_the_driver_user_cannot_replace(site: Site) -> None:
    """A socket left by an earlier start as root, in a folder the nut user may write but where the
    sticky bit keeps it from removing root's files (this was a PermissionError traceback)."""
    import socket

    site.state.chmod(0o1777)
    old = site.state / "dummy-ups-u"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(old))
    r = site.driver()
    out = no_traceback(r)
    assert r.returncode != 0
    assert "cannot replace the old driver socket" in out
    assert_faq4(out, old, "nut", "remove it")


def test_missing_state_folder(site: Site) -> None:
    missing = site.base / "no-such-state"
    r = nutlite("driver", "-a", "u", "-F", *STAY_ROOT,
                env=site.env(NUT_STATEPATH=str(missing)))
    out = no_traceback(r)
    assert r.returncode != 0
    assert f"{missing} does not exist" in out and f"mkdir -p {missing}" in out, out
    assert re.search(rf"{re.escape(str(site.base))} is owned by user \S+ .*{mode_of(site.base)}", out), out


@needs_root
def test_unreadable_definition_file(site: Site) -> None:
    dev = site.conf / "x.dev"
    dev.chmod(0o600)
    r = site.driver()
    out = no_traceback(r)
    assert r.returncode != 0
    assert "cannot open the dummy-ups definition file" in out
    assert_faq4(out, dev, "nut", f"Make {dev} readable by nut")


@needs_root
@pytest.mark.parametrize("folder_mode", [0o755, 0o700], ids=["port-0600", "folder-0700"])
def test_serial_port_the_driver_user_cannot_open(site: Site, folder_mode: int) -> None:
    """The port is root's (0600), or in a folder only root may search (this said "does not exist")."""
    folder = site.base / "dev"
    folder.mkdir(mode=folder_mode)
    folder.chmod(folder_mode)
    port = folder / "ttyS9"
    port.write_text("")
    port.chmod(0o600)
    (site.conf / "ups.conf").write_text(f"[u]\n  driver = genericups\n  upstype = 0\n  port = {port}\n")
    r = run_as(None, ["driver", "-a", "u", "-F"], site.env(NUTLITE_LOCKDIR=""), ("nutlite", "serial"))
    out = no_traceback(r)
    assert r.returncode != 0
    assert f"Unable to open {port}: Permission denied" in out, out
    assert_faq4(out, port if folder_mode == 0o755 else folder, "nut", "fix the permissions or ownership")


def run_as(user: str | None, args: list[str], env: dict[str, str],
           packages: tuple[str, ...] = ("nutlite",)) -> subprocess.CompletedProcess[str]:
    """``nutlite args`` from a copy of ``packages`` that the user nut may read, as ``user`` (None: as
    root, for a program that drops root by itself); ``env`` gets the copy's PYTHONPATH."""
    with readable_install(packages, user="nut") as install:
        return subprocess.run(install.argv(*args, user=user), env=install.env(env), capture_output=True,
                              text=True, timeout=30, cwd=install.folder, stdin=subprocess.DEVNULL)


def unreadable_as_nut(path: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Started as nut, ``nutlite args`` cannot read ``path`` (made root-only): it says so, with the facts
    of NUT FAQ #4 and the advice, and no traceback."""
    path.chmod(0o600)
    r = run_as("nut", args, env)
    out = no_traceback(r)
    assert f"cannot read {path}: Permission denied" in out, out
    assert_faq4(out, path, "nut", f"Make {path} (and its folder) readable by nut")
    return r


@needs_root
def test_unreadable_ups_conf(site: Site) -> None:
    """Started as nut (as a user would start it by hand), a root-only ups.conf cannot be read."""
    r = unreadable_as_nut(site.conf / "ups.conf", ["driver", "-a", "u", "-F"], site.env())
    assert r.returncode != 0


@needs_root
def test_config_folder_the_user_cannot_search(site: Site) -> None:
    site.conf.chmod(0o700)
    r = run_as("nut", ["driver", "-a", "u", "-F"], site.env())
    out = no_traceback(r)
    assert r.returncode != 0
    assert f"{site.conf / 'ups.conf'} cannot be looked at: Permission denied" in out, out
    assert_faq4(out, site.conf, "nut", "readable by nut")


def test_missing_ups_conf(site: Site) -> None:
    (site.conf / "ups.conf").unlink()
    r = site.driver()
    out = no_traceback(r)
    assert r.returncode != 0
    assert f"{site.conf / 'ups.conf'} does not exist" in out and "point NUT_CONFPATH at the folder" in out, out


# --------------------------------------------------------------------------------------------------
# The last-resort guard


def guarded_run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A process whose tool fails the way a bug would (``code`` is its body), run under the guard
    that ``nutlite.cli.main`` puts around every tool."""
    prog = ("import sys\nfrom nutlite.cli import guarded\n"
            f"def tool(argv):\n    {code}\n"
            "raise SystemExit(guarded('sometool', tool, sys.argv[1:]))\n")
    environ = {k: v for k, v in os.environ.items() if k != "NUTLITE_DEBUG"}
    environ.update(env, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-c", prog, *args], capture_output=True, text=True, timeout=30,
                          env=environ)


def test_internal_error_is_one_line_and_where_to_report() -> None:
    r = guarded_run("return {}['missing']")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    first, *rest = r.stderr.splitlines()
    assert first == "nutlite sometool: internal error: KeyError: 'missing'"
    assert any("report it" in line and "NUTLITE_DEBUG=1" in line for line in rest), r.stderr


@pytest.mark.parametrize(("args", "env"), [((), {"NUTLITE_DEBUG": "1"}), (("-D",), {}), (("-DD",), {})])
def test_internal_error_traceback_on_request(args: tuple[str, ...], env: dict[str, str]) -> None:
    r = guarded_run("return {}['missing']", *args, **env)
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "nutlite sometool: internal error: KeyError: 'missing'" in r.stderr


def test_internal_error_of_a_daemon_goes_to_its_log() -> None:
    r = guarded_run("from nutlite.daemon import setup_logging; setup_logging('sometool'); return 1 / 0")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = r"^sometool\[\d+\]: nutlite sometool: internal error: ZeroDivisionError"
    assert re.search(line, r.stderr, re.M), r.stderr


def test_system_exit_passes_through() -> None:
    r = guarded_run("raise SystemExit(7)")
    assert r.returncode == 7 and r.stderr == ""


def test_ctrl_c_exits_130_quietly(site: Site) -> None:
    """A driver printing its data after 5 polls is interrupted (this was a KeyboardInterrupt traceback)."""
    p = subprocess.Popen([sys.executable, "-m", "nutlite", "driver", "-a", "u", "-d", "5",
                          *STAY_ROOT], env=site.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 130, err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in err


def test_output_that_cannot_be_written() -> None:
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "nutlite", "driver", "-h"], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=30, cwd=REPO_ROOT)
    assert r.returncode == 1
    assert r.stderr.strip() == "nutlite driver: cannot write the output: No space left on device"


def test_closed_pipe_ends_quietly() -> None:
    r_fd, w_fd = os.pipe()
    os.close(r_fd)  # nobody reads: the first write fails with EPIPE
    try:
        r = subprocess.run([sys.executable, "-m", "nutlite", "dummy-ups", "-h"], stdout=w_fd,
                           stderr=subprocess.PIPE, text=True, timeout=30, cwd=REPO_ROOT)
    finally:
        os.close(w_fd)
    assert r.returncode == 141 and r.stderr == ""


@pytest.mark.parametrize("tool", ["upsc", "upscmd", "upsrw", "upslog", "upsdrvctl", "upsmon", "upsd"])
def test_closed_pipe_is_the_same_for_every_tool(tool: str) -> None:
    """Each tool's -h into a pipe nobody reads: exit status 141 (as a shell shows SIGPIPE), no message."""
    r_fd, w_fd = os.pipe()
    os.close(r_fd)
    try:
        r = subprocess.run([sys.executable, "-m", "nutlite", tool, "-h"], stdout=w_fd, stderr=subprocess.PIPE,
                           text=True, timeout=30, cwd=REPO_ROOT)
    finally:
        os.close(w_fd)
    assert (r.returncode, r.stderr) == (141, ""), r.stderr


# --------------------------------------------------------------------------------------------------
# The driver command line: NUT's flags, -h, the names of the drivers


def debian_flags(driver: str) -> list[tuple[str, str | None]]:
    """The flags ``/lib/nut/<driver> -h`` lists: (flag, argument placeholder or None); [] without it."""
    if not (REAL_NUT_DIR / driver).exists():
        return []
    text = subprocess.run([str(REAL_NUT_DIR / driver), "-h"], capture_output=True, text=True, timeout=30).stdout
    flags = re.findall(r"^  (-[A-Za-z])(?: (<[^>]+>))?\s+- ", text, re.M)
    assert len(flags) > 10, text
    return [(f, a or None) for f, a in flags]


DUMMY_UPS_FLAGS = dict(debian_flags("dummy-ups"))


ARGS = {"<id>": "u", "<count>": "1", "<int>": "1", "<dir>": "/", "<user>": "root", "<group>": "root",
        "<var>=<val>": "mode=dummy-once"}


@pytest.mark.parametrize("flag", sorted(DUMMY_UPS_FLAGS) or ["(Debian's dummy-ups is missing)"])
def test_every_flag_of_debians_dummy_ups_works(site: Site, flag: str) -> None:
    """Each flag, given as Debian's -h shows it, does its job in a short run of ours."""
    require_real_nut()
    arg = DUMMY_UPS_FLAGS[flag]
    words = [flag, *([ARGS[arg]] if arg else [])]
    user = ["-u", "root"] if ROOT and flag != "-u" else []
    if flag in ("-h", "-V", "-L"):
        r = nutlite("dummy-ups", *words, env=site.env())
        expected = {"-h": "usage: nutlite dummy-ups", "-V": "dummy-ups - Device simulation", "-L": 'VALUE mode "'}
        assert r.returncode == 0 and expected[flag] in r.stdout, r.stdout + r.stderr
    elif flag == "-k":
        r = nutlite("dummy-ups", "-a", "u", "-k", *user, env=site.env())
        assert r.returncode == 0 and "simulated UPS shutdown" in r.stderr, r.stderr
    elif flag in ("-a", "-s"):
        extra = ["-x", "port=x.dev"] if flag == "-s" else []
        r = nutlite("dummy-ups", *words, *extra, "-d", "1", *user, env=site.env())
        assert r.returncode == 0 and "ups.mfr: ACME" in r.stdout, r.stdout + r.stderr
    else:
        r = nutlite("dummy-ups", "-a", "u", "-d", "1", *user, *words, env=site.env())
        assert r.returncode == 0 and "ups.mfr: ACME" in r.stdout, r.stdout + r.stderr
        if flag == "-x":
            assert "driver.parameter.mode: dummy-once" in r.stdout
        if flag == "-i":
            assert "driver.parameter.pollinterval: 1" in r.stdout
    no_traceback(r)


@pytest.mark.parametrize("driver", ["dummy-ups", "nutdrv_qx", "apcsmart", "genericups"])
def test_every_flag_of_debians_driver_is_accepted(driver: str) -> None:
    """Ours takes each flag Debian's driver lists (checked without a device: with -h after it)."""
    require_real_nut()
    flags = debian_flags(driver)
    for flag, arg in flags:
        words = [flag, *([ARGS[arg]] if arg else [])]
        r = nutlite(driver, *words, "-h")
        assert r.returncode == 0 and f"usage: nutlite {driver}" in r.stdout, (words, r.stderr)
        assert re.search(rf"^  {flag}\b", r.stdout, re.M), f"{driver} -h does not list {flag}"


def test_driver_help_from_the_ups_conf_section(site: Site) -> None:
    (site.conf / "ups.conf").write_text("[a]\n  driver = genericups\n  upstype = 1\n  port = /dev/null\n"
                                        "[b]\n  driver = dummy-ups\n  port = x.dev\n")
    for ups, driver in (("a", "genericups"), ("b", "dummy-ups")):
        r = nutlite("driver", "-a", ups, "-h", env=site.env())
        no_traceback(r)
        assert r.returncode == 0 and f"Settings of the {driver} driver" in r.stdout, r.stdout + r.stderr
        listed = nutlite(driver, "-L").stdout  # NUT's parseable list: VALUE|FLAG name "meaning"
        names = re.findall(r'^(?:VALUE|FLAG) (\S+) "', listed, re.M)
        assert names
        for name in names:
            assert re.search(rf"^  {re.escape(name)}(=<value>)?\s", r.stdout, re.M), f"{driver}: {name} not listed"
        r = nutlite("driver", "-a", ups, "-L", env=site.env())
        assert r.returncode == 0 and r.stdout == listed


def test_unknown_driver_lists_the_available_and_the_planned(site: Site) -> None:
    (site.conf / "ups.conf").write_text("[u]\n  driver = no-such-driver\n  port = x\n")
    r = site.driver(*STAY_ROOT)
    no_traceback(r)
    assert r.returncode == 1
    m = re.search(r"nutlite has no driver named 'no-such-driver'; available: ([^;\n]+)(?:; planned: ([^\n]+))?",
                  r.stderr)
    assert m, r.stderr
    available = m.group(1).split(", ")
    planned = m.group(2).split(", ") if m.group(2) else []
    assert "dummy-ups" in available and not set(available) & set(planned)
    for name in available:  # each one listed as available is there ...
        h = nutlite(name, "-h")
        assert h.returncode == 0 and f"Settings of the {name} driver" in h.stdout, h.stderr
    for name in planned:  # ... and each planned one says it is not in this build yet
        h = nutlite(name, "-a", "u", env=site.env())
        no_traceback(h)
        assert h.returncode == 1
        assert f"the {name} driver is planned but not yet in this build" in h.stderr, h.stderr


def hinted_commands(text: str) -> list[str]:
    """The commands a message hints at in quotes, e.g. 'nutlite dummy-ups -h' (not 'nutlite <tool> -h')."""
    return [c for c in re.findall(r"'(nutlite [^'\n]*)'", text) if "<" not in c and "..." not in c]


@pytest.mark.parametrize(
    ("section", "args", "hint"),
    [
        ("driver = dummy-ups\nport = x.dev\nfoo = bar\n", ["-a", "u", "-F"], "nutlite dummy-ups -h"),
        ("driver = dummy-ups\nport = x.dev\nbogus\n", ["-a", "u", "-F"], "nutlite dummy-ups -h"),
        ("driver = genericups\nport = /dev/null\n", ["-a", "u", "-F"], "nutlite genericups -h"),
        ("driver = dummy-ups\nport = x.dev\n", ["-L"], "nutlite dummy-ups -L"),
        ("driver = dummy-ups\nport = x.dev\n", ["-s", "u", "-x", "port=x.dev"], "nutlite driver -h"),
        ("driver = dummy-ups\nport = x.dev\n", ["-F"], "nutlite driver -h"),
    ],
)
def test_every_hinted_command_runs(site: Site, section: str, args: list[str], hint: str) -> None:
    (site.conf / "ups.conf").write_text(f"[u]\n{section}")
    r = nutlite("driver", *args, *STAY_ROOT, env=site.env())
    assert r.returncode == 1
    hints = hinted_commands(r.stderr)
    assert hint in hints, r.stderr
    for command in hints:
        h = subprocess.run([sys.executable, "-m", *shlex.split(command)], capture_output=True, text=True,
                           timeout=30, cwd=REPO_ROOT, env=site.env())
        assert h.returncode == 0 and h.stdout, f"{command}: exit {h.returncode}\n{h.stderr}"


def test_hints_in_the_source_name_commands_that_run() -> None:
    """Every 'nutlite …' command quoted in a message of the package runs as written."""
    found: set[str] = set()
    for path in (REPO_ROOT / "nutlite").rglob("*.py"):
        found.update(hinted_commands(path.read_text()))
    found = {c for c in found if "{" not in c}  # f-string templates are checked through real messages above
    assert found
    for command in sorted(found):
        words = shlex.split(command)
        h = subprocess.run([sys.executable, "-m", *words], capture_output=True, text=True, timeout=30,
                           cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        assert h.returncode == 0, f"{command}: exit {h.returncode}\n{h.stderr}"
