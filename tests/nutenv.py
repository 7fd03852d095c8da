"""A private NUT installation in a temporary directory, for integration and interop tests.

`NutEnv` writes ``ups.conf``, ``upsd.conf``, ``upsd.users`` and ``nut.conf`` into its own confpath,
uses its own statepath, picks a free loopback port, and starts one driver per UPS plus ``upsd`` --
each daemon in one of two flavours:

* ``"debian"``: Debian's real NUT 2.8.0 (``/lib/nut/<driver> -a <ups> -F``, ``/lib/nut/upsd -F``);
* ``"nutlite"``: this project (``python -m nutlite driver -a <ups> -F``, ``python -m nutlite upsd -F``);

and the flavours can be mixed (a nutlite driver feeding Debian's upsd and vice versa). A UPS can also be
served by `FakeDriver`, an in-process driver-socket server with scripted state (used to give both upsds
the same ENUM/RANGE/STRING:n variables, which dummy-ups cannot declare).

How the real NUT daemons are kept away from the real system:
* ``NUT_CONFPATH`` / ``NUT_STATEPATH`` (and ``NUT_ALTPIDPATH``) point at the private dirs, so nothing reads
  ``/etc/nut`` or touches ``/run/nut``;
* with ``-F`` neither Debian's upsd nor its drivers write a PID file (upsd only *reads*
  ``<statepath>/upsd.pid`` at start and logs that it is missing);
* as root, Debian's daemons would switch to the build-time user ``nut``, which could not read files in a
  root-owned tmp dir; we pass ``-u root`` (when running as root) so they keep running as root. They then
  only warn that the private files are world readable. nutlite daemons get the same ``-u`` flag.
* every daemon runs in its own session/process group and is killed with SIGKILL on teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The wire-level doubles NutEnv builds on; tests import them from here or from nutwire.
from nutwire import ConnectionClosed, FakeDriver, FakeVar, NutConnection, nut_quote, nut_split  # noqa: F401

REAL_NUT_DIR = Path("/lib/nut")
REAL_UPSD = REAL_NUT_DIR / "upsd"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Started as root, every daemon switches to user "nut", which may not read the checkout (CI's is root-only)
# nor root's tmp files: tests that are not about that switch pass these flags to stay root.
STAY_ROOT: list[str] = ["-u", "root"] if os.geteuid() == 0 else []


def as_user(user: str, *, clear_groups: bool = False) -> list[str]:
    """The setpriv words that run a command as ``user`` (with its groups, or with none); the calling
    test is skipped where there is no setpriv."""
    if shutil.which("setpriv") is None:
        import pytest

        pytest.skip("needs setpriv")
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups" if clear_groups else "--init-groups"]


@dataclass
class ReadableInstall:
    """A world-readable copy of some packages (``folder``, for PYTHONPATH) and an interpreter that the
    account the code runs as may use (``python``); a context manager that removes the copy."""

    python: str
    folder: Path

    @property
    def environ(self) -> dict[str, str]:
        """What a process's environment needs to import the copy (and nothing from a user site)."""
        return {"PYTHONPATH": str(self.folder), "PYTHONNOUSERSITE": "1"}

    def env(self, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
        """``base`` (default: this process's environment) with :attr:`environ` and ``extra``."""
        return {**(os.environ if base is None else base), **self.environ, **extra}

    def argv(self, *args: str, user: str | None = None, clear_groups: bool = False) -> list[str]:
        """``python -m nutlite args``, run as ``user`` through setpriv when one is named."""
        drop = as_user(user, clear_groups=clear_groups) if user else []
        return [*drop, self.python, "-m", "nutlite", *args]

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ReadableInstall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def readable_install(packages: Sequence[str] = ("nutlite", "sdnotify"), user: str = "nut") -> ReadableInstall:
    """Copies of ``packages`` (as this interpreter imports them) that every user may read, and an
    interpreter for them: what a daemon that runs as, or switched to, ``user`` can import, as from an
    installed package (the checkout and its venv may be in a root-only folder, as in CI). The
    interpreter is this one if ``user`` may run it and, once it is that user, still import the
    standard library modules a daemon loads late (and the packages); else the system's Python 3."""
    import importlib.util
    import pwd
    import tempfile

    site = Path(tempfile.mkdtemp(prefix="nutlite-site-"))
    for name in packages:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        src = Path(spec.origin)
        if src.name == "__init__.py":
            shutil.copytree(src.parent, site / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, site / src.name)
    for path in [site, *site.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    install = ReadableInstall(sys.executable, site)
    if os.geteuid() == 0:
        account = pwd.getpwnam(user)
        try:
            usable = subprocess.run([sys.executable, "-c", f"import concurrent.futures.thread, {', '.join(packages)}"],
                                    user=account.pw_uid, group=account.pw_gid, extra_groups=[], cwd=site,
                                    env=install.env(), capture_output=True).returncode == 0
        except OSError:  # the user may not even run it
            usable = False
        if not usable and os.access("/usr/bin/python3", os.X_OK):
            install.python = "/usr/bin/python3"
    return install


DATA_DIR = Path(__file__).resolve().parent / "data"

FLAVOURS = ("debian", "nutlite")

# Users for the standard test setup: an administrator, a user without any rights, and the two upsmon roles.
DEFAULT_USERS = """\
[admin]
  password = adminpw
  actions = SET FSD
  instcmds = ALL

[nobody]
  password = nobodypw

[monpri]
  password = pripw
  upsmon primary

[monsec]
  password = secpw
  upsmon secondary
"""


def real_nut_available() -> bool:
    """True if Debian's NUT daemons are installed here."""
    return REAL_UPSD.exists() and (REAL_NUT_DIR / "dummy-ups").exists()


def require_real_nut() -> None:
    """Skip the calling test if Debian's NUT is missing -- or fail if NUTLITE_REQUIRE_REAL_NUT=1."""
    import pytest

    if real_nut_available():
        return
    msg = "Debian's NUT 2.8.0 is not installed (/lib/nut/upsd missing)"
    if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
        pytest.fail(f"{msg}; install it: apt-get install nut-server nut-client python3-nut", pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class UpsSpec:
    """One ups.conf section.

    `launch`: "driver" = start the driver program (flavour per NutEnv), "fake" = serve it with a
    `FakeDriver` (set up `fake` before `NutEnv.start`), "none" = leave it without a driver.
    `env`: extra environment variables for this UPS's driver process (e.g. LD_PRELOAD of a test double).
    """

    name: str
    driver: str = "dummy-ups"
    port: str = "test.dev"
    desc: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    launch: str = "driver"
    fake: FakeDriver | None = None
    env: dict[str, str] = field(default_factory=dict)


def dummy_ups(name: str = "dummy", dev: str = "conformance.dev", **kwargs: object) -> UpsSpec:
    """A dummy-ups UPS reading `dev` from the confpath (pass ``files={dev: DATA_DIR / dev}`` to NutEnv)."""
    return UpsSpec(name, driver="dummy-ups", port=dev, **kwargs)  # type: ignore[arg-type]


@dataclass
class _Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


class NutEnvError(AssertionError):
    """The environment could not be brought up (raised as an assertion so pytest shows the message)."""


class NutEnv:
    """A private NUT setup (configs, statepath, port) with a driver per UPS and upsd.

    `driver_flavour` / `upsd_flavour`: "debian" or "nutlite" (mixing = cross-wiring).
    """

    def __init__(
        self,
        base: Path,
        upses: Sequence[UpsSpec],
        *,
        driver_flavour: str = "nutlite",
        upsd_flavour: str = "nutlite",
        users: str = DEFAULT_USERS,
        maxage: int | None = None,
        upsd_conf_extra: str = "",
        files: dict[str, str | bytes | Path] | None = None,
        ups_conf_global: str = "",
        upsd_args: Sequence[str] = (),
    ) -> None:
        for flavour in (driver_flavour, upsd_flavour):
            if flavour not in FLAVOURS:
                raise ValueError(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")
        self.base = Path(base)
        self.confpath = self.base / "etc"
        self.statepath = self.base / "state"
        self.logpath = self.base / "log"
        self.upses = {u.name: u for u in upses}
        self.driver_flavour = driver_flavour
        self.upsd_flavour = upsd_flavour
        self.users = users
        self.maxage = maxage
        self.upsd_conf_extra = upsd_conf_extra
        self.ups_conf_global = ups_conf_global
        self.upsd_args = list(upsd_args)
        self.files = dict(files or {})
        self.port = free_port()
        self._drivers: dict[str, _Proc] = {}
        self._upsd: _Proc | None = None
        self._restarts = 0

    # -- configuration
    def write_configs(self) -> None:
        for d in (self.confpath, self.statepath, self.logpath):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.statepath, 0o770)
        lines = [self.ups_conf_global] if self.ups_conf_global else []
        for u in self.upses.values():
            lines.append(f"[{u.name}]")
            lines.append(f"  driver = {u.driver}")
            lines.append(f"  port = {nut_quote(u.port)}")
            if u.desc is not None:
                lines.append(f"  desc = {nut_quote(u.desc)}")
            for k, v in u.options.items():
                lines.append(f"  {k} = {nut_quote(v)}")
            lines.append("")
        (self.confpath / "ups.conf").write_text("\n".join(lines) + "\n")
        self.write_upsd_conf()
        (self.confpath / "upsd.users").write_text(self.users)
        (self.confpath / "nut.conf").write_text("MODE=standalone\n")
        for name, content in self.files.items():
            target = self.confpath / name
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def write_upsd_conf(self) -> None:
        text = f"LISTEN 127.0.0.1 {self.port}\n"
        if self.maxage is not None:
            text += f"MAXAGE {self.maxage}\n"
        text += self.upsd_conf_extra
        (self.confpath / "upsd.conf").write_text(text)

    # -- process handling
    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("NUT_DEBUG_LEVEL", "NUT_QUIET_INIT_SSL", "UPSD_OPTIONS"):
            env.pop(k, None)
        env["NUT_CONFPATH"] = str(self.confpath)
        env["NUT_STATEPATH"] = str(self.statepath)
        env["NUT_ALTPIDPATH"] = str(self.statepath)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @staticmethod
    def _user_args() -> list[str]:
        # As root, Debian's daemons drop to user "nut" unless told otherwise; see module docstring.
        return list(STAY_ROOT)

    def driver_argv(self, ups: str) -> list[str]:
        spec = self.upses[ups]
        if self.driver_flavour == "debian":
            return [str(REAL_NUT_DIR / spec.driver), "-a", ups, "-F", *self._user_args()]
        return [sys.executable, "-m", "nutlite", "driver", "-a", ups, "-F", *self._user_args()]

    def upsd_argv(self) -> list[str]:
        if self.upsd_flavour == "debian":
            return [str(REAL_UPSD), "-F", *self._user_args()]
        return [sys.executable, "-m", "nutlite", "upsd", "-F", *self._user_args(), *self.upsd_args]

    def _spawn(self, proc: _Proc, extra_env: dict[str, str] | None = None) -> None:
        log = open(proc.log, "ab")  # noqa: SIM115 - handed to the child
        log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(proc.argv)}\n".encode())
        log.flush()
        try:
            proc.popen = subprocess.Popen(
                proc.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self.environ(), **(extra_env or {})},
                cwd=self.base,
                start_new_session=True,
            )
        finally:
            log.close()

    @staticmethod
    def _kill(proc: _Proc | None, sig: int = signal.SIGKILL, wait: bool = True) -> None:
        """Signal the daemon's process group -- only while its leader has not been reaped: until then
        its pid (= the group id) cannot belong to anybody else, so a stale id never hits a stranger."""
        if proc is None or proc.popen is None:
            return
        p = proc.popen
        if p.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)
        if wait:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    def socket_path(self, ups: str) -> Path:
        spec = self.upses[ups]
        return self.statepath / f"{spec.driver}-{ups}"

    def start_driver(self, ups: str, wait: bool = True, timeout: float = 15.0) -> None:
        spec = self.upses[ups]
        if spec.launch == "none":
            return
        if spec.launch == "fake":
            if spec.fake is None:
                spec.fake = FakeDriver(self.socket_path(ups))
            spec.fake.path = str(self.socket_path(ups))
            spec.fake.start()
            return
        # A driver killed with SIGKILL leaves its socket file behind; remove it so that waiting for the
        # socket waits for the new driver.
        with contextlib.suppress(FileNotFoundError):
            self.socket_path(ups).unlink()
        proc = _Proc(f"driver {ups}", self.driver_argv(ups), self.logpath / f"driver-{ups}.log")
        self._drivers[ups] = proc
        self._spawn(proc, spec.env)
        if wait:
            self.wait_driver_socket(ups, timeout)

    def wait_driver_socket(self, ups: str, timeout: float = 15.0) -> None:
        """Wait until the driver's socket file exists (and the driver is still running).

        Deliberately does not connect to it: Debian's 2.8.0 drivers do not notice a socket client's EOF
        (they spin on it at 100% CPU and abort on the next broadcast: "bit out of range 0 - FD_SETSIZE").
        upsd retries its connection anyway.
        """
        path = self.socket_path(ups)
        proc = self._drivers.get(ups)
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
                raise NutEnvError(
                    f"driver for {ups!r} ({self.driver_flavour}) exited with {proc.popen.returncode} "
                    f"before its socket {path} appeared\n{self.logs()}"
                )
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(path.stat().st_mode):
                    return
            if time.monotonic() > deadline:
                raise NutEnvError(
                    f"driver for {ups!r} ({self.driver_flavour}) did not create {path} within {timeout}s\n"
                    f"{self.logs()}"
                )
            time.sleep(0.05)

    def kill_driver(self, ups: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the driver (its process group). Waits for it to exit unless sig is SIGSTOP/CONT."""
        spec = self.upses[ups]
        if spec.launch == "fake":
            assert spec.fake is not None
            spec.fake.stop()
            return
        wait = sig not in (signal.SIGSTOP, signal.SIGCONT, signal.SIGHUP)
        self._kill(self._drivers.get(ups), sig, wait=wait)

    def signal_driver(self, ups: str, sig: int) -> None:
        self.kill_driver(ups, sig)

    def restart_driver(self, ups: str, sig: int = signal.SIGKILL) -> None:
        self.kill_driver(ups, sig)
        self.start_driver(ups)

    def driver_pid(self, ups: str) -> int:
        proc = self._drivers[ups]
        assert proc.popen is not None
        return proc.popen.pid

    def start_upsd(self, wait: bool = True, timeout: float = 20.0) -> None:
        self._upsd = _Proc("upsd", self.upsd_argv(), self.logpath / "upsd.log")
        self._spawn(self._upsd)
        if wait:
            self.wait_listening(timeout)

    def stop_upsd(self, sig: int = signal.SIGTERM) -> None:
        self._kill(self._upsd, sig)

    def restart_upsd(self, sig: int = signal.SIGTERM, wait_ready: bool = True) -> None:
        """Stop and start upsd. NB: Debian's 2.8.0 drivers do not notice that upsd went away: they spin
        on the dead socket (~50% CPU) and abort on their next broadcast (SIGABRT, "bit out of range 0 -
        FD_SETSIZE"), e.g. after a SET. Restart Debian drivers too if the test goes on using them."""
        self.stop_upsd(sig)
        self.start_upsd()
        if wait_ready:
            self.wait_ready()

    @property
    def upsd_pid(self) -> int:
        assert self._upsd is not None and self._upsd.popen is not None
        return self._upsd.popen.pid

    def upsd_running(self) -> bool:
        return self._upsd is not None and self._upsd.popen is not None and self._upsd.popen.poll() is None

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._upsd is not None and self._upsd.popen is not None
            if self._upsd.popen.poll() is not None:
                log = self._upsd.log.read_text(errors="replace")
                if "in use" in log and self._restarts < 3:
                    # Lost the race for the free port: take another one.
                    self._restarts += 1
                    self.port = free_port()
                    self.write_upsd_conf()
                    self.start_upsd(wait=False)
                    continue
                raise NutEnvError(
                    f"upsd ({self.upsd_flavour}) exited with {self._upsd.popen.returncode} at start\n"
                    f"{self.logs()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise NutEnvError(
                    f"upsd ({self.upsd_flavour}) does not accept connections on 127.0.0.1:{self.port} "
                    f"after {timeout}s\n{self.logs()}"
                )
            time.sleep(0.05)

    def wait_ready(self, upses: Iterable[str] | None = None, timeout: float = 20.0) -> None:
        """Wait until `GET VAR <ups> ups.status` answers a value other than WAIT for each UPS
        (default: every UPS that has a driver)."""
        names = list(upses) if upses is not None else [u for u, s in self.upses.items() if s.launch != "none"]
        deadline = time.monotonic() + timeout
        for ups in names:
            last = "(no answer)"
            while True:
                if not self.upsd_running():
                    raise NutEnvError(f"upsd ({self.upsd_flavour}) died\n{self.logs()}")
                try:
                    with self.connect() as c:
                        last = c.request(f"GET VAR {ups} ups.status", timeout=2)
                    if last.startswith("VAR ") and not last.endswith('"WAIT"'):
                        break
                except (OSError, TimeoutError, ConnectionClosed) as e:
                    last = f"{type(e).__name__}: {e}"
                if time.monotonic() > deadline:
                    raise NutEnvError(
                        f"UPS {ups!r} not served after {timeout}s (driver {self.driver_flavour}, upsd "
                        f"{self.upsd_flavour}); last reply to GET VAR {ups} ups.status: {last!r}\n"
                        f"{self.logs()}"
                    )
                time.sleep(0.1)

    def start(self, wait: bool = True) -> NutEnv:
        self.write_configs()
        for ups in self.upses:
            self.start_driver(ups)
        self.start_upsd()
        if wait:
            self.wait_ready()
        return self

    def start_together(self, socket_timeout: float = 30.0, ready_timeout: float = 30.0) -> NutEnv:
        """Every driver started at once, then upsd (faster than :meth:`start`'s one by one); stops
        whatever started if one of them does not come up."""
        self.write_configs()
        try:
            for ups in self.upses:
                self.start_driver(ups, wait=False)
            for ups in self.upses:
                self.wait_driver_socket(ups, socket_timeout)
            self.start_upsd()
            self.wait_ready(timeout=ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._kill(self._upsd, signal.SIGKILL)
        for proc in self._drivers.values():
            self._kill(proc, signal.SIGKILL)
        for spec in self.upses.values():
            if spec.fake is not None:
                spec.fake.stop()

    def __enter__(self) -> NutEnv:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers
    def connect(self, timeout: float = 5.0) -> NutConnection:
        return NutConnection(self.port, timeout=timeout)

    def logs(self, tail: int = 60) -> str:
        """The last lines of every daemon log, for failure messages."""
        out = []
        procs = [*self._drivers.values(), *([self._upsd] if self._upsd else [])]
        for proc in procs:
            try:
                lines = proc.log.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                lines = ["(no log)"]
            rc = proc.popen.poll() if proc.popen is not None else None
            state = "running" if rc is None else f"exited {rc}"
            out.append(f"==== {proc.name} [{state}] {proc.log}")
            out.extend(lines[-tail:])
        return "\n".join(out)

    def upsd_log(self) -> str:
        return self._upsd.log.read_text(errors="replace") if self._upsd else ""

    def driver_log(self, ups: str) -> str:
        proc = self._drivers.get(ups)
        return proc.log.read_text(errors="replace") if proc else ""


@contextlib.contextmanager
def nut_env(base: Path, upses: Sequence[UpsSpec], **kwargs: object) -> Iterator[NutEnv]:
    """Start a NutEnv for a `with` block; always torn down."""
    env = NutEnv(base, upses, **kwargs)  # type: ignore[arg-type]
    try:
        env.start()
        yield env
    finally:
        env.stop()


# --------------------------------------------------------------------------------------------------
# Helpers for tests of a running NutEnv


def wait_for(pred: Callable[[], object], timeout: float, what: str, *envs: NutEnv, interval: float = 0.05) -> object:
    """Call ``pred`` until it returns something true (which is returned); after ``timeout`` seconds fail
    with the logs of ``envs``."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(e.logs() for e in envs))
        time.sleep(interval)


def upsd_list(env: NutEnv, ups: str, what: str = "VAR") -> dict[str, str]:
    """``LIST VAR`` / ``LIST RW`` of ``ups`` through upsd as {name: value}, ``LIST CMD`` as {name: ""}."""
    with env.connect() as c:
        lines = c.request_list(f"LIST {what} {ups}")
    assert lines[0].startswith("BEGIN"), lines
    out = {}
    for line in lines[1:-1]:
        parts = line.split(" ", 3)
        out[parts[2]] = parts[3][1:-1] if len(parts) > 3 else ""
    return out


def get_var(env: NutEnv, ups: str, var: str = "ups.status") -> str:
    """upsd's answer to ``GET VAR`` (``VAR <ups> <var> "<value>"`` or the ``ERR`` line)."""
    with env.connect() as c:
        return c.request(f"GET VAR {ups} {var}")


def compare_vars(debian: Mapping[str, str], nutlite: Mapping[str, str], known: Iterable[str] = ()) -> list[str]:
    """The variables whose values differ between the two flavours, but for the ``known`` differences."""
    skip = set(known)
    problems = []
    for name in sorted(set(debian) | set(nutlite)):
        if name in skip:
            continue
        if debian.get(name) != nutlite.get(name):
            problems.append(f"{name}: Debian {debian.get(name)!r}, nutlite {nutlite.get(name)!r}")
    return problems
